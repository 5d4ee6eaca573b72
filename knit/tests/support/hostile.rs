//! What the `hostile_*` tests share: one-thread JS pools, a timed runner that asserts a hostile call ends within twice its budget plus 20 ms, the typed-outcome checks, and the normal call that proves the pool still answers afterwards.
#![allow(dead_code)] // Each hostile test file uses some of it.

use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use knit::js::{JsError, JsOptions, Limits};
use knit::{create_pool, Call, CallError, LimitKind, Pool, PoolOptions};
use serde::de::DeserializeOwned;

/// The fixed allowance on top of twice the binding budget.
pub const SLACK: Duration = Duration::from_millis(20);

/// How long past its bound a call may go before the test calls it hung
/// (and stops waiting, so that a hang fails the test instead of stalling it).
const HANG: Duration = Duration::from_secs(10);

/// The time a hostile call with binding budget `budget` may take: twice
/// the budget plus [`SLACK`].
pub fn bound(budget: Duration) -> Duration {
    budget * 2 + SLACK
}

/// Milliseconds, for budgets.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Takes the file's lock: the cases of one file run one after another, so
/// their timings do not share the 2-core VM with each other.
pub fn serial(lock: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    lock.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool for one hostile case: dropping it shuts it down and joins its
/// worker (for at most 3 s), so that the next case does not share the CPUs
/// with this one's teardown (freeing a 32 MiB heap, say).
pub struct TestPool(Pool);

impl std::ops::Deref for TestPool {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.0
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        self.0.shutdown_timeout(Duration::from_secs(3));
    }
}

/// A one-thread pool with a JS engine and no modules.
pub fn pool() -> TestPool {
    pool_with(JsOptions::default())
}

/// A one-thread pool with these JS options.
pub fn pool_with(js: JsOptions) -> TestPool {
    test_pool(PoolOptions {
        threads: 1,
        js: Some(js),
        ..Default::default()
    })
}

/// A pool with these options.
pub fn test_pool(options: PoolOptions) -> TestPool {
    TestPool(create_pool(options).expect("a JS pool"))
}

/// Limits with these CPU and wall budgets (the rest default).
pub fn limits(cpu: Duration, wall: Duration) -> Limits {
    Limits {
        cpu,
        wall,
        ..Limits::default()
    }
}

/// How many times in all a case is run whose only fault was its time,
/// before the test fails. The VM these tests run on is shared: a worker
/// that got less than half a core for a while misses a bound of twice its
/// CPU budget through no fault of the engine. A case the engine makes slow
/// misses it every time; a retried case must end exactly as it did before.
pub const ATTEMPTS: usize = 3;

/// Makes a call with `send` and waits for it, measuring both. Panics if it
/// took longer than [`bound`]`(budget)` in each of [`ATTEMPTS`] tries (or
/// never settled, or a retry ended otherwise). Prints a `hostile-timing:`
/// line with the time and the bound for every try.
pub fn timed<R: DeserializeOwned + Debug>(
    what: &str,
    budget: Duration,
    send: impl Fn() -> Call<R>,
) -> (Result<R, CallError>, Duration) {
    let bound = bound(budget);
    let mut first: Option<String> = None;
    for attempt in 1..=ATTEMPTS {
        let start = Instant::now();
        let call = send();
        let outcome = match call.wait_for(bound + HANG) {
            Ok(outcome) => outcome,
            Err(call) => {
                call.cancel();
                panic!("{what}: no outcome after {:?} (hung)", start.elapsed());
            }
        };
        let took = start.elapsed();
        report(what, took, bound);
        let shown = format!("{outcome:?}");
        match &first {
            Some(before) => assert_eq!(
                &shown, before,
                "{what}: a retry (after a try over the bound) ended otherwise"
            ),
            None => first = Some(shown),
        }
        if took <= bound {
            return (outcome, took);
        }
        assert!(
            attempt < ATTEMPTS,
            "{what}: took {took:?}, more than {bound:?} (2 x {budget:?} + {SLACK:?}), in each of {ATTEMPTS} tries; outcome {outcome:?}"
        );
        eprintln!("hostile-timing: {what}: try {attempt} of {ATTEMPTS} over the bound, again");
    }
    unreachable!("the last try returns or panics")
}

/// Prints one `hostile-timing:` line (collected with `--nocapture`).
pub fn report(what: &str, took: Duration, bound: Duration) {
    eprintln!(
        "hostile-timing: {what}: {:.1} ms of {:.0} ms ({:.0}%)",
        took.as_secs_f64() * 1e3,
        bound.as_secs_f64() * 1e3,
        100.0 * took.as_secs_f64() / bound.as_secs_f64()
    );
}

/// The budget of kind `kind` in `limits`, as `CallError::Limit` reports it.
pub fn limit_value(kind: LimitKind, limits: &Limits) -> u64 {
    match kind {
        LimitKind::Cpu => limits.cpu.as_nanos() as u64,
        LimitKind::Wall => limits.wall.as_nanos() as u64,
        LimitKind::Memory => limits.memory_bytes as u64,
        LimitKind::Stack => limits.stack_bytes as u64,
        LimitKind::Input => limits.input_bytes as u64,
        LimitKind::Output => limits.output_bytes as u64,
        other => panic!("a limit kind the tests do not know: {other:?}"),
    }
}

/// Asserts `outcome` is `CallError::Limit` of `kind` reporting its budget.
pub fn assert_limit<R: Debug>(
    what: &str,
    outcome: &Result<R, CallError>,
    kind: LimitKind,
    limits: &Limits,
) {
    match outcome {
        Err(CallError::Limit { kind: k, limit }) if *k == kind => {
            assert_eq!(
                *limit,
                limit_value(kind, limits),
                "{what}: the reported budget"
            );
        }
        other => panic!("{what}: expected CallError::Limit {{ kind: {kind:?} }}, got {other:?}"),
    }
}

/// The JS error `outcome` is, or a panic naming what it is instead.
pub fn js_error<R: Debug>(what: &str, outcome: Result<R, CallError>) -> JsError {
    match outcome {
        Err(CallError::Js(e)) => *e,
        other => panic!("{what}: expected CallError::Js, got {other:?}"),
    }
}

/// Asserts `outcome` is a JS error named `name` whose message contains `message`.
pub fn assert_js<R: Debug>(what: &str, outcome: Result<R, CallError>, name: &str, message: &str) {
    let e = js_error(what, outcome);
    assert_eq!(e.name, name, "{what}: {e:?}");
    assert!(
        e.message.contains(message),
        "{what}: the message {:?} does not contain {message:?}",
        e.message
    );
}

/// Waits for `call` (at most [`HANG`]).
pub fn settle<R: DeserializeOwned>(what: &str, call: Call<R>) -> Result<R, CallError> {
    match call.wait_for(HANG) {
        Ok(outcome) => outcome,
        Err(call) => {
            call.cancel();
            panic!("{what}: no outcome within {HANG:?} (hung)");
        }
    }
}

/// A normal untrusted call on `pool` answers correctly (a computed value,
/// through the argument and the result), and so does a call with an
/// awaited timer.
pub fn normal_call_works(pool: &Pool) {
    let script = pool
        .untrusted(
            "export default (n) => { let s = 0; for (let i = 1; i <= n; i++) s += i * i; return [n, s, `ok:${n}`]; };
             export async function later(n) { await new Promise((r) => setTimeout(r, 1)); return n + 1; }",
            Limits::default(),
        )
        .expect("the normal script compiles");
    let answer: (u32, u64, String) = settle("the normal call", script.call(1000))
        .unwrap_or_else(|e| panic!("the normal call after a hostile one failed: {e:?}"));
    assert_eq!(answer, (1000, 333_833_500, "ok:1000".to_string()));
    let later: u32 = settle("the normal async call", script.export("later").call(41))
        .unwrap_or_else(|e| panic!("the normal async call after a hostile one failed: {e:?}"));
    assert_eq!(later, 42);
}

/// Runs a hostile call of `script`'s default export on no argument under
/// `limits`, asserting it ends as `CallError::Limit` of `kind` within the
/// bound of `budget`; then the normal call works on the same pool. The time.
pub fn limit_case(
    pool: &Pool,
    what: &str,
    source: &str,
    limits: Limits,
    kind: LimitKind,
    budget: Duration,
) -> Duration {
    let script = pool
        .untrusted(source, limits)
        .unwrap_or_else(|e| panic!("{what}: does not compile: {e}"));
    let (outcome, took) = timed(what, budget, || script.apply::<_, serde_json::Value>(()));
    assert_limit(what, &outcome, kind, &limits);
    normal_call_works(pool);
    took
}

/// Runs `script`'s default export on no argument as [`timed`] and returns
/// the outcome, decoded as `R`.
pub fn run<R: DeserializeOwned + Debug>(
    pool: &Pool,
    what: &str,
    source: &str,
    limits: Limits,
    budget: Duration,
) -> Result<R, CallError> {
    let script = pool
        .untrusted(source, limits)
        .unwrap_or_else(|e| panic!("{what}: does not compile: {e}"));
    timed(what, budget, || script.apply::<_, R>(())).0
}
