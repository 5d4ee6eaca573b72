//! Abort signals, cancellation, timeouts, the call table's capacity and
//! `TaskCx`: each call settles once, with the right outcome, and a call
//! cancelled or timed out while queued never runs.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use knit::{create_pool, CallError, Cancelled, PoolOptions, TaskCx};

/// Gates keyed by test, so tests running in parallel do not share one.
static GATES: Mutex<Option<HashMap<u64, bool>>> = Mutex::new(None);
static GATE_CHANGED: Condvar = Condvar::new();
/// (test key, call tag) of every run that started.
static RAN: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn open(key: u64) {
    GATES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(key, true);
    GATE_CHANGED.notify_all();
}

fn pass(key: u64) {
    let mut gates = GATES.lock().unwrap();
    while !gates
        .get_or_insert_with(HashMap::new)
        .get(&key)
        .copied()
        .unwrap_or(false)
    {
        gates = GATE_CHANGED.wait(gates).unwrap();
    }
}

fn ran(key: u64) -> HashSet<u64> {
    RAN.lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == key)
        .map(|r| r.1)
        .collect()
}

/// Records that it ran, then waits at gate `key` before returning `tag`.
#[knit::task]
fn gated(a: (u64, u64)) -> u64 {
    RAN.lock().unwrap().push(a);
    pass(a.0);
    a.1
}

/// Records that it ran, then spins until aborted (or `limit` spins).
#[knit::task]
fn until_aborted(a: (u64, u64), cx: &TaskCx) -> Result<u64, String> {
    RAN.lock().unwrap().push(a);
    for i in 0..u64::MAX {
        if cx.stop_requested() {
            return Err(format!("stopped at {i}"));
        }
        std::thread::yield_now();
    }
    Ok(a.1)
}

#[knit::task(timeout_ms = 20)]
fn budgeted(_: (), cx: &TaskCx) -> Result<bool, String> {
    let has_deadline = cx.deadline().is_some();
    while !cx.stop_requested() {
        std::thread::yield_now();
    }
    Err(format!("aborted; deadline known: {has_deadline}"))
}

#[knit::task]
fn describe(_: (), cx: &TaskCx) -> (u64, usize, bool) {
    (cx.call_id(), cx.lane_id(), cx.deadline().is_some())
}

#[knit::task(timeout_ms = 60_000)]
fn describe_budgeted(_: (), cx: &TaskCx) -> bool {
    cx.deadline().is_some()
}

#[knit::task]
fn id(x: u64) -> u64 {
    x
}

fn one_lane() -> knit::Pool {
    create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn abort_signals_the_task_and_still_delivers_its_result() {
    let pool = one_lane();
    let call = pool.call.until_aborted((1, 0));
    while !ran(1).contains(&0) {
        std::thread::yield_now();
    }
    call.request_stop();
    match call.wait() {
        Err(CallError::Task(e)) => assert!(e.message().starts_with("stopped at "), "{e}"),
        other => panic!("expected the task's own error, got {other:?}"),
    }
}

#[test]
fn a_call_cancelled_while_queued_never_runs() {
    let pool = one_lane();
    let first = pool.call.gated((2, 0));
    let second = pool.call.gated((2, 1));
    let third = pool.call.gated((2, 2));
    assert_eq!(second.cancel(), Cancelled::BeforeRun);
    assert_eq!(second.cancel(), Cancelled::TooLate, "settles once");
    open(2);
    assert_eq!(first.wait(), Ok(0));
    assert_eq!(third.wait(), Ok(2)); // ran after the slot where `second` was
    assert_eq!(second.wait(), Err(CallError::Aborted));
    assert_eq!(ran(2), HashSet::from([0, 2]));
}

#[test]
fn a_running_call_cancelled_is_aborted_and_its_late_result_dropped() {
    let pool = one_lane();
    let call = pool.call.until_aborted((3, 0));
    while !ran(3).contains(&0) {
        std::thread::yield_now();
    }
    assert_eq!(call.cancel(), Cancelled::WhileRunning);
    assert_eq!(call.wait(), Err(CallError::Aborted));
    // The lane is free again once the task saw the flag.
    assert_eq!(pool.call.id(7).wait(), Ok(7));
}

#[test]
fn a_call_timed_out_while_queued_never_runs() {
    let pool = one_lane();
    let blocker = pool.call.gated((4, 0));
    let late = pool.call.gated((4, 1)).timeout(Duration::from_millis(10));
    assert_eq!(late.wait(), Err(CallError::Timeout));
    open(4);
    assert_eq!(blocker.wait(), Ok(0));
    assert_eq!(pool.call.id(1).wait(), Ok(1));
    assert_eq!(ran(4), HashSet::from([0]));
}

#[test]
fn a_running_call_times_out_and_the_task_sees_the_abort() {
    let pool = one_lane();
    let call = pool
        .call
        .until_aborted((5, 0))
        .timeout(Duration::from_millis(10));
    assert_eq!(call.wait(), Err(CallError::Timeout));
    // The task stops by itself (it polls the flag), so the lane serves again.
    assert_eq!(pool.call.id(9).wait(), Ok(9));
}

#[test]
fn timeout_or_resolves_with_the_default() {
    let pool = one_lane();
    let r = pool
        .call
        .until_aborted((6, 0))
        .timeout_or(Duration::from_millis(5), 42)
        .wait();
    assert_eq!(r, Ok(42));
}

#[test]
fn a_task_default_budget_applies_and_is_visible_to_the_task() {
    let pool = one_lane();
    assert_eq!(pool.call.budgeted(()).wait(), Err(CallError::Timeout));
    // A task's default budget is armed before the call is sent, so the task
    // always sees it. (A budget set with `.timeout()` after the call was made
    // may come after the task has already looked.)
    assert_eq!(pool.call.describe_budgeted(()).wait(), Ok(true));
    let (_, _, has_deadline) = pool.call.describe(()).wait().unwrap();
    assert!(!has_deadline);
}

#[test]
fn task_cx_names_the_call_and_its_lane() {
    let pool = create_pool(PoolOptions {
        threads: 2,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..10 {
        let call = pool.call.describe(());
        let id = call.id().unwrap();
        let (seen_id, lane, has_deadline) = call.wait().unwrap();
        assert_eq!(seen_id, id);
        assert!(lane < 2);
        assert!(!has_deadline);
    }
}

#[test]
fn the_call_table_is_bounded_and_recycled() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        max_in_flight: 4,
        ..Default::default()
    })
    .unwrap();
    let held: Vec<_> = (0..4).map(|i| pool.call.gated((8, i))).collect();
    assert_eq!(
        pool.call.id(1).wait(),
        Err(CallError::TooManyInFlight { limit: 4 })
    );
    open(8);
    for (i, c) in held.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(i as u64));
    }
    for i in 0..1000 {
        assert_eq!(pool.call.id(i).wait(), Ok(i));
    }
}

#[test]
fn dropped_calls_do_not_leak_their_slots() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        max_in_flight: 2048,
        ..Default::default()
    })
    .unwrap();
    for round in 0..20u64 {
        for i in 0..1000 {
            drop(pool.call.id(i));
        }
        // The lane is FIFO: once this settles, every dropped call has run and
        // freed its slot.
        assert_eq!(pool.call.id(round).wait(), Ok(round));
    }
}

/// Waits until the run tagged (`key`, `tag`) has started.
fn started(key: u64, tag: u64) {
    while !ran(key).contains(&tag) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_cancel_handle_cancels_from_another_thread_queued_or_running() {
    let pool = one_lane();
    let first = pool.call.gated((100, 1));
    let queued = pool.call.gated((101, 2));
    let handle = queued.cancel_handle();
    let remote = handle.clone();
    assert_eq!(
        std::thread::spawn(move || remote.cancel()).join().unwrap(),
        Cancelled::BeforeRun
    );
    open(100);
    assert_eq!(first.wait(), Ok(1));
    assert_eq!(queued.wait(), Err(CallError::Aborted));
    assert!(ran(101).is_empty(), "a call cancelled while queued ran");
    assert_eq!(handle.cancel(), Cancelled::TooLate, "after it settled");

    let running = pool.call.until_aborted((102, 7));
    started(102, 7);
    let handle = running.cancel_handle();
    let remote = std::thread::spawn(move || handle.cancel());
    assert_eq!(remote.join().unwrap(), Cancelled::WhileRunning);
    assert_eq!(running.wait(), Err(CallError::Aborted));
    // The worker saw the stop flag and went on serving.
    open(103);
    assert_eq!(pool.call.gated((103, 3)).wait(), Ok(3));
}

#[test]
fn cancel_on_drop_cancels_what_a_plain_drop_lets_run() {
    let pool = one_lane();
    let first = pool.call.gated((110, 1));
    drop(pool.call.gated((111, 2)).cancel_on_drop());
    drop(pool.call.gated((112, 3)));
    open(110);
    open(112);
    assert_eq!(first.wait(), Ok(1));
    // A later call on the one lane runs after both dropped ones were met.
    open(113);
    assert_eq!(pool.call.gated((113, 4)).wait(), Ok(4));
    assert!(ran(111).is_empty(), "a call cancelled on drop ran");
    assert!(ran(112).contains(&3), "a plainly dropped call did not run");

    let running = pool.call.until_aborted((114, 5)).cancel_on_drop();
    started(114, 5);
    drop(running);
    // The task saw the flag, stopped, and the lane is free again.
    open(115);
    assert_eq!(pool.call.gated((115, 6)).wait(), Ok(6));
    assert_eq!(pool.stats().failed.aborted, 2);
}

#[test]
fn a_call_waiting_for_room_is_cancelled_by_its_handle_and_never_sent() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        max_queue: Some(1),
        queue_policy: knit::QueuePolicy::Wait,
        ..PoolOptions::default()
    })
    .unwrap();
    let first = pool.call.gated((120, 1));
    let waiting = pool.call.gated((121, 2));
    let handle = waiting.cancel_handle();
    assert_eq!(handle.cancel(), Cancelled::BeforeRun);
    assert_eq!(handle.cancel(), Cancelled::TooLate);
    open(120);
    open(121);
    assert_eq!(first.wait(), Ok(1));
    assert_eq!(waiting.wait(), Err(CallError::Aborted));
    assert_eq!(pool.call.gated((121, 3)).wait(), Ok(3));
    assert!(!ran(121).contains(&2), "the cancelled call was sent");
}

#[test]
#[allow(deprecated)]
fn the_old_names_still_work() {
    #[knit::task]
    fn old_style(_: (), cx: &TaskCx) -> bool {
        while !cx.has_aborted() {
            std::thread::yield_now();
        }
        true
    }
    let pool = one_lane();
    let call = pool.call.old_style(());
    call.abort();
    assert_eq!(call.wait(), Ok(true));
}
