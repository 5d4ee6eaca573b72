//! knit's strict mode against its floors (result `strict`): a call of an
//! untrusted script, every one in a pristine QuickJS runtime of its own,
//! one at a time (the worker idle with its spare engine built, the worker
//! parked, or calls back to back) and in batches of 100; beside it the
//! trusted warm call of the same function, and on the bench thread the naive
//! way to get fresh state per call (a new runtime and context, the script's
//! bytecode loaded, its export called, everything dropped) with a full
//! context or one without `eval`, and that floor's phases. A CPU-bound
//! script (about 1 ms) shows what the budget accounting adds.
//!
//! `cargo bench -p knit-bench --features js --bench strict [-- --quick] [--filter NAME] [--json] [--out DIR]`

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use knit::js::{JsModule, JsOptions, Limits};
use knit::{create_pool, Pool, PoolOptions};
use knit_bench::cli::Args;
use knit_bench::pin_to;
use knit_bench::results::{BenchResult, Extra, Role};
use knit_bench::runner::{timed, timed_cold};
use rquickjs::context::intrinsic::{
    Date, Json, MapSet, Promise, Proxy, RegExp, RegExpCompiler, TypedArrays, WeakRef,
};
use rquickjs::module::WriteOptions;
use rquickjs::{Context, Function, Module, Runtime};
use suite::{spec, Bench, Meta};

/// The trivial script every strict and trusted call runs.
const ADD_ONE: &str = "export default (x) => x + 1;";

/// The CPU-bound script: `n` turns of an integer loop (`n` is calibrated to
/// about 1 ms on the bench thread).
const SPIN: &str =
    "export default (n) => { let s = 0; for (let i = 0; i < n; i++) s = (s + i) | 0; return s; };";

/// What a strict call's goal is, end to end (ns).
const GOAL_NS: f64 = 100_000.0;

const CALL: &str = "strict call round trip";
const BATCH: &str = "strict batch 100 (per call)";
const PIECES: &str = "fresh call phases (bench thread)";
const CPU: &str = "strict call, CPU-bound (~1 ms)";

const STRICT_IDLE: &str = "knit strict, worker idle (spare ready)";
const STRICT_PARKED: &str = "knit strict, worker parked";
const STRICT_B2B: &str = "knit strict, back to back";
const STRICT_BATCH: &str = "knit strict";
const TRUSTED: &str = "knit trusted warm call (pool.js)";
const NAIVE_FULL: &str = "fresh Context::full + load + call";
const NAIVE_CUSTOM: &str = "fresh Context::custom without Eval + load + call";
const PHASE_RUNTIME: &str = "Runtime::new";
const PHASE_FULL: &str = "Context::full";
const PHASE_CUSTOM: &str = "Context::custom without Eval";
const PHASE_RUN: &str = "Module::load + eval + call (full context)";
const PHASE_FREE: &str = "drop context + runtime (full context)";
const IN_PROCESS: &str = "rquickjs, in-process warm call";

/// The pause before each timed call of the idle and parked variants: long
/// enough for the worker to free the last call's runtime and build its spare.
const PAUSE: Duration = Duration::from_millis(1);

/// The intrinsics of knit's strict contexts (every standard one but `Eval`
/// and `Performance`; `knit/src/js/strict/fresh.rs`).
type NoEval = (
    Date,
    RegExpCompiler,
    RegExp,
    Json,
    Proxy,
    MapSet,
    TypedArrays,
    Promise,
    WeakRef,
);

type MakeContext = fn(&Runtime) -> rquickjs::Result<Context>;

fn full(rt: &Runtime) -> rquickjs::Result<Context> {
    Context::full(rt)
}

fn no_eval(rt: &Runtime) -> rquickjs::Result<Context> {
    Context::custom::<NoEval>(rt)
}

/// Warm-up iterations for a round of `iters` slow operations.
fn warmup(iters: u64) -> u64 {
    (iters / 10).clamp(1, 20)
}

/// `source` compiled as module `m` to bytecode, as `Pool::untrusted` does
/// (once, on a throwaway full context).
fn bytecode(source: &str) -> Rc<[u8]> {
    let rt = Runtime::new().expect("a QuickJS runtime");
    let context = Context::full(&rt).expect("a QuickJS context");
    let bytes = context.with(|ctx| {
        Module::declare(ctx.clone(), "m", source)
            .and_then(|m| {
                m.write(WriteOptions {
                    strip_source: true,
                    ..WriteOptions::default()
                })
            })
            .expect("compile the module")
    });
    bytes.into()
}

/// Loads `bytecode` into a fresh context of `rt` made by `make`, evaluates
/// it and calls its default export on `arg`; drops the context and the
/// runtime after.
fn fresh_call(make: MakeContext, bytecode: &[u8], arg: i64) -> i64 {
    let rt = Runtime::new().expect("a QuickJS runtime");
    let context = make(&rt).expect("a QuickJS context");
    let y = run_in(&context, bytecode, arg);
    drop(context);
    drop(rt);
    y
}

/// Loads `bytecode` into `context`, evaluates it and calls its default
/// export on `arg`.
fn run_in(context: &Context, bytecode: &[u8], arg: i64) -> i64 {
    with_default(context, bytecode, |f| {
        f.call::<_, i64>((arg,)).expect("call the export")
    })
}

/// Loads `bytecode` into `context`, evaluates it and gives `f` its default
/// export.
fn with_default<R>(context: &Context, bytecode: &[u8], f: impl FnOnce(&Function) -> R) -> R {
    context.with(|ctx| {
        // SAFETY: `bytecode` was written by this process's engine
        // (`bytecode` above), never read from elsewhere.
        let module = unsafe { Module::load(ctx.clone(), bytecode) }.expect("load the bytecode");
        let (module, done) = module.eval().expect("evaluate the module");
        done.finish::<()>().expect("the module settles");
        let export: Function = module.get("default").expect("a default export");
        f(&export)
    })
}

/// `iters` fresh calls on the bench thread (the naive floor).
fn fresh_calls(iters: u64, make: MakeContext, bytecode: &[u8]) -> Duration {
    pin_to(0);
    timed(warmup(iters), iters, |_| {
        black_box(fresh_call(make, bytecode, black_box(1)));
    })
}

/// A phase of the naive fresh call.
#[derive(Clone, Copy)]
enum Phase {
    /// `Runtime::new`.
    Runtime,
    /// Making the context on the new runtime.
    Context,
    /// `Module::load` of the bytecode, its evaluation, the call.
    Run,
    /// Dropping the context and the runtime.
    Free,
}

/// `iters` naive fresh calls on the bench thread; the time of `phase` alone
/// (the others run untimed around it).
fn fresh_phase(iters: u64, make: MakeContext, bytecode: &[u8], phase: Phase) -> Duration {
    pin_to(0);
    let warm = warmup(iters);
    let mut total = Duration::ZERO;
    for i in 0..warm + iters {
        let t0 = Instant::now();
        let rt = Runtime::new().expect("a QuickJS runtime");
        let t1 = Instant::now();
        let context = make(&rt).expect("a QuickJS context");
        let t2 = Instant::now();
        black_box(run_in(&context, bytecode, black_box(1)));
        let t3 = Instant::now();
        drop(context);
        drop(rt);
        let t4 = Instant::now();
        if i >= warm {
            total += match phase {
                Phase::Runtime => t1 - t0,
                Phase::Context => t2 - t1,
                Phase::Run => t3 - t2,
                Phase::Free => t4 - t3,
            };
        }
    }
    total
}

/// `iters` warm calls of `bytecode`'s default export on `arg`, in-process.
fn in_process_calls(iters: u64, bytecode: &[u8], arg: i64) -> Duration {
    pin_to(0);
    let rt = Runtime::new().expect("a QuickJS runtime");
    let context = Context::full(&rt).expect("a QuickJS context");
    let t = with_default(&context, bytecode, |f| {
        timed(warmup(iters), iters, |_| {
            let y = f.call::<_, i64>((black_box(arg),));
            black_box(y.expect("call the export"));
        })
    });
    drop(context);
    drop(rt);
    t
}

/// The loop count that makes `SPIN` take about 1 ms on the bench thread
/// (grown until a call takes over 0.2 ms, then scaled, twice).
fn spin_turns() -> i64 {
    let code = bytecode(SPIN);
    let per_call = |n: i64| in_process_calls(5, &code, n).as_secs_f64() / 5.0;
    let mut n: i64 = 10_000;
    while per_call(n) < 2e-4 && n < 1 << 30 {
        n *= 4;
    }
    for _ in 0..2 {
        n = ((n as f64) * 1e-3 / per_call(n)).max(1.0) as i64;
    }
    n
}

/// A pool of one pinned JS worker with `ADD_ONE` as module `m` and `SPIN`
/// as module `spin`; the caller pinned to core 0. `worker_spin`: how long
/// the idle worker spins before it parks.
fn pool(worker_spin: Duration) -> Pool {
    pin_to(0);
    create_pool(PoolOptions {
        threads: 1,
        pin: true,
        worker_spin,
        js: Some(JsOptions {
            modules: vec![
                JsModule::source("m", ADD_ONE),
                JsModule::source("spin", SPIN),
            ],
            ..JsOptions::default()
        }),
        ..PoolOptions::default()
    })
    .expect("create a knit pool with JS")
}

/// A worker spin long enough that the worker is still spinning after
/// [`PAUSE`] (no kernel wake-up in the timed call).
const LONG_SPIN: Duration = Duration::from_millis(20);

/// What each pool scenario does with its pool.
#[derive(Clone, Copy)]
enum Shape {
    /// One call at a time, each after [`PAUSE`] (untimed).
    Paused,
    /// One call at a time, back to back.
    BackToBack,
    /// Batches of 100 calls in flight.
    Batch,
}

/// `iters` strict calls of `source`'s default export on `arg`.
fn strict_calls(
    iters: u64,
    shape: Shape,
    worker_spin: Duration,
    source: &str,
    arg: i64,
) -> Duration {
    let pool = pool(worker_spin);
    let script = pool
        .untrusted(source, Limits::default())
        .expect("compile the script");
    let call = |a: i64| -> knit::Call<i64> { script.call(a) };
    let t = run_shape(iters, shape, call, arg);
    pool.shutdown();
    t
}

/// `iters` trusted calls of module `module`'s default export on `arg`.
fn trusted_calls(iters: u64, shape: Shape, module: &str, arg: i64) -> Duration {
    let pool = pool(LONG_SPIN);
    let f = pool.js(module, "default");
    let call = |a: i64| -> knit::Call<i64> { f.call(a) };
    let t = run_shape(iters, shape, call, arg);
    pool.shutdown();
    t
}

/// `iters` calls made by `call` on `arg`, in `shape`.
fn run_shape(
    iters: u64,
    shape: Shape,
    call: impl Fn(i64) -> knit::Call<i64>,
    arg: i64,
) -> Duration {
    let one = |_| {
        black_box(call(black_box(arg)).wait().expect("a call"));
    };
    match shape {
        Shape::Paused => timed_cold(warmup(iters), iters, PAUSE, one),
        Shape::BackToBack => timed(warmup(iters), iters, one),
        Shape::Batch => timed(1, iters / 100, |_| {
            let calls: Vec<knit::Call<i64>> = (0..100).map(|_| call(black_box(arg))).collect();
            for c in calls {
                black_box(c.wait().expect("a call"));
            }
        }),
    }
}

/// The goal and the ratios, from the measured rows.
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
    for system in [STRICT_IDLE, STRICT_PARKED, STRICT_B2B] {
        let Some(r) = row(CALL, system) else { continue };
        let met = if r.median_ns <= GOAL_NS {
            "met"
        } else {
            "not met"
        };
        let goal = if system == STRICT_IDLE {
            format!(" (goal ≤ 100 µs: {met})")
        } else {
            String::new()
        };
        add(
            format!("{CALL}: {system}, µs per call{goal}"),
            Some(r.median_ns / 1e3),
            "µs",
        );
        add(
            format!("{CALL}: {system} ÷ {NAIVE_FULL} (goal < 100 %)"),
            r.ratio_to(NAIVE_FULL).map(|x| x * 100.0),
            "%",
        );
        add(
            format!("{CALL}: {system} ÷ {TRUSTED}"),
            r.ratio_to(TRUSTED),
            "×",
        );
    }
    let batch = row(BATCH, STRICT_BATCH);
    add(
        format!("{BATCH}: knit strict, µs per call (throughput cost)"),
        batch.map(|r| r.median_ns / 1e3),
        "µs",
    );
    add(
        format!("{BATCH}: knit strict ÷ {NAIVE_FULL}"),
        batch
            .and_then(|r| r.ratio_to(NAIVE_FULL))
            .map(|x| x * 100.0),
        "%",
    );
    add(
        format!("{BATCH}: knit strict calls per second"),
        batch.map(|r| 1e9 / r.median_ns),
        "calls/s",
    );
    let cpu = row(CPU, STRICT_B2B);
    add(
        format!("{CPU}: knit strict ÷ {TRUSTED}"),
        cpu.and_then(|r| r.ratio_to(TRUSTED)).map(|x| x * 100.0),
        "%",
    );
    // What strict adds to a long call: the trivial call's fixed cost (its
    // engine) plus the budget accounting (a few polls of the interrupt
    // handler per ms, each a read of the thread CPU clock), which is below
    // this VM's noise from run to run.
    let extra = |g: &str| Some(row(g, STRICT_B2B)?.median_ns - row(g, TRUSTED)?.median_ns);
    add(
        format!("{CPU}: knit strict − {TRUSTED}, µs per call"),
        extra(CPU).map(|ns| ns / 1e3),
        "µs",
    );
    add(
        format!("{CALL}: {STRICT_B2B} − {TRUSTED}, µs per call (the same fixed cost)"),
        extra(CALL).map(|ns| ns / 1e3),
        "µs",
    );
    extras
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let turns = if args.selects(&["strict", CPU]) {
        spin_turns()
    } else {
        0
    };
    let about = format!(
        "**Goal: a strict call of a trivial script, fresh state per call, ≤ 100 µs end to end, \
         below the naive fresh full context.** A knit pool of one JS worker pinned to core 1 \
         (`threads: 1`), the caller on core 0, a fresh pool each round; the script is \
         `{ADD_ONE}`, compiled once by `pool.untrusted(source, Limits::default())` and called \
         as `script.call(1).wait()` read as `i64`. Every strict call runs in a runtime and a \
         context (without `eval`) of its own, built ahead while the worker is idle (its \
         spare) and freed at the worker's next turn. \"worker idle (spare ready)\": each call \
         after a {PAUSE:?} pause (untimed), the worker set to spin {LONG_SPIN:?} before it \
         parks, so it has built its spare and is still spinning; \"worker parked\": the same \
         with the default 50 µs worker spin, so each call wakes the worker; \"back to back\": \
         one call at a time with no pause, so each call also waits for the last one's \
         runtime to be freed and the spare to be built; batches: 100 calls in flight, then \
         all waited for (no spare: every call builds its engine). The trusted warm call is \
         `pool.js(\"m\", \"default\").call(1)` on the same function loaded as module `m` in \
         `JsOptions`, one context reused by every call. Floors, on the bench thread with \
         rquickjs: the script's bytecode (compiled once, `Module::declare` + `write`) loaded \
         into a fresh `Runtime::new` + `Context::full` (or `Context::custom` with knit's \
         strict intrinsics, no `Eval`), evaluated, its export called, everything dropped; \
         and that floor's phases timed one at a time within it (`Runtime::new`, the \
         context, load + eval + call, dropping both). CPU-bound: `{SPIN}` called with n = {turns} (about 1 ms on \
         the bench thread), strict back to back against the trusted call and the same function \
         warm in-process; the strict call's CPU budget is billed from the thread CPU clock \
         at each slice and at each poll of its interrupt handler (QuickJS polls it every \
         10,000 branches and calls, a few times per ms here), so the strict call's extra time \
         over the trusted one is its engine's fixed cost, as on the trivial call, plus those \
         clock reads, which are within this VM's noise."
    );
    let meta = Meta {
        name: "strict",
        title: "JS strict mode: a pristine engine per call",
        about: &about,
        rounds: args.pick(3, 7),
        primary: NAIVE_FULL,
        ..Meta::default()
    };
    let mut bench = Bench::new(&args, meta);
    let (slow, paused, hot, cpu) = args.pick((200, 50, 2_000, 20), (20_000, 400, 200_000, 400));
    let add_one = bytecode(ADD_ONE);
    let spin = bytecode(SPIN);

    // One call at a time.
    let code = add_one.clone();
    bench.add(spec(CALL, NAIVE_FULL, Role::Floor), slow, move |n| {
        fresh_calls(n, full, &code)
    });
    let code = add_one.clone();
    bench.add(spec(CALL, NAIVE_CUSTOM, Role::Floor), slow, move |n| {
        fresh_calls(n, no_eval, &code)
    });
    bench.add(spec(CALL, TRUSTED, Role::Peer), hot, |n| {
        trusted_calls(n, Shape::BackToBack, "m", 1)
    });
    bench.add(spec(CALL, STRICT_IDLE, Role::Knit), paused, |n| {
        strict_calls(n, Shape::Paused, LONG_SPIN, ADD_ONE, 1)
    });
    bench.add(spec(CALL, STRICT_PARKED, Role::Knit), paused, |n| {
        strict_calls(
            n,
            Shape::Paused,
            PoolOptions::default().worker_spin,
            ADD_ONE,
            1,
        )
    });
    bench.add(spec(CALL, STRICT_B2B, Role::Knit), slow, |n| {
        strict_calls(n, Shape::BackToBack, LONG_SPIN, ADD_ONE, 1)
    });

    // Batches of 100.
    let code = add_one.clone();
    bench.add(spec(BATCH, NAIVE_FULL, Role::Floor), slow, move |n| {
        fresh_calls(n, full, &code)
    });
    bench.add_in_steps(spec(BATCH, TRUSTED, Role::Peer), hot, 100, |n| {
        trusted_calls(n, Shape::Batch, "m", 1)
    });
    bench.add_in_steps(spec(BATCH, STRICT_BATCH, Role::Knit), slow, 100, |n| {
        strict_calls(n, Shape::Batch, LONG_SPIN, ADD_ONE, 1)
    });

    // The naive fresh call's phases.
    let phases = [
        (PHASE_RUNTIME, full as MakeContext, Phase::Runtime),
        (PHASE_FULL, full, Phase::Context),
        (PHASE_CUSTOM, no_eval, Phase::Context),
        (PHASE_RUN, full, Phase::Run),
        (PHASE_FREE, full, Phase::Free),
    ];
    for (system, make, phase) in phases {
        let code = add_one.clone();
        bench.add(spec(PIECES, system, Role::Floor), slow, move |n| {
            fresh_phase(n, make, &code, phase)
        });
    }

    // CPU-bound.
    bench.add(spec(CPU, IN_PROCESS, Role::Floor), cpu, move |n| {
        in_process_calls(n, &spin, turns)
    });
    bench.add(spec(CPU, TRUSTED, Role::Peer), cpu, move |n| {
        trusted_calls(n, Shape::BackToBack, "spin", turns)
    });
    bench.add(spec(CPU, STRICT_B2B, Role::Knit), cpu, move |n| {
        strict_calls(n, Shape::BackToBack, LONG_SPIN, SPIN, turns)
    });

    bench.finish_with(goals)
}
