//! Host functions (`knit:host`), JS calls under every balancer and with an inline lane, and the lanes' JS stats.
#![cfg(feature = "js")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use knit::js::{JsModule, JsModuleError, JsOptions};
use knit::{
    create_pool, Balance, Balancer, Call, CallError, InlinePosition, Inliner, LaneLoad, Pool,
    PoolError, PoolOptions, TaskCx,
};

#[knit::task]
fn lookup(key: String) -> Option<u32> {
    match key.as_str() {
        "one" => Some(1),
        "two" => Some(2),
        _ => None,
    }
}

#[knit::task]
fn refuse(why: String) -> Result<u32, String> {
    Err(format!("refused: {why}"))
}

#[knit::task]
fn add_pair(pair: (i64, i64)) -> i64 {
    pair.0 + pair.1
}

#[knit::task]
fn explode(_: u8) -> u8 {
    panic!("host function blew up")
}

/// Which lane and thread the calling JS runs on.
#[knit::task]
fn where_am_i(cx: &TaskCx) -> (usize, String) {
    (cx.lane_id(), format!("{:?}", std::thread::current().id()))
}

/// Never exposed.
#[knit::task]
fn secret() -> u32 {
    7
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Item {
    name: String,
    qty: u32,
}

#[knit::task]
fn restock(item: Item) -> Item {
    Item {
        name: item.name.to_uppercase(),
        qty: item.qty + 10,
    }
}

const HOST: &str = r#"
import { lookup, refuse, add_pair, explode, where_am_i, restock } from "knit:host";
export const find = (k) => lookup(k);
export const isNull = (k) => lookup(k) === null;
export function caught(why) {
    try { refuse(why); return "not thrown"; }
    catch (e) { return [e instanceof Error, e.message]; }
}
export const add = (a, b) => add_pair(a, b);
export function panics() {
    try { explode(1); return "not thrown"; } catch (e) { return e.message; }
}
export const badArgument = () => lookup(() => 1);
export const uncaught = () => refuse("loudly");
export const where = () => where_am_i();
export const restocked = (name) => restock({ name, qty: 1 });
export async function afterAwait(k) { await null; return lookup(k); }
export const twice = (x) => 2 * x;
"#;

fn options(threads: usize) -> PoolOptions {
    PoolOptions {
        threads,
        js: Some(JsOptions {
            modules: vec![JsModule::source("h", HOST)],
            expose: vec![
                "lookup".into(),
                // A path works as well as the name.
                "js_host::refuse".into(),
                "add_pair".into(),
                "explode".into(),
                "where_am_i".into(),
                "restock".into(),
            ],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pool(threads: usize) -> Pool {
    create_pool(options(threads)).unwrap()
}

#[test]
fn js_calls_an_exposed_task() {
    let pool = pool(1);
    let find = pool.js("h", "find");
    assert_eq!(find.call::<_, Option<u32>>("two").wait().unwrap(), Some(2));
    assert_eq!(find.call::<_, Option<u32>>("zzz").wait().unwrap(), None);
    // None crosses into JS as null.
    assert!(pool
        .js("h", "isNull")
        .call::<_, bool>("zzz")
        .wait()
        .unwrap());
    assert!(!pool
        .js("h", "isNull")
        .call::<_, bool>("one")
        .wait()
        .unwrap());
    // Several JS arguments are the task's tuple.
    let sum: i64 = pool.js("h", "add").apply((40, 2)).wait().unwrap();
    assert_eq!(sum, 42);
    // A struct both ways.
    let item: Item = pool.js("h", "restocked").call("bolt").wait().unwrap();
    assert_eq!(
        item,
        Item {
            name: "BOLT".into(),
            qty: 11
        }
    );
    // From a promise job too.
    let one: Option<u32> = pool.js("h", "afterAwait").call("one").wait().unwrap();
    assert_eq!(one, Some(1));
    // The host function runs on the worker, synchronously.
    let (lane, _) = pool
        .js("h", "where")
        .call::<_, (usize, String)>(())
        .wait()
        .unwrap();
    assert_eq!(lane, 0);
    // From eval (a global script) through a dynamic import.
    let v: Option<u32> = pool
        .eval("(await import('knit:host')).lookup('one')")
        .wait()
        .unwrap();
    assert_eq!(v, Some(1));
}

#[test]
fn host_errors_are_thrown_into_js() {
    let pool = pool(1);
    let (is_error, message): (bool, String) =
        pool.js("h", "caught").call("no stock").wait().unwrap();
    assert!(is_error);
    assert!(message.contains("refused: no stock"), "{message}");
    let message: String = pool.js("h", "panics").call(()).wait().unwrap();
    assert!(message.contains("host function blew up"), "{message}");
    // Uncaught, it is the JS call's error.
    match pool.js("h", "uncaught").call::<_, u32>(()).wait() {
        Err(CallError::Js(e)) => assert!(e.message.contains("refused: loudly"), "{e:?}"),
        other => panic!("{other:?}"),
    }
    // An argument that cannot convert is a TypeError in JS.
    match pool.js("h", "badArgument").call::<_, u32>(()).wait() {
        Err(CallError::Js(e)) => assert_eq!(e.name, "TypeError", "{e:?}"),
        other => panic!("{other:?}"),
    }
    let v: i64 = pool.js("h", "twice").call(4).wait().unwrap();
    assert_eq!(v, 8, "the worker goes on");
}

#[test]
fn an_unexposed_task_is_not_importable() {
    // A static import of it fails create_pool: knit:host does not export it.
    let mut opts = options(1);
    let js = opts.js.as_mut().unwrap();
    js.modules.push(JsModule::source(
        "sneaky",
        "import { secret } from 'knit:host';\nexport const s = () => secret();",
    ));
    match create_pool(opts) {
        Err(PoolError::JsModule(JsModuleError::Evaluate {
            module, message, ..
        })) => {
            assert!(module == "sneaky" || module == "knit:host", "{module}");
            assert!(message.contains("secret"), "{message}");
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a module imported an unexposed task"),
    }
    // At run time it is simply not there.
    let pool = pool(1);
    let t: (String, String, bool) = pool
        .eval(
            "const host = await import('knit:host');\n\
             [typeof host.secret, typeof host.lookup, Object.keys(host).includes('secret')]",
        )
        .wait()
        .unwrap();
    assert_eq!(t, ("undefined".into(), "function".into(), false));
    // Nor through the global the module reads from.
    let t: String = pool
        .eval("typeof globalThis[Symbol.for('knit.host')]?.secret")
        .wait()
        .unwrap();
    assert_eq!(t, "undefined");
    // Exposing a task that does not exist fails create_pool, naming it.
    let mut opts = options(1);
    opts.js.as_mut().unwrap().expose.push("no_such_task".into());
    match create_pool(opts) {
        Err(PoolError::JsModule(e)) => assert!(e.to_string().contains("no_such_task"), "{e}"),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("exposed a task that does not exist"),
    }
    let _ = secret; // Referenced, so the task is in the binary.
}

struct LastLane;

impl Balance for LastLane {
    fn pick(&self, lanes: &[LaneLoad]) -> usize {
        lanes.len() - 1
    }
}

fn exercise(balancer: Balancer) -> Pool {
    let name = format!("{balancer:?}");
    // Made on another thread: a pool whose engines never start must fail
    // this test, not hang it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(create_pool(PoolOptions {
            balancer,
            ..options(2)
        }));
    });
    let pool = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(made) => made.unwrap(),
        Err(_) => panic!("{name}: create_pool did not return within 20 s"),
    };
    let calls: Vec<Call<i64>> = (0..40).map(|i| pool.js("h", "twice").call(i)).collect();
    let evals: Vec<Call<i64>> = pool.eval_batch((0..10).map(|i| format!("await null; {i} + 1")));
    for (i, c) in calls.into_iter().enumerate() {
        match c.wait_for(Duration::from_secs(20)) {
            Ok(r) => assert_eq!(r, Ok(2 * i as i64), "{name}: call {i}"),
            Err(_) => panic!("{name}: call {i} hangs"),
        }
    }
    for (i, c) in evals.into_iter().enumerate() {
        match c.wait_for(Duration::from_secs(20)) {
            Ok(r) => assert_eq!(r, Ok(i as i64 + 1), "{name}: eval {i}"),
            Err(_) => panic!("{name}: eval {i} hangs"),
        }
    }
    let found: Option<u32> = pool.js("h", "find").call("one").wait().unwrap();
    assert_eq!(found, Some(1), "{name}");
    let js: u64 = pool.stats().lanes.iter().map(|l| l.js_calls).sum();
    assert!(js >= 51, "{name}: {js} JS calls counted");
    pool
}

/// A session's evals under `pool`'s balancer, each after its worker had
/// time to go idle (and park).
fn session_evals(pool: &Pool, name: &str) {
    let s = pool.session().unwrap();
    for k in 1..=3i64 {
        std::thread::sleep(Duration::from_millis(50));
        match s
            .eval::<i64>("globalThis.k = (globalThis.k ?? 0) + 1")
            .wait_for(Duration::from_secs(10))
        {
            Ok(r) => assert_eq!(r, Ok(k), "{name}: session eval {k}"),
            Err(_) => panic!("{name}: session eval {k} on lane {} hangs", s.lane()),
        }
    }
}

#[test]
fn js_calls_work_under_every_lane_balancer() {
    for balancer in [
        Balancer::RoundRobin,
        Balancer::FirstIdle,
        Balancer::RandomLane,
        Balancer::FirstIdleOrRandom,
        Balancer::Custom(Arc::new(LastLane)),
    ] {
        let name = format!("{balancer:?}");
        let pool = exercise(balancer);
        session_evals(&pool, &name);
    }
}

#[test]
fn js_calls_work_under_the_shared_balancer() {
    exercise(Balancer::Shared);
}

#[test]
fn sessions_work_under_the_shared_balancer() {
    let pool = exercise(Balancer::Shared);
    session_evals(&pool, "Shared");
    // Back to back: each eval is sent while the worker may still be between
    // its last ring drain and parking on the queue.
    let s = pool.session().unwrap();
    for k in 1..=300i64 {
        match s
            .eval::<i64>("globalThis.k = (globalThis.k ?? 0) + 1")
            .wait_for(Duration::from_secs(5))
        {
            Ok(r) => assert_eq!(r, Ok(k), "session eval {k}"),
            Err(_) => panic!("back-to-back session eval {k} on lane {} hangs", s.lane()),
        }
    }
}

#[test]
fn js_calls_never_run_on_the_inline_lane() {
    for position in [InlinePosition::First, InlinePosition::Last] {
        let pool = create_pool(PoolOptions {
            inliner: Some(Inliner {
                position,
                batch_size: 4,
                dispatch_threshold: 0,
            }),
            ..options(1)
        })
        .unwrap();
        let me = format!("{:?}", std::thread::current().id());
        let worker_lane = match position {
            InlinePosition::First => 1,
            InlinePosition::Last => 0,
        };
        // Sanity: Rust calls do run inline here (on this waiting thread).
        let rust: Vec<Call<(usize, String)>> = (0..20).map(|_| pool.call.where_am_i()).collect();
        let inline = rust
            .into_iter()
            .map(|c| c.wait().unwrap())
            .filter(|(_, thread)| *thread == me)
            .count();
        assert!(inline > 0, "{position:?}: no Rust call ran inline");
        // JS calls all run on the worker.
        let js: Vec<Call<(usize, String)>> =
            (0..20).map(|_| pool.js("h", "where").call(())).collect();
        for c in js {
            let (lane, thread) = c.wait().unwrap();
            assert_ne!(
                thread, me,
                "{position:?}: a JS call ran on the calling thread"
            );
            assert_eq!(lane, worker_lane, "{position:?}");
        }
        let evals: Vec<Call<(usize, String)>> =
            pool.eval_batch((0..10).map(|_| "(await import('knit:host')).where_am_i()"));
        for c in evals {
            let (lane, thread) = c.wait().unwrap();
            assert_ne!(
                thread, me,
                "{position:?}: an eval ran on the calling thread"
            );
            assert_eq!(lane, worker_lane, "{position:?}");
        }
        let s = pool.session().unwrap();
        assert_eq!(s.lane(), worker_lane, "{position:?}");
    }
}

#[test]
fn lane_stats_count_js_calls_and_engine_memory() {
    let pool = pool(2);
    let before = pool.stats();
    assert_eq!(before.lanes.len(), 2);
    assert!(
        before.lanes.iter().all(|l| l.js_calls == 0),
        "{:?}",
        before.lanes
    );
    let calls: Vec<Call<i64>> = (0..10).map(|i| pool.js("h", "twice").call(i)).collect();
    for c in calls {
        c.wait().unwrap();
    }
    pool.eval::<i64>("1").wait().unwrap();
    // The memory is sampled when a worker goes idle: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = pool.stats();
        if stats.lanes.iter().all(|l| l.js_memory_bytes > 0) || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let js: Vec<u64> = stats.lanes.iter().map(|l| l.js_calls).collect();
    assert_eq!(js.iter().sum::<u64>(), 11, "{js:?}");
    // Round robin: both lanes had some.
    assert!(js.iter().all(|&n| n >= 1), "{js:?}");
    for lane in &stats.lanes {
        // An engine with a module loaded takes well over 10 kB and far
        // less than 1 GB.
        assert!(
            lane.js_memory_bytes > 10_000 && lane.js_memory_bytes < 1 << 30,
            "{lane:?}"
        );
    }
    // A Rust-only pool has none of it.
    let plain = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(plain.call.add_pair((1, 2)).wait(), Ok(3));
    let l = &plain.stats().lanes[0];
    assert_eq!((l.js_calls, l.js_memory_bytes), (0, 0));
    // And its JS calls fail: no engine.
    assert!(matches!(
        plain.eval::<i64>("1").wait(),
        Err(CallError::UnknownTask(_))
    ));
}
