//! What one worker is doing: the call it is on, and whether it was retired.
//!
//! Read by early settlers, the watchdog, a lane replacement and the worker's
//! own death watch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use knit_transport::fence;
use knit_transport::futex::Sharing;

use crate::table::Ticket;

/// `WorkerStatus::current` when the worker runs nothing.
const IDLE: u64 = u64::MAX;

/// What one worker thread is doing, readable by the watchdog and by the
/// thread's own death watch.
pub(crate) struct WorkerStatus {
    current: AtomicU64,
    /// The laned call this worker last decided to run (see `table`'s module
    /// docs): an early settler that finds `current` on a call waits for this
    /// or for the call's state to say it was skipped.
    running: AtomicU64,
    /// Set when the lane got a new worker: this one no longer counts calls.
    pub retired: AtomicBool,
}

impl WorkerStatus {
    pub(crate) fn new() -> Self {
        WorkerStatus {
            current: AtomicU64::new(IDLE),
            running: AtomicU64::new(IDLE),
            retired: AtomicBool::new(false),
        }
    }

    /// Publishes `t` as the call this worker starts, as the first half of the
    /// handshake with early settlers, a lane replacement and `shutdown_now`'s
    /// halt (see `table`'s module docs): a store and a light fence (their
    /// side runs the heavy one), after which the worker reads their flags.
    #[inline]
    pub(crate) fn begin(&self, t: Ticket) {
        self.current.store(t.call_id(), Ordering::Release);
        fence::light(Sharing::Private);
    }

    /// Records that this worker runs laned call `t` (after [`WorkerStatus::begin`]
    /// and the checks that follow it).
    #[inline]
    pub(crate) fn decide_to_run(&self, t: Ticket) {
        self.running.store(t.call_id(), Ordering::Release);
    }

    /// Whether this worker decided to run `t`.
    pub(crate) fn decided_to_run(&self, t: Ticket) -> bool {
        self.running.load(Ordering::Acquire) == t.call_id()
    }

    /// The other half, for a lane replacement: marks this worker retired, then
    /// returns the call it runs (whose frame must then not be handed to the
    /// new worker). Any laned call the worker starts after that sees `retired`
    /// and is claimed by compare-and-swap.
    pub(crate) fn retire(&self) -> Option<Ticket> {
        self.retired.store(true, Ordering::Release);
        fence::heavy(Sharing::Private);
        self.current()
    }

    /// Whether this worker was retired (read after [`WorkerStatus::begin`]'s fence).
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn stop(&self) {
        self.current.store(IDLE, Ordering::Release);
    }

    pub(crate) fn current(&self) -> Option<Ticket> {
        match self.current.load(Ordering::Acquire) {
            IDLE => None,
            id => Some(Ticket::from_call_id(id)),
        }
    }
}
