//! Orderings of the call table's parties that the pool-level tests can only
//! hit by chance, replayed step by step.

use std::time::{Duration, Instant};

use super::{CallTable, CallerSpin, Ticket};
use crate::admission::Admission;
use crate::error::CallError;
use crate::options::QueuePolicy;

/// A one-slot table with a one-place `max_queue`, and a ticket taken from it
/// the way a call is sent: place, slot, laned, a deadline armed.
fn one_armed_call() -> (CallTable, Ticket) {
    let admission = Admission::new(1, QueuePolicy::Reject);
    let table = CallTable::new(1, Some(admission)).unwrap();
    assert_eq!(table.admission.as_ref().unwrap().try_acquire(), Ok(true));
    let t = table.alloc().expect("a free slot");
    table.mark_laned(t, 0);
    table.arm(t, Instant::now());
    (table, t)
}

/// After everything settled: the slot is free exactly once, the place is
/// free exactly once, and the slot's next call starts clean.
fn assert_clean_reuse(table: &CallTable, old: Ticket) {
    let places = table.admission.as_ref().unwrap();
    assert_eq!(places.try_acquire(), Ok(true), "the place came back");
    assert!(
        matches!(places.try_acquire(), Err(CallError::QueueFull)),
        "the place came back once"
    );
    let next = table.alloc().expect("the slot came back");
    assert!(table.alloc().is_none(), "the slot came back once");
    assert_eq!(next.index, old.index);
    assert_ne!(next.gen, old.gen);
    assert!(!table.is_done(next));
    assert!(
        !table.aborted(next),
        "the next call starts without an abort flag"
    );
    assert!(!table.settled_early(next), "the next call is not skipped");
    assert!(table.claim_run(next), "the next call can be claimed");
}

/// The watchdog takes a deadline, the caller then discards the unsent ticket
/// (its send failed), and only then does the watchdog expire it: the late
/// timeout must not settle the freed slot (or, later, its next call).
#[test]
fn a_timeout_that_comes_after_a_discard_touches_nothing() {
    let (table, t) = one_armed_call();
    table.discard(t);
    table.expire(t.call_id());
    assert_clean_reuse(&table, t);
}

/// The timeout wins: the discard must leave the freeing and the place to it.
#[test]
fn a_discard_after_a_timeout_frees_once() {
    let (table, t) = one_armed_call();
    table.expire(t.call_id());
    table.discard(t);
    assert_clean_reuse(&table, t);
}

/// A waiting caller that pauses between looks and one that yields its core
/// both see a settlement made by another thread, in their spin or once
/// parked, and both give up at a deadline.
#[test]
fn a_waiting_caller_sees_the_settlement_whether_it_pauses_or_yields() {
    for yields in [false, true] {
        for (budget, settle_after) in [(Duration::from_secs(5), 1), (Duration::ZERO, 20)] {
            let table = CallTable::new(1, None).unwrap();
            let t = table.alloc().expect("a free slot");
            table.mark_laned(t, 0);
            let spin = CallerSpin { budget, yields };
            let soon = Instant::now() + Duration::from_millis(1);
            assert!(
                !table.wait(t, spin, Some(soon), || false),
                "not settled yet"
            );
            std::thread::scope(|s| {
                s.spawn(|| {
                    std::thread::sleep(Duration::from_millis(settle_after));
                    table.settle_early(t, CallError::Closed, false, None);
                });
                assert!(table.wait(t, spin, None, || false));
            });
            assert!(table.is_done(t), "yields {yields}, budget {budget:?}");
        }
    }
}
