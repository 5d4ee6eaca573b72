//! A thread lane as the host sees it: its request ring's sender, its workers, its counters.
//!
//! The request producer is shared by all calling threads behind a lock; the
//! counters are what balancers and stats read; the workers' statuses are what
//! it takes to replace the lane's worker when it dies or gets stuck.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::{Backoff, CachePadded};
use knit_transport::{Envelope, Producer, TransportError};

use super::lock::{LaneGuard, LaneLock};
use super::status::WorkerStatus;
use crate::stats::{Counters, FailureKind, Histogram, PoolCounters};
use crate::table::{CallTable, SlotCache, Ticket};

/// How long a sender waits on a full lane before letting go of its lock and
/// trying again (so a lane being replaced is never blocked by a sender).
const FULL_LANE_RETRY: Duration = Duration::from_millis(1);

/// What a sender holds while sending on a lane.
pub(crate) struct LaneSender {
    pub producer: Producer,
    /// Free call slots this lane hands out (refilled in bulk from the table).
    pub slots: SlotCache,
    /// How many times this lane got a new worker.
    pub generation: u64,
}

impl LaneSender {
    /// Adds the calls of every frame queued on this lane and not yet consumed
    /// to `into` (read from the producer's side; the worker, if alive, may
    /// still meet them, so what is done with them must tolerate that).
    pub(crate) fn queued_calls(&mut self, into: &mut Vec<Ticket>) {
        // A frame that cannot be read back is one whose call cannot be named.
        let _ = self
            .producer
            .salvage(|frame| into.push(Ticket::from_call_id(frame.envelope().call_id)));
    }
}

/// The statuses of a lane's workers. Behind a lock of its own, not the
/// sender's: early settlers read it, and a sender holds its lock while user
/// code (an argument's `Serialize`) runs, which may cancel a call.
pub(crate) struct LaneWorkers {
    /// The current worker's status.
    pub current: Arc<WorkerStatus>,
    /// Workers this lane retired that may still be running a call (dropped
    /// once their thread ends): early settlers look at them too.
    pub retired: Vec<Weak<WorkerStatus>>,
}

impl LaneWorkers {
    /// The current worker first, then the retired ones still alive.
    fn all(&self) -> impl Iterator<Item = Arc<WorkerStatus>> + '_ {
        let retired = self.retired.iter().filter_map(Weak::upgrade);
        std::iter::once(self.current.clone()).chain(retired)
    }

    /// The calls the lane's workers are on (for `shutdown_now`).
    pub(crate) fn running(&self) -> Vec<Ticket> {
        self.all().filter_map(|s| s.current()).collect()
    }

    /// Makes `fresh` the lane's worker; returns the call the old one is on
    /// (see [`WorkerStatus::retire`]).
    pub(crate) fn replace(&mut self, fresh: Arc<WorkerStatus>) -> Option<Ticket> {
        let keep = self.current.retire();
        self.retired.retain(|w| w.strong_count() > 0);
        let old = std::mem::replace(&mut self.current, fresh);
        self.retired.push(Arc::downgrade(&old));
        keep
    }

    /// Whether a worker of this lane runs (or ran) laned call `t`: read
    /// after raising `t`'s `settled_early` flag (see `table`'s module docs).
    /// A worker found on `t` is waited for until it has decided.
    pub(crate) fn runs(&self, t: Ticket, table: &CallTable) -> bool {
        for status in self.all() {
            let backoff = Backoff::new();
            while status.current() == Some(t) {
                if status.decided_to_run(t) {
                    return true;
                }
                if let Some(ran) = table.laned_ran(t) {
                    return ran;
                }
                // The worker is between publishing `t` and deciding: a few
                // instructions, unless it was preempted there.
                backoff.snooze();
            }
        }
        false
    }
}

/// Host-written and worker-written fields sit on separate cache lines: a
/// worker counting an outcome must not steal the line holding the sender lock.
pub(crate) struct ThreadLane {
    /// This lane's index among the pool's worker lanes.
    pub index: u32,
    sender: CachePadded<LaneLock<LaneSender>>,
    /// Its workers' statuses (changed under the sender lock, then this one).
    workers: Mutex<LaneWorkers>,
    /// Calls sent (written under the sender lock, on the host's side).
    submitted: CachePadded<AtomicU64>,
    /// Calls finished or skipped (written by the lane's current worker only).
    pub completed: CachePadded<AtomicU64>,
    /// The current worker thread (a replaced one is detached).
    pub handle: Mutex<Option<JoinHandle<()>>>,
    /// Calls accepted onto this lane, ever (for `PoolStats::in_flight`).
    accepted: CachePadded<AtomicU64>,
    /// Outcomes this lane's workers delivered (written by the current worker).
    pub outcomes: CachePadded<Counters>,
    /// Nanoseconds spent running tasks (with timing on).
    pub busy: CachePadded<AtomicU64>,
    pub wait: Histogram,
    pub run: Histogram,
    /// Times this lane got a new worker.
    pub restarts: AtomicU64,
    /// Calls its workers keep pending (async tasks' and an engine's, which
    /// wait without running): `shutdown_now` settles them too.
    waiting: Mutex<Vec<u64>>,
    /// JS calls its worker's engine began, and its heap's size in bytes.
    pub js_calls: AtomicU64,
    pub js_memory: AtomicU64,
    /// When `js_memory` was last measured (ms since the lane's epoch; the
    /// measure walks the engine's heap, so it is taken at most every 100 ms).
    #[cfg_attr(not(feature = "js"), allow(dead_code))] // No engine without JS (yet).
    engine_measured: std::sync::Mutex<Option<Instant>>,
}

impl ThreadLane {
    pub(crate) fn new(index: u32, producer: Producer) -> Self {
        ThreadLane {
            index,
            sender: CachePadded::new(LaneLock::new(LaneSender {
                producer,
                slots: SlotCache::new(),
                generation: 0,
            })),
            workers: Mutex::new(LaneWorkers {
                current: Arc::new(WorkerStatus::new()),
                retired: Vec::new(),
            }),
            submitted: CachePadded::new(AtomicU64::new(0)),
            completed: CachePadded::new(AtomicU64::new(0)),
            handle: Mutex::new(None),
            accepted: CachePadded::new(AtomicU64::new(0)),
            outcomes: CachePadded::new(Counters::new()),
            busy: CachePadded::new(AtomicU64::new(0)),
            wait: Histogram::new(),
            run: Histogram::new(),
            restarts: AtomicU64::new(0),
            waiting: Mutex::new(Vec::new()),
            js_calls: AtomicU64::new(0),
            js_memory: AtomicU64::new(0),
            engine_measured: std::sync::Mutex::new(None),
        }
    }

    /// Locks the request ring for sending; the caller must call
    /// [`ThreadLane::count_submitted`] for each message it sends.
    pub(crate) fn lock(&self) -> LaneGuard<'_, LaneSender> {
        self.sender.lock()
    }

    /// Sends one frame through `sender` (this lane's lock), waiting while the
    /// ring is full; hands the lock back with the result. While the lane
    /// stays full it lets go of the lock for a moment now and then: its
    /// worker may be dying and need the lock to be replaced.
    #[inline]
    pub(crate) fn send_frame<'a>(
        &'a self,
        mut sender: LaneGuard<'a, LaneSender>,
        env: Envelope,
        len: usize,
        fill: impl Fn(&mut [u8], &mut Envelope),
    ) -> (LaneGuard<'a, LaneSender>, Result<(), TransportError>) {
        loop {
            let sent = sender
                .producer
                .send_with(env, len, &fill, Some(FULL_LANE_RETRY));
            if !matches!(sent, Err(TransportError::Full)) {
                return (sender, sent);
            }
            drop(sender);
            std::thread::yield_now();
            sender = self.lock();
        }
    }

    /// The statuses of the lane's workers (never taken before the sender
    /// lock by a thread that holds this one).
    pub(crate) fn workers(&self) -> MutexGuard<'_, LaneWorkers> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one sent call (while holding the lock, so a plain increment is enough).
    #[inline]
    pub(crate) fn count_submitted(&self) {
        let n = self.submitted.load(Ordering::Relaxed) + 1;
        self.submitted.store(n, Ordering::Relaxed);
        let a = self.accepted.load(Ordering::Relaxed) + 1;
        self.accepted.store(a, Ordering::Relaxed);
    }

    /// Records a call moved here from the inline lane, which accepted it
    /// (while holding the lock, as [`ThreadLane::count_submitted`]).
    #[inline]
    pub(crate) fn count_moved_in(&self) {
        let n = self.submitted.load(Ordering::Relaxed) + 1;
        self.submitted.store(n, Ordering::Relaxed);
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Counts an outcome about to be delivered (or, with `undo`, takes the
    /// count back): without a read-modify-write by the lane's current worker,
    /// atomically (into the pool's `counters`) by a retired one still
    /// finishing a call.
    #[inline]
    pub(crate) fn count_outcome(
        &self,
        counters: &PoolCounters,
        status: &WorkerStatus,
        kind: Option<FailureKind>,
        undo: bool,
    ) {
        match (status.retired.load(Ordering::Relaxed), undo) {
            (true, false) => counters.outcomes.settled(kind),
            (true, true) => counters.outcomes.unsettle(kind),
            (false, false) => self.outcomes.settled_by_owner(kind),
            (false, true) => self.outcomes.unsettle_by_owner(kind),
        }
    }

    /// Records a finished run of `t` (a call of `table`) that started at `started`.
    pub(crate) fn record_timing(&self, table: &CallTable, t: Ticket, started: Instant) {
        let now = Instant::now();
        let run = now.duration_since(started).as_nanos() as u64;
        self.run.record(run);
        self.busy.fetch_add(run, Ordering::Relaxed);
        let enqueued = table.enqueued(t);
        if enqueued != 0 {
            let start = table.nanos(started);
            self.wait.record(start.saturating_sub(enqueued));
        }
    }

    /// After a replacement (under the lock): the lane now holds `queued` calls.
    pub(crate) fn reset_submitted(&self, queued: u64) {
        let completed = self.completed.load(Ordering::Acquire);
        self.submitted.store(completed + queued, Ordering::Relaxed);
    }

    /// Counts a finished (or skipped) call; only the lane's current worker.
    #[inline]
    pub(crate) fn count_completed(&self, status: &WorkerStatus) {
        if !status.retired.load(Ordering::Relaxed) {
            let done = self.completed.load(Ordering::Relaxed) + 1;
            self.completed.store(done, Ordering::Release);
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        let completed = self.completed.load(Ordering::Acquire);
        self.submitted
            .load(Ordering::Relaxed)
            .saturating_sub(completed) as usize
    }

    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Closes the request ring and hands the lane's cached slots back to
    /// `table`. Called after the pool is marked closed: a sender that takes
    /// the lock after this sees that mark, so it allocates nothing more here.
    pub(crate) fn close(&self, table: &CallTable) {
        let mut sender = self.lock();
        sender.producer.region().close();
        // Whoever closes holds the pool, so the table's keep may go here.
        drop(table.return_cache(&mut sender.slots));
    }

    /// Publishes the lane's engine's counters: `calls`, and when `idle` (at
    /// most every 100 ms) its heap's size, which `memory` measures.
    #[cfg_attr(not(feature = "js"), allow(dead_code))] // No engine without JS (yet).
    pub(crate) fn record_engine(&self, calls: u64, memory: impl FnOnce() -> u64, idle: bool) {
        self.js_calls.store(calls, Ordering::Relaxed);
        if idle {
            let mut last = self
                .engine_measured
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if last.is_none_or(|at| now.duration_since(at) >= Duration::from_millis(100)) {
                *last = Some(now);
                self.js_memory.store(memory(), Ordering::Relaxed);
            }
        }
    }

    /// Records that call `call` waits on this lane's worker (pending).
    pub(crate) fn wait_began(&self, call: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
    }

    /// Records that pending call `call` is no longer waiting.
    pub(crate) fn wait_ended(&self, call: u64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = waiting.iter().position(|&c| c == call) {
            waiting.swap_remove(i);
        }
    }

    /// The calls pending on this lane's workers now.
    pub(crate) fn waiting(&self) -> Vec<Ticket> {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.iter().map(|&c| Ticket::from_call_id(c)).collect()
    }

    /// Whether the lane's worker thread is still running.
    #[cfg(feature = "js")]
    pub(crate) fn handle_alive(&self) -> bool {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }

    pub(crate) fn take_handle(&self) -> Option<JoinHandle<()>> {
        self.handle.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(crate) fn set_handle(&self, handle: JoinHandle<()>) -> Option<JoinHandle<()>> {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(handle)
    }
}
