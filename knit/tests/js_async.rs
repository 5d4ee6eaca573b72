//! The JS event loop: async exports, timers, microtasks, many calls in flight on one worker, top-level await, timeouts and cancellation of running JS.
#![cfg(feature = "js")]

use std::time::{Duration, Instant};

use knit::js::{JsModule, JsOptions};
use knit::{create_pool, Call, CallError, Cancelled, Pool, PoolOptions};

const ASYNC: &str = r#"
export async function later(x, ms) { await sleep(ms); return x + 1; }
export function never() { return new Promise(() => {}); }
export function spin() { for (;;) {} }
export function spinCaught() {
    try { for (;;) {} } catch (e) { globalThis.caught = String(e); }
    globalThis.after = true;
    return "escaped";
}
export async function spinAfterAwait() { await null; for (;;) {} }
export async function spinAfterSleep() { await sleep(1); for (;;) {} }
export function spinInTimer() {
    return new Promise((resolve) => setTimeout(() => { for (;;) {} resolve(1); }, 1));
}
export function ticks(n, ms) {
    return new Promise((resolve) => {
        let count = 0;
        const id = setInterval(() => {
            count += 1;
            if (count === n) {
                clearInterval(id);
                // Nothing fires after the clear.
                setTimeout(() => resolve(count), ms * 5);
            }
        }, ms);
    });
}
export async function cleared() {
    let fired = false;
    const t = setTimeout(() => { fired = true; }, 5);
    clearTimeout(t);
    const i = setInterval(() => { fired = true; }, 5);
    clearInterval(i);
    clearTimeout(undefined);
    clearTimeout(123456);
    await sleep(40);
    return fired;
}
export async function order() {
    const log = [];
    setTimeout(() => log.push("timer"), 0);
    queueMicrotask(() => log.push("micro1"));
    Promise.resolve().then(() => log.push("then"));
    queueMicrotask(() => log.push("micro2"));
    log.push("sync");
    await sleep(20);
    return log;
}
export function timerArgs() {
    return new Promise((resolve) => setTimeout((a, b) => resolve(a + b), 1, 2, 3));
}
export function timerIds() {
    const a = setTimeout(() => {}, 1000);
    const b = setTimeout(() => {}, 1000);
    clearTimeout(a); clearTimeout(b);
    return [typeof a, a > 0, a !== b];
}
export async function timedOrder() {
    const log = [];
    const done = new Promise((resolve) => {
        setTimeout(() => log.push(30), 30);
        setTimeout(() => log.push(10), 10);
        setTimeout(() => log.push(20), 20);
        setTimeout(() => resolve(), 50);
    });
    await done;
    return log;
}
"#;

fn pool(threads: usize) -> Pool {
    create_pool(PoolOptions {
        threads,
        js: Some(JsOptions {
            modules: vec![JsModule::source("a", ASYNC)],
            bootstrap: Some(
                "globalThis.sleep = (ms) => new Promise((r) => setTimeout(r, ms));".into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap()
}

/// Waits for `call`, failing the test (instead of hanging it) after `limit`.
fn within<T: serde::de::DeserializeOwned>(
    call: Call<T>,
    limit: Duration,
    what: &str,
) -> Result<T, CallError> {
    match call.wait_for(limit) {
        Ok(r) => r,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn an_async_export_awaits_a_timer() {
    let pool = pool(1);
    let start = Instant::now();
    let r: i64 = pool.js("a", "later").apply((41, 50)).wait().unwrap();
    assert_eq!(r, 42);
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_hundred_calls_await_timers_on_one_worker_at_once() {
    let pool = pool(1);
    // Warm up (the export lookup) so the measurement is of the waits.
    let _: i64 = pool.js("a", "later").apply((0, 1)).wait().unwrap();
    let later = pool.js("a", "later");
    let start = Instant::now();
    let calls: Vec<Call<i64>> = (0..100)
        .map(|i| later.apply((i, 100 + (i % 5) * 25)))
        .collect();
    let results: Vec<i64> = calls
        .into_iter()
        .map(|c| within(c, PATIENCE, "a timer call").unwrap())
        .collect();
    let took = start.elapsed();
    assert_eq!(results, (1..=100).collect::<Vec<_>>());
    // The longest timer is 200 ms; serialized they would take 15 s. A
    // quarter of that is far beyond any slowness of a loaded VM.
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(
        took < Duration::from_millis(100 * 150 / 4),
        "100 concurrent 100-200 ms waits took {took:?}: serialized?"
    );
    let stats = pool.stats();
    assert_eq!(stats.lanes.len(), 1);
    assert!(stats.lanes[0].js_calls >= 101, "{:?}", stats.lanes[0]);
}

#[test]
fn intervals_timeouts_and_microtasks() {
    let pool = pool(1);
    let n: u32 = within(pool.js("a", "ticks").apply((5, 5)), PATIENCE, "ticks").unwrap();
    assert_eq!(n, 5, "the interval stopped at its clear");
    let fired: bool = within(pool.js("a", "cleared").apply(()), PATIENCE, "cleared").unwrap();
    assert!(!fired, "a cleared timer or interval fired");
    let log: Vec<String> = within(pool.js("a", "order").apply(()), PATIENCE, "order").unwrap();
    assert_eq!(log, ["sync", "micro1", "then", "micro2", "timer"]);
    let sum: i32 = within(pool.js("a", "timerArgs").apply(()), PATIENCE, "args").unwrap();
    assert_eq!(sum, 5);
    let ids: (String, bool, bool) = pool.js("a", "timerIds").apply(()).wait().unwrap();
    assert_eq!(ids, ("number".to_string(), true, true));
    let log: Vec<u32> = within(pool.js("a", "timedOrder").apply(()), PATIENCE, "timed").unwrap();
    assert_eq!(log, [10, 20, 30], "timers fire in deadline order");
}

#[test]
fn eval_supports_top_level_await() {
    let pool = pool(1);
    let v: i64 = pool
        .eval("const x = await new Promise((r) => setTimeout(() => r(20), 20)); x + 1")
        .wait()
        .unwrap();
    assert_eq!(v, 21);
    let v: String = pool.eval("await sleep(5); 'done'").wait().unwrap();
    assert_eq!(v, "done");
    // A plain (non-async) script's completion value.
    let v: Vec<u8> = pool.eval("[1, 2].map((x) => x * 2)").wait().unwrap();
    assert_eq!(v, [2, 4]);
    // An `undefined` completion reads as `()`.
    pool.eval::<()>("let unused = 1;").wait().unwrap();
}

#[test]
fn eval_batch_keeps_the_scripts_order() {
    let pool = pool(2);
    // Later scripts finish first; the calls still come back in order.
    let scripts: Vec<String> = (0..40)
        .map(|i| format!("await sleep({}); {i} * 10", 80 - 2 * i))
        .collect();
    let calls: Vec<Call<i64>> = pool.eval_batch(&scripts);
    assert_eq!(calls.len(), 40);
    let got: Vec<i64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
    assert_eq!(got, (0..40).map(|i| i * 10).collect::<Vec<_>>());
    let empty: Vec<Call<i64>> = pool.eval_batch(Vec::<String>::new());
    assert!(empty.is_empty());
}

#[test]
fn a_promise_that_never_settles_ends_with_the_timeout() {
    let pool = pool(1);
    let start = Instant::now();
    let r: Result<(), CallError> = pool
        .js("a", "never")
        .call(())
        .timeout(Duration::from_millis(50))
        .wait();
    assert_eq!(r, Err(CallError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(10));
    // The worker keeps answering, and lets go of the call it forgot.
    let v: i64 = within(pool.js("a", "later").apply((1, 1)), PATIENCE, "after never").unwrap();
    assert_eq!(v, 2);
    let deadline = Instant::now() + PATIENCE;
    while pool.stats().in_flight != 0 {
        assert!(
            Instant::now() < deadline,
            "the never-settling call stays in flight: {:?}",
            pool.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pool.stats().failed.timeout, 1);
}

#[test]
fn an_endless_loop_is_interrupted_by_the_timeout() {
    let pool = pool(1);
    let r: Result<(), CallError> = pool
        .js("a", "spin")
        .call(())
        .timeout(Duration::from_millis(50))
        .wait();
    assert_eq!(r, Err(CallError::Timeout));
    // Only an interrupted loop lets the one worker answer this.
    let v: i64 = within(pool.eval("40 + 2"), PATIENCE, "after an endless loop").unwrap();
    assert_eq!(v, 42);
}

#[test]
fn js_cannot_catch_the_interrupt() {
    let pool = pool(1);
    let r: Result<String, CallError> = pool
        .js("a", "spinCaught")
        .call(())
        .timeout(Duration::from_millis(50))
        .wait();
    assert_eq!(r, Err(CallError::Timeout));
    let seen: (Option<String>, Option<bool>) = within(
        pool.eval("[globalThis.caught ?? null, globalThis.after ?? null]"),
        PATIENCE,
        "after a caught loop",
    )
    .unwrap();
    assert_eq!(
        seen,
        (None, None),
        "the catch block or the code after it ran"
    );
}

#[test]
fn endless_loops_in_promise_jobs_and_timers_are_interrupted() {
    let pool = pool(1);
    for export in ["spinAfterAwait", "spinAfterSleep", "spinInTimer"] {
        let r: Result<i64, CallError> = pool
            .js("a", export)
            .call(())
            .timeout(Duration::from_millis(50))
            .wait();
        assert_eq!(r, Err(CallError::Timeout), "{export}");
        let v: i64 = within(pool.eval("1"), PATIENCE, export).unwrap();
        assert_eq!(v, 1, "after {export}");
    }
}

#[test]
fn cancelling_a_running_loop_interrupts_it() {
    let pool = pool(1);
    let call: Call<()> = pool.js("a", "spin").call(());
    // Let it start spinning.
    std::thread::sleep(Duration::from_millis(100));
    let how = call.cancel();
    assert_eq!(how, Cancelled::WhileRunning);
    assert_eq!(call.wait(), Err(CallError::Aborted));
    let v: i64 = within(pool.eval("2 + 2"), PATIENCE, "after a cancelled loop").unwrap();
    assert_eq!(v, 4);
    // A cancelled call pending on a promise is let go of too.
    let call: Call<()> = pool.js("a", "never").call(());
    std::thread::sleep(Duration::from_millis(50));
    call.cancel();
    assert_eq!(call.wait(), Err(CallError::Aborted));
    let v: i64 = within(
        pool.js("a", "later").apply((5, 1)),
        PATIENCE,
        "after cancel",
    )
    .unwrap();
    assert_eq!(v, 6);
}

#[test]
fn an_expired_call_does_not_stall_the_others() {
    let pool = pool(1);
    // Calls awaiting timers while one of them is stopped for its budget.
    let slow: Vec<Call<i64>> = (0..10)
        .map(|i| pool.js("a", "later").apply((i, 100)))
        .collect();
    let never: Call<()> = pool
        .js("a", "never")
        .call(())
        .timeout(Duration::from_millis(30));
    assert_eq!(never.wait(), Err(CallError::Timeout));
    let got: Vec<i64> = slow
        .into_iter()
        .map(|c| within(c, PATIENCE, "a slow call").unwrap())
        .collect();
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
}
