//! Pending call deadlines, in expiry order, for the pool's watchdog thread.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The deadlines of calls in flight: (nanoseconds since the table's epoch, call id).
pub(crate) struct Deadlines {
    set: Mutex<State>,
    changed: Condvar,
}

struct State {
    pending: BTreeSet<(u64, u64)>,
    stopped: bool,
}

/// What the watchdog should do next.
pub(crate) enum Next {
    /// This call's deadline passed: time it out.
    Expired(u64),
    /// It slept (until a deadline, a new earliest deadline or its tick): look
    /// at the lanes, then ask again.
    Woke,
    /// The pool is gone.
    Stop,
}

impl Deadlines {
    pub(crate) fn new() -> Self {
        Deadlines {
            set: Mutex::new(State {
                pending: BTreeSet::new(),
                stopped: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a deadline, waking the watchdog if it is now the earliest.
    pub(crate) fn insert(&self, at: u64, call_id: u64) {
        let mut state = self.lock();
        let earliest = state.pending.first().is_none_or(|&(first, _)| at < first);
        state.pending.insert((at, call_id));
        drop(state);
        if earliest {
            self.changed.notify_all();
        }
    }

    /// Forgets a deadline (its call settled and its slot is being reused).
    pub(crate) fn remove(&self, at: u64, call_id: u64) {
        self.lock().pending.remove(&(at, call_id));
    }

    /// Takes the next expired deadline, or sleeps until one is due, a new
    /// earliest one arrives, or `tick` passes. `clock` reads the current time in
    /// the deadlines' unit.
    pub(crate) fn wait_next(&self, clock: impl Fn() -> u64, tick: Option<Duration>) -> Next {
        let mut state = self.lock();
        if state.stopped && state.pending.is_empty() {
            return Next::Stop;
        }
        let now = clock();
        let until_first = match state.pending.first().copied() {
            Some((at, id)) if at <= now => {
                state.pending.remove(&(at, id));
                return Next::Expired(id);
            }
            Some((at, _)) => Some(Duration::from_nanos(at - now)),
            None => None,
        };
        let sleep = match (until_first, tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Checked and slept under one lock hold, so an insert cannot slip in
        // between (its notify would be lost).
        match sleep {
            Some(d) => drop(self.changed.wait_timeout(state, d)),
            None => drop(self.changed.wait(state)),
        }
        Next::Woke
    }

    /// Tells the watchdog to exit once no deadline is pending.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}
