//! The seam between a worker's loop and an engine it hosts (the JS engine): calls that may stay pending across loop turns.
//!
//! A worker's loop knows nothing of JS. The pool hands each worker an
//! [`Engine`] (through `LaneHost::start_engine`) or none; the loop begins
//! the calls the engine serves in it, runs its turns between drains, and
//! parks until its next deadline. Process lanes will host the same kind of
//! engine in another process, behind the same trait.

use std::time::Instant;

use crate::table::{Outcome, Ticket};

/// What beginning a call did.
#[cfg_attr(not(feature = "js"), allow(dead_code))] // No engine without JS (yet).
pub(crate) enum Begun {
    /// It settled.
    Done(Outcome),
    /// It waits (on a promise, say): a later turn settles it.
    Pending,
}

/// An engine on a worker thread: made there, never moved.
pub(crate) trait Engine {
    /// Whether calls of task `task_id` are the engine's to run.
    fn serves(task_id: u64) -> bool;

    /// Begins call `ticket` of `task_id` on `input`.
    fn begin(&mut self, ticket: Ticket, task_id: u64, input: &[u8]) -> Begun;

    /// Runs the engine's due work (timers, queued jobs); returns the
    /// pending calls that settled, by call id.
    fn turn(&mut self) -> Vec<(u64, Outcome)>;

    /// Whether a turn has work now.
    fn has_work(&self) -> bool;

    /// When the engine next has work by itself (its earliest timer).
    fn next_deadline(&self) -> Option<Instant>;

    /// Once the pool is closed: whether a pending call may still settle (a
    /// timer it set is still set). `false` ends them.
    fn pending_may_settle(&self) -> bool;

    /// Stops tracking pending call `call` (its caller has an outcome).
    fn forget(&mut self, call: u64);

    /// Publishes the engine's counters on its lane (the heap's size too
    /// when `idle`).
    fn record(&self, lane: &super::thread::ThreadLane, idle: bool);
}

/// The engine of a pool built without one (never made).
#[cfg(not(feature = "js"))]
pub(crate) enum NoEngine {}

#[cfg(not(feature = "js"))]
impl Engine for NoEngine {
    fn serves(_: u64) -> bool {
        false
    }
    fn begin(&mut self, _: Ticket, _: u64, _: &[u8]) -> Begun {
        match *self {}
    }
    fn turn(&mut self) -> Vec<(u64, Outcome)> {
        match *self {}
    }
    fn has_work(&self) -> bool {
        match *self {}
    }
    fn next_deadline(&self) -> Option<Instant> {
        match *self {}
    }
    fn forget(&mut self, _: u64) {
        match *self {}
    }
    fn pending_may_settle(&self) -> bool {
        match *self {}
    }
    fn record(&self, _: &super::thread::ThreadLane, _: bool) {
        match *self {}
    }
}
