//! Hostile untrusted scripts against the CPU and wall budgets: endless loops (caught, in finally), a catastrophic regex, CPU split over awaits and timers, and 50 calls sharing one worker each billed only their own CPU.
#![cfg(feature = "js")]

#[path = "support/hostile.rs"]
mod hostile;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hostile::*;
use knit::js::{JsOptions, Limits};
use knit::{Call, CallError, LimitKind, Script};

static LOCK: Mutex<()> = Mutex::new(());

/// How many quiet calls have begun (see [`QUIET`]).
static STARTED: AtomicUsize = AtomicUsize::new(0);

#[knit::task]
fn started() -> usize {
    STARTED.fetch_add(1, Ordering::SeqCst) + 1
}

/// 100 ms of CPU (the bound is 220 ms) and a wall budget far beyond it, so
/// only the CPU budget can end these calls.
fn cpu_limits() -> Limits {
    limits(ms(100), ms(2000))
}

fn cpu_case(what: &str, source: &str) {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    let limits = cpu_limits();
    limit_case(&pool, what, source, limits, LimitKind::Cpu, limits.cpu);
}

#[test]
fn an_endless_for_loop_runs_out_of_cpu() {
    cpu_case("for(;;){}", "export default () => { for (;;) {} };");
}

#[test]
fn catching_the_cpu_interrupt_does_not_help() {
    cpu_case(
        "try { for(;;){} } catch {}",
        "export default () => { try { for (;;) {} } catch {} return 'caught'; };",
    );
}

#[test]
fn catching_the_interrupt_in_a_loop_does_not_help() {
    cpu_case(
        "for(;;) try { for(;;){} } catch {}",
        "export default () => { for (;;) { try { for (;;) {} } catch (e) {} } };",
    );
}

#[test]
fn an_endless_loop_of_empty_try_finally_runs_out_of_cpu() {
    cpu_case(
        "while(true) try {} finally {}",
        "export default () => { while (true) try {} finally {} };",
    );
}

#[test]
fn a_finally_that_loops_again_does_not_help() {
    cpu_case(
        "try { for(;;){} } finally { for(;;){} }",
        "export default () => { try { for (;;) {} } finally { for (;;) {} } };",
    );
}

#[test]
fn a_catastrophic_regex_runs_out_of_cpu() {
    cpu_case(
        "/(a+)+$/.test('a'.repeat(40)+'b')",
        "export default () => /(a+)+$/.test('a'.repeat(40) + 'b');",
    );
}

#[test]
fn a_loop_after_an_await_runs_out_of_cpu() {
    cpu_case(
        "await null; for(;;){}",
        "export default async () => { await null; for (;;) {} };",
    );
}

#[test]
fn a_loop_in_a_timer_callback_runs_out_of_cpu() {
    cpu_case(
        "setTimeout(() => { for(;;){} }, 1)",
        "export default () => new Promise((resolve) => setTimeout(() => { for (;;) {} resolve(1); }, 1));",
    );
}

#[test]
fn a_loop_in_a_getter_of_the_result_runs_out_of_cpu() {
    cpu_case(
        "return { get x() { for(;;){} } }",
        "export default () => ({ get x() { for (;;) {} } });",
    );
}

#[test]
fn a_loop_in_top_level_code_runs_out_of_cpu() {
    cpu_case("top-level for(;;){}", "for (;;) {} export default () => 1;");
}

/// A loop whose body is one slow builtin call (joining 100,000 strings):
/// QuickJS polls the interrupt handler every 10,000 branches and calls, not
/// per unit of time, so seconds pass between polls. On a thread lane this
/// is the documented boundary (docs/js.md, "The boundary, on threads"): the
/// caller gets `Timeout` one second past `wall`, `hard_timeout` replaces
/// the stuck lane, and the pool serves the next call.
#[test]
fn a_loop_of_slow_builtin_calls_is_abandoned_past_its_wall_budget() {
    let _serial = serial(&LOCK);
    let pool = test_pool(knit::PoolOptions {
        threads: 1,
        hard_timeout: Some(ms(200)),
        js: Some(Default::default()),
        ..Default::default()
    });
    normal_call_works(&pool);
    let limits = limits(ms(100), ms(300));
    let script = pool
        .untrusted(
            "export default () => { const a = new Array(1e5).fill('x'); let n = 0; for (;;) n += a.join(',').length; };",
            limits,
        )
        .unwrap();
    let started = Instant::now();
    let outcome = script.apply::<_, u64>(()).wait();
    let took = started.elapsed();
    // A builtin that returns in time still polls: on a fast machine the
    // budget may be enforced; either way the call never succeeds.
    match outcome {
        Err(CallError::Timeout) => assert!(took < ms(300 + 1000 + 2000), "took {took:?}"),
        Err(CallError::Limit {
            kind: LimitKind::Cpu | LimitKind::Wall,
            ..
        }) => {}
        other => panic!("a loop of slow builtins ended as {other:?}"),
    }
    // The replaced lane serves again (the first calls may still meet the
    // lane being replaced).
    let deadline = Instant::now() + Duration::from_secs(30);
    let ok = pool
        .untrusted("export default (x) => x + 1;", Limits::default())
        .unwrap();
    loop {
        match ok.call::<_, i64>(41).wait() {
            Ok(v) => break assert_eq!(v, 42),
            Err(CallError::Timeout | CallError::WorkerLost) if Instant::now() < deadline => {
                std::thread::sleep(ms(50))
            }
            Err(e) => panic!("the pool did not recover: {e:?}"),
        }
    }
}

/// One builtin call that runs long by itself (a default sort of 200,000
/// numbers compares them as strings) polls no interrupt: it is billed in
/// full when it returns (no time bound: that is the boundary on threads).
#[test]
fn one_long_builtin_call_is_billed_when_it_returns() {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    let limits = limits(ms(20), ms(20_000));
    let script = pool
        .untrusted(
            "export default () => { const a = []; for (let i = 0; i < 2e5; i++) a.push((i * 7919) % 1e6); a.sort(); return a[0]; };",
            limits,
        )
        .unwrap();
    let outcome = script.apply::<_, serde_json::Value>(()).wait();
    assert_limit("a.sort() of 2e5 numbers", &outcome, LimitKind::Cpu, &limits);
    normal_call_works(&pool);
}

/// Each slice spins 2 ms of `Date.now()` and then awaits a 0 ms timer: the
/// CPU budget is billed over all of them (not reset per slice), so the call
/// ends after about 100 ms of CPU, long before its 2 s wall budget.
#[test]
fn cpu_split_over_many_awaits_is_billed_in_full() {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    let limits = cpu_limits();
    let source = "
        export default async () => {
            for (let slices = 0; ; slices++) {
                const start = Date.now();
                while (Date.now() - start < 2) {}
                await new Promise((r) => setTimeout(r, 0));
            }
        };";
    let script = pool.untrusted(source, limits).unwrap();
    let what = "2 ms slices between setTimeout(0) awaits";
    let (outcome, took) = timed(what, limits.cpu, || script.apply::<_, ()>(()));
    assert_limit(what, &outcome, LimitKind::Cpu, &limits);
    // Over 50 slices ran: had the bill been reset per slice (or per
    // timer), the call would have gone on to its 2 s wall budget.
    assert!(
        took >= limits.cpu,
        "{what}: ended after {took:?}, before its {:?} of CPU could be used",
        limits.cpu
    );
    normal_call_works(&pool);
}

/// The same with a promise-job await (no timer) in between: the slices of
/// one turn are billed too.
#[test]
fn cpu_split_over_microtask_awaits_is_billed_in_full() {
    let _serial = serial(&LOCK);
    let pool = pool();
    let limits = cpu_limits();
    let source = "
        export default async () => {
            for (;;) {
                const start = Date.now();
                while (Date.now() - start < 2) {}
                await null;
            }
        };";
    let script = pool.untrusted(source, limits).unwrap();
    let what = "2 ms slices between `await null`";
    let (outcome, took) = timed(what, limits.cpu, || script.apply::<_, ()>(()));
    assert_limit(what, &outcome, LimitKind::Cpu, &limits);
    assert!(took >= limits.cpu, "{what}: ended after {took:?}");
    normal_call_works(&pool);
}

/// A call that only ever waits on timers uses almost no CPU: its wall
/// budget ends it.
#[test]
fn endless_timer_waits_run_out_of_wall_time() {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    let limits = limits(ms(100), ms(200));
    let source = "
        export default async () => {
            for (;;) await new Promise((r) => setTimeout(r, 1));
        };";
    let what = "for(;;) await setTimeout(1)";
    let took = limit_case(&pool, what, source, limits, LimitKind::Wall, limits.wall);
    assert!(took >= limits.wall, "{what}: ended after {took:?}");
}

/// A quiet call: about a millisecond of work in all, in 4 slices with a
/// 20 ms timer after each (so it lives for 80 ms or more).
const QUIET: &str = "
    import { started } from 'knit:host';
    export default async (id) => {
        started();
        let sum = 0;
        for (let slice = 0; slice < 4; slice++) {
            for (let i = 0; i < 2000; i++) sum = (sum + i * id) % 1000003;
            await new Promise((r) => setTimeout(r, 20));
        }
        return [id, sum];
    };";

/// What [`QUIET`] returns for `id`.
fn quiet_answer(id: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..4 {
        for i in 0..2000u64 {
            sum = (sum + i * id) % 1_000_003;
        }
    }
    sum
}

/// 49 quiet calls and one spinning neighbour share one worker. The spinner
/// is sent once the first 25 quiet calls have begun (and wait on their
/// timers), and its 50 ms of spinning (then the other quiet calls' slices)
/// fall inside their lives: each quiet call lives through far more than
/// its 50 ms CPU budget of the worker's CPU time, but is billed only its
/// own slices. The spinner runs out of its 50 ms; every quiet call succeeds.
#[test]
fn fifty_calls_on_one_worker_are_each_billed_their_own_cpu() {
    let _serial = serial(&LOCK);
    let pool = pool_with(JsOptions {
        expose: vec!["started".into()],
        ..Default::default()
    });
    normal_call_works(&pool);
    let quiet = pool
        .untrusted(QUIET, limits(ms(50), ms(5000)))
        .unwrap()
        .with_grants(["started"])
        .unwrap();
    let spinner_limits = limits(ms(50), ms(2000));
    let spinner = pool
        .untrusted("export default () => { for (;;) {} };", spinner_limits)
        .unwrap();
    let (id, sum): (u64, u64) = settle("a quiet call alone", quiet.call(1)).unwrap();
    assert_eq!((id, sum), (1, quiet_answer(1)));
    let bound = bound(spinner_limits.cpu);
    for attempt in 1..=ATTEMPTS {
        let spin_took = fifty_calls(&quiet, &spinner, &spinner_limits);
        if spin_took <= bound {
            break;
        }
        assert!(
            attempt < ATTEMPTS,
            "the spinner took {spin_took:?}, more than {bound:?}, in each of {ATTEMPTS} tries"
        );
        eprintln!("hostile-timing: the spinner: try {attempt} of {ATTEMPTS} over the bound, again");
    }
    normal_call_works(&pool);
}

/// One round of [`fifty_calls_on_one_worker_are_each_billed_their_own_cpu`]:
/// asserts every outcome; the spinner's time from its send to its outcome.
fn fifty_calls(quiet: &Script, spinner: &Script, spinner_limits: &Limits) -> Duration {
    STARTED.store(0, Ordering::SeqCst);
    let start = Instant::now();
    let mut calls: Vec<(u64, Call<(u64, u64)>)> = Vec::new();
    for id in 1..=25 {
        calls.push((id, quiet.call(id)));
    }
    let waiting = Instant::now();
    while STARTED.load(Ordering::SeqCst) < 25 {
        assert!(
            waiting.elapsed() < ms(5000),
            "the quiet calls did not begin"
        );
        std::thread::sleep(ms(1));
    }
    let spin_sent = Instant::now();
    let spin = spinner.apply::<_, ()>(());
    for id in 26..=49 {
        calls.push((id, quiet.call(id)));
    }
    let spun = settle("the spinner", spin);
    let spin_took = spin_sent.elapsed();
    let mut failures = Vec::new();
    for (id, call) in calls {
        match settle("a quiet call", call) {
            Ok(answer) => assert_eq!(answer, (id, quiet_answer(id)), "quiet call {id}"),
            Err(e) => failures.push((id, e)),
        }
    }
    let all = start.elapsed();
    report(
        "the spinner among 49 quiet calls",
        spin_took,
        bound(spinner_limits.cpu),
    );
    report("49 quiet calls and a spinner, all", all, bound(ms(5000)));
    assert!(failures.is_empty(), "quiet calls failed: {failures:?}");
    assert_limit("the spinner", &spun, LimitKind::Cpu, spinner_limits);
    // The quiet calls outlived the spinner: they were pending all along.
    assert!(
        all > spin_took + ms(20),
        "the quiet calls were done after {all:?}"
    );
    assert!(all <= bound(ms(5000)), "the 50 calls took {all:?}");
    spin_took
}

/// A cancelled call is no longer run: cancelling a spinning call from the
/// caller stops it at the next interrupt poll, and the worker goes on.
#[test]
fn a_cancelled_spinning_call_stops_and_the_worker_goes_on() {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    let limits = limits(ms(1000), ms(2000));
    let spinner = pool
        .untrusted("export default () => { for (;;) {} };", limits)
        .unwrap();
    let call = spinner.apply::<_, ()>(());
    std::thread::sleep(ms(50));
    let start = Instant::now();
    call.cancel();
    // The worker notices at the next interrupt poll: a normal call right
    // after is answered long before the spinner's 1 s of CPU.
    normal_call_works(&pool);
    let took = start.elapsed();
    report(
        "a normal call after cancelling a spinner",
        took,
        bound(ms(50)),
    );
    assert!(took <= bound(ms(50)), "the worker went on after {took:?}");
}
