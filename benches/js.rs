//! knit's JS host against its floors and its peers (result `js`): a warm JS
//! call's round trip and batches of 1000, `pool.eval` and a session's eval,
//! a struct's conversion to JS and back, and a pool's start with its modules
//! from the bytecode cache or from source; beside them the same call made
//! directly on an in-process QuickJS context, knit's Rust no-op round trip,
//! and (where node and the pinned packages are installed) piscina and
//! tinypool running the same add on node's worker threads.
//!
//! `cargo bench -p knit-bench --features js --bench js [-- --quick] [--filter NAME] [--json] [--out DIR]`
//!
//! `./run.sh` installs the node peers (benches/js-peers/, `npm ci` into
//! .cache/js-peers/) and passes their script in `KNIT_JS_PEERS`; without
//! node or that install the peers are skipped, with a line saying why.

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/peers/mod.rs"]
mod peers;
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::cell::RefCell;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use knit::js::{from_wire, to_wire, Converter, JsModule, JsOptions, WireLimits};
use knit::{create_pool, Pool, PoolOptions};
use knit_bench::cli::Args;
use knit_bench::pin_to;
use knit_bench::results::{BenchResult, Extra, Role};
use knit_bench::runner::timed;
use peers::{drive, Contender, Shape, Work};
use rquickjs::{Context, Ctx, Function, Module, Runtime};
use serde::{Deserialize, Serialize};
use suite::{spec, Bench, Meta};

#[knit::task]
fn noop(x: u64) -> u64 {
    x
}

const NOOP: Work<u64, u64> = Work {
    task: |c, x| c.noop(x),
    plain: noop,
};

/// The module every system runs (node's peers: benches/js-peers/worker.mjs).
const MATH: &str = "export const add = (a, b) => a + b;";

const CALL: &str = "call round trip";
const BATCH: &str = "batch 1000 (per call)";
const EVAL: &str = "eval round trip";
const STRUCT: &str = "5-field struct to JS and back";
const START: &str = "pool start + first call + shutdown";

// Floors share names across groups (one column each in the ratio table);
// each group's method says what the floor does there.
const QUICKJS: &str = "rquickjs, in-process";
const KNIT_NOOP: &str = "knit no-op";
const QUICKJS_AND_NOOP: &str = "rquickjs + knit no-op";
const KNIT_CALL: &str = "knit js call";
const KNIT_EVAL: &str = "knit pool.eval";
const KNIT_SESSION: &str = "knit session.eval";
const KNIT_WIRE: &str = "knit wire (to_wire, to_js, from_js, from_wire)";
const JSON_WIRE: &str = "serde_json + JSON.parse/stringify";
const START_CACHED: &str = "knit, modules from the bytecode cache";
const START_SOURCE: &str = "knit, modules compiled from source";
const NODE_PEERS: [&str; 2] = ["piscina", "tinypool"];

/// The struct of the conversion figures (as in knit's example
/// `js_values_bench`, which also measures the other wire designs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
    price: f64,
    active: bool,
}

fn item() -> Item {
    Item {
        id: 123_456,
        name: "fountain pen".into(),
        tags: vec!["office".into(), "gift".into(), "ink".into()],
        price: 19.99,
        active: true,
    }
}

/// Runs `f` on a fresh in-process QuickJS context with `math` loaded, given
/// its `add` export.
fn with_math<R>(f: impl FnOnce(&Ctx<'_>, Function<'_>) -> R) -> R {
    let rt = Runtime::new().expect("a QuickJS runtime");
    let context = Context::full(&rt).expect("a QuickJS context");
    context.with(|ctx| {
        let (module, done) = Module::declare(ctx.clone(), "math", MATH)
            .and_then(|m| m.eval())
            .expect("load the math module");
        done.finish::<()>().expect("evaluate the math module");
        let add: Function = module.get("add").expect("math exports add");
        f(&ctx, add)
    })
}

/// A knit pool of one pinned worker and no JS, for the no-op floors (the
/// caller pinned to core 0).
fn noop_pool() -> Pool {
    pin_to(0);
    create_pool(PoolOptions {
        threads: 1,
        pin: true,
        ..PoolOptions::default()
    })
    .expect("create a knit pool")
}

/// `iters` calls of `add(1, 2)` on an in-process context, each result
/// converted to an `i64`; with `pool`, each followed by a knit no-op round
/// trip (the floor of a knit JS call: the engine's work plus the pool's).
fn quickjs_calls(iters: u64, pool: Option<&Pool>) -> Duration {
    pin_to(0);
    with_math(|_, add| {
        timed(iters / 10 + 10, iters, |i| {
            let sum: i64 = add.call((black_box(1), black_box(2))).expect("add");
            black_box(sum);
            if let Some(p) = pool {
                black_box(p.call.noop(i).wait().expect("knit no-op"));
            }
        })
    })
}

/// `iters` evaluations of `1 + 1` on an in-process context (read as `i64`),
/// each followed by a knit no-op round trip with `pool`.
fn quickjs_evals(iters: u64, pool: Option<&Pool>) -> Duration {
    pin_to(0);
    with_math(|ctx, _| {
        timed(iters / 10 + 10, iters, |i| {
            let two: i64 = ctx.eval(black_box("1 + 1")).expect("eval");
            black_box(two);
            if let Some(p) = pool {
                black_box(p.call.noop(i).wait().expect("knit no-op"));
            }
        })
    })
}

/// `iters` trips of a 5-field struct to JS and back, knit's way: serde into
/// knit's JS wire form, the wire bytes into engine values, the engine values
/// back into wire bytes, serde out (what a JS call's argument and result
/// cost, without the ring), through a `Converter` as a worker converts
/// (its context's key atoms and object shapes cached).
fn knit_wire_trips(iters: u64) -> Duration {
    pin_to(0);
    let item = item();
    let limits = WireLimits::default();
    let (mut arg, mut res) = (Vec::with_capacity(256), Vec::with_capacity(256));
    with_math(|ctx, _| {
        let mut conv = Converter::new(ctx);
        timed(iters / 10 + 10, iters, |_| {
            arg.clear();
            to_wire(black_box(&item), &mut arg).expect("to_wire");
            let v = conv.to_js(&arg).expect("to_js");
            res.clear();
            conv.from_js(&v, &mut res, &limits).expect("from_js");
            let back: Item = from_wire(&res).expect("from_wire");
            black_box(back);
        })
    })
}

/// The same trip through JSON text: serde_json, `JSON.parse` in the engine,
/// `JSON.stringify`, serde_json back.
fn json_trips(iters: u64) -> Duration {
    pin_to(0);
    let item = item();
    with_math(|ctx, _| {
        timed(iters / 10 + 10, iters, |_| {
            let text = serde_json::to_string(black_box(&item)).expect("to json");
            let v = ctx.json_parse(text).expect("JSON.parse");
            let back = ctx
                .json_stringify(v)
                .expect("JSON.stringify")
                .expect("a JSON string")
                .to_string()
                .expect("a Rust string");
            black_box(serde_json::from_str::<Item>(&back).expect("from json"));
        })
    })
}

/// `iters` times: a pool of one worker with no JS, one no-op call, shutdown.
fn start_no_js(iters: u64) -> Duration {
    timed(1, iters, |i| {
        let pool = noop_pool();
        black_box(pool.call.noop(i).wait().expect("knit no-op"));
        pool.shutdown();
    })
}

/// A few hundred functions (about 40 KB of source), so that what the cache
/// saves, the compile, is more than noise next to starting the engine.
fn lib_source() -> String {
    (0..400)
        .map(|i| {
            format!(
                "export function f{i}(xs) {{ let s = {i}; for (const x of xs) {{ \
                 if (x % 3 === {r}) s += x * {i}; else s -= x >> 1; }} \
                 return {{ s, name: 'f{i}', tags: [s % 7, s % 11] }}; }}\n",
                r = i % 3
            )
        })
        .collect()
}

/// Node's peers, piscina and tinypool, in one node process driven over its
/// standard input and output (benches/js-peers/bench.mjs `--serve`): each
/// request runs a round's calls in node and answers with their time.
struct NodePeers {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What the ready line said: node's version and each package's.
    about: String,
}

impl NodePeers {
    /// Starts `node script --serve`, or says why not.
    fn start(script: &Path) -> Result<NodePeers, String> {
        if !script.exists() {
            return Err(format!(
                "{} is not installed (./run.sh installs it with npm ci)",
                script.display()
            ));
        }
        let mut child = Command::new("node")
            .arg(script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("node could not be started: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let ready = stdout.read_line(&mut line).map_err(|e| e.to_string());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if ready.is_err() || v["ready"] != true {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("node {} did not start: {line:?}", script.display()));
        }
        let versions = NODE_PEERS
            .iter()
            .map(|p| format!("{p} {}", v["versions"][p].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ");
        let about = format!("node {}, {versions}", v["node"].as_str().unwrap_or("?"));
        Ok(NodePeers {
            child,
            stdin,
            stdout,
            about,
        })
    }

    /// Sends one command and returns the time node measured for it.
    fn run(&mut self, command: &str) -> Duration {
        writeln!(self.stdin, "{command}").expect("write to node");
        self.stdin.flush().expect("write to node");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from node");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("node answered {line:?} to {command:?}: {e}"));
        match v["ns"].as_u64() {
            Some(ns) => Duration::from_nanos(ns),
            None => panic!("node answered {line:?} to {command:?}"),
        }
    }
}

impl Drop for NodePeers {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        // It exits on `quit`; one that hangs is ended after a few seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                eprintln!("js: node did not exit after quit; killing it");
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.wait();
    }
}

/// Where the node peers' script is: `KNIT_JS_PEERS`, else the folder
/// `./run.sh` installs them in.
fn peers_script() -> PathBuf {
    std::env::var_os("KNIT_JS_PEERS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/js-peers/bench.mjs"),
        PathBuf::from,
    )
}

/// A scratch directory for the bytecode cache, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("knit-js-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The figures the goals are stated in, from the measured rows.
fn goals(result: &BenchResult) -> Vec<Extra> {
    let row = |group: &str, system: &str| {
        result
            .rows
            .iter()
            .find(|r| r.spec.group == group && r.spec.system == system)
    };
    let mut extras = Vec::new();
    let mut add = |name: String, value: Option<f64>, unit: &str| {
        if let Some(value) = value {
            extras.push(Extra {
                name,
                value,
                unit: unit.into(),
            });
        }
    };
    let call = row(CALL, KNIT_CALL);
    let batch = row(BATCH, KNIT_CALL);
    add(
        format!("{CALL}: knit's time ÷ (rquickjs call + knit no-op round trip) (goal ≤ 1.3)"),
        call.and_then(|r| r.ratio_to(QUICKJS_AND_NOOP)),
        "×",
    );
    for peer in NODE_PEERS {
        let (call_goal, batch_goal) = match peer {
            "piscina" => (" (goal ≥ 15)", " (goal ≥ 20)"),
            _ => ("", ""),
        };
        add(
            format!("{CALL}: {peer}'s time ÷ knit's{call_goal}"),
            call.and_then(|r| r.ratio_to(peer)).map(|r| 1.0 / r),
            "×",
        );
        add(
            format!("{BATCH}: knit's throughput ÷ {peer}'s{batch_goal}"),
            batch.and_then(|r| r.ratio_to(peer)).map(|r| 1.0 / r),
            "×",
        );
    }
    add(
        format!("{BATCH}: knit js calls per second"),
        batch.map(|r| 1e9 / r.median_ns),
        "calls/s",
    );
    add(
        format!("{STRUCT}: {KNIT_WIRE} (goal < 1000 ns)"),
        row(STRUCT, KNIT_WIRE).map(|r| r.median_ns),
        "ns",
    );
    extras
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // Node starts before this thread pins itself (a child inherits the
    // spawning thread's CPU set).
    let wants_peers = args.selects(&["js", CALL]) || args.selects(&[BATCH]);
    let node = if wants_peers {
        match NodePeers::start(&peers_script()) {
            Ok(n) => Some(Rc::new(RefCell::new(n))),
            Err(why) => {
                eprintln!("js: piscina and tinypool skipped: {why}");
                None
            }
        }
    } else {
        None
    };
    let peers_about = node.as_ref().map_or_else(
        || "piscina and tinypool were not run (node or their install was missing).".into(),
        |n| {
            format!(
                "Peers ({}): one node process, one worker thread per pool, the same add in \
                 benches/js-peers/worker.mjs called with `pool.run([1, 2])`; round trips await \
                 each call before the next (default options), batches put 1000 calls in flight \
                 and await them all (`concurrentTasksPerWorker: 1000`, so the worker is handed \
                 them all; the default of 1 sends each only when the last is done). Their pools \
                 stay up across rounds and node times each round itself; node's threads are \
                 not pinned.",
                n.borrow().about
            )
        },
    );
    let about = format!(
        "knit with one JS worker pinned to core 1, the caller on core 0, module \
         `math` = `{MATH}`; a knit js call is `pool.js(\"math\", \"add\").apply((1, 2)).wait()` \
         read as `i64`, on a fresh pool each round, timed after a warm-up. Floors: the same \
         call on an in-process rquickjs context on the bench thread (the module loaded, \
         `add.call((1, 2))` read as `i64`), knit's Rust no-op round trip (one worker), and \
         both one after the other per operation, which is what a knit js call cannot go \
         below. Floor names are shared across groups: \
         \"rquickjs, in-process\" is the group's JS work on the bench thread, \"knit no-op\" \
         the same number of knit Rust no-op calls (one at a time, in batches of 1000, or a \
         pool without JS started, called once and shut down), \"rquickjs + knit no-op\" \
         both per operation. Eval: `pool.eval(\"1 + 1\")` and a session's `eval` read as \
         `i64`, beside `ctx.eval(\"1 + 1\")` in-process. The struct (5 fields: u64, String, 3 Strings, f64, \
         bool) goes through knit's JS wire form both ways on an in-process context, against \
         serde_json with JSON.parse/stringify. Pool start: `create_pool` with `math` and a \
         40 KB module, the first call and `shutdown`, with `cache_dir` set to a warmed \
         scratch directory or without it (modules compiled from source). {peers_about}"
    );
    let meta = Meta {
        name: "js",
        title: "JS host: calls, eval, conversion, pool start",
        about: &about,
        rounds: args.pick(3, 7),
        primary: QUICKJS_AND_NOOP,
        ..Meta::default()
    };
    let mut bench = Bench::new(&args, meta);
    let (hot, batch, conv, starts) =
        args.pick((5_000, 20_000, 5_000, 10), (200_000, 400_000, 200_000, 200));

    // Round trips.
    bench.add(spec(CALL, QUICKJS, Role::Floor), hot, |n| {
        quickjs_calls(n, None)
    });
    bench.add(spec(CALL, KNIT_NOOP, Role::Floor), hot, |n| {
        drive(&Contender::knit(), Shape::RoundTrips, 1, NOOP, &|i| i, n)
    });
    bench.add(spec(CALL, QUICKJS_AND_NOOP, Role::Floor), hot, |n| {
        let pool = noop_pool();
        let t = quickjs_calls(n, Some(&pool));
        pool.shutdown();
        t
    });
    knit_js::calls(&mut bench, hot);
    if let Some(node) = &node {
        for peer in NODE_PEERS {
            let node = node.clone();
            bench.add(spec(CALL, peer, Role::Peer), hot / 10, move |n| {
                node.borrow_mut().run(&format!("rt {peer} {n}"))
            });
        }
    }

    // Batches of 1000.
    bench.add_in_steps(spec(BATCH, KNIT_NOOP, Role::Floor), batch, 1000, |n| {
        drive(&Contender::knit(), Shape::Batches(1000), 1, NOOP, &|i| i, n)
    });
    knit_js::batches(&mut bench, batch);
    if let Some(node) = &node {
        for peer in NODE_PEERS {
            let node = node.clone();
            bench.add_in_steps(spec(BATCH, peer, Role::Peer), batch / 10, 1000, move |n| {
                node.borrow_mut().run(&format!("batch {peer} {n} 1000"))
            });
        }
    }

    // Eval.
    bench.add(spec(EVAL, QUICKJS, Role::Floor), hot, |n| {
        quickjs_evals(n, None)
    });
    bench.add(spec(EVAL, QUICKJS_AND_NOOP, Role::Floor), hot, |n| {
        let pool = noop_pool();
        let t = quickjs_evals(n, Some(&pool));
        pool.shutdown();
        t
    });
    knit_js::evals(&mut bench, hot);

    // Conversion.
    bench.add(spec(STRUCT, KNIT_WIRE, Role::Knit), conv, knit_wire_trips);
    bench.add(spec(STRUCT, JSON_WIRE, Role::Peer), conv, json_trips);

    // Pool start.
    bench.add(spec(START, KNIT_NOOP, Role::Floor), starts, start_no_js);
    let cache = ScratchDir::new()?;
    knit_js::starts(&mut bench, starts, &cache.0);

    let done = bench.finish_with(goals);
    drop(node);
    drop(cache);
    done
}

/// The scenarios that call knit's JS API (`Pool::js`, `eval`, `session`).
mod knit_js {
    use super::*;

    /// JS options with `math` (and `extra` modules), caching in `cache_dir`.
    pub fn options(extra: Vec<JsModule>, cache_dir: Option<&Path>) -> JsOptions {
        let mut modules = vec![JsModule::source("math", MATH)];
        modules.extend(extra);
        JsOptions {
            modules,
            cache_dir: cache_dir.map(Path::to_path_buf),
            ..JsOptions::default()
        }
    }

    /// A pool of one pinned JS worker, the caller pinned to core 0.
    pub fn pool(js: JsOptions) -> Pool {
        pin_to(0);
        create_pool(PoolOptions {
            threads: 1,
            pin: true,
            js: Some(js),
            ..PoolOptions::default()
        })
        .expect("create a knit pool with JS")
    }

    pub fn calls(bench: &mut Bench, hot: u64) {
        bench.add(spec(CALL, KNIT_CALL, Role::Knit), hot, |n| {
            let pool = pool(options(Vec::new(), None));
            let add = pool.js("math", "add");
            let t = timed(n / 10 + 10, n, |_| {
                let sum: i64 = add.apply((1, 2)).wait().expect("knit js call");
                black_box(sum);
            });
            pool.shutdown();
            t
        });
    }

    pub fn batches(bench: &mut Bench, batch: u64) {
        bench.add_in_steps(spec(BATCH, KNIT_CALL, Role::Knit), batch, 1000, |n| {
            let pool = pool(options(Vec::new(), None));
            let add = pool.js("math", "add");
            let t = timed(3, n / 1000, |_| {
                let calls: Vec<knit::Call<i64>> = (0..1000).map(|_| add.apply((1, 2))).collect();
                for c in calls {
                    black_box(c.wait().expect("knit js call"));
                }
            });
            pool.shutdown();
            t
        });
    }

    pub fn evals(bench: &mut Bench, hot: u64) {
        bench.add(spec(EVAL, KNIT_EVAL, Role::Knit), hot, |n| {
            let pool = pool(options(Vec::new(), None));
            let t = timed(n / 10 + 10, n, |_| {
                let two: i64 = pool.eval("1 + 1").wait().expect("knit eval");
                black_box(two);
            });
            pool.shutdown();
            t
        });
        bench.add(spec(EVAL, KNIT_SESSION, Role::Knit), hot, |n| {
            let pool = pool(options(Vec::new(), None));
            let session = pool.session().expect("a session");
            let t = timed(n / 10 + 10, n, |_| {
                let two: i64 = session.eval("1 + 1").wait().expect("session eval");
                black_box(two);
            });
            drop(session);
            pool.shutdown();
            t
        });
    }

    /// `iters` times: `create_pool` with `math` and a 40 KB module, the
    /// first call, `shutdown`.
    fn start_js(iters: u64, cache_dir: Option<&Path>) -> Duration {
        let lib = lib_source();
        timed(1, iters, |_| {
            let pool = pool(options(
                vec![JsModule::source("lib", lib.clone())],
                cache_dir,
            ));
            let sum: i64 = pool
                .js("math", "add")
                .apply((1, 2))
                .wait()
                .expect("first call");
            black_box(sum);
            pool.shutdown();
        })
    }

    pub fn starts(bench: &mut Bench, starts: u64, cache_dir: &Path) {
        // Warm the cache once, untimed, so every timed start finds it.
        if bench.wants(START) {
            start_js(0, Some(cache_dir));
        }
        let dir = cache_dir.to_path_buf();
        bench.add(spec(START, START_CACHED, Role::Knit), starts, move |n| {
            start_js(n, Some(&dir))
        });
        bench.add(spec(START, START_SOURCE, Role::Peer), starts, |n| {
            start_js(n, None)
        });
    }
}
