//! A worker lane as the host sees it: the request producer (shared by all
//! calling threads behind a mutex), the counters balancers read, and what it
//! takes to replace the lane's worker when it dies or gets stuck.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use knit_transport::Producer;

use crate::shared::Shared;
use crate::stats::{Counters, FailureKind, Histogram};
use crate::table::{SlotCache, Ticket};

/// `WorkerStatus::current` when the worker runs nothing.
const IDLE: u64 = u64::MAX;

/// What one worker thread is doing, readable by the watchdog and by the
/// thread's own death watch.
pub(crate) struct WorkerStatus {
    current: AtomicU64,
    /// Set when the lane got a new worker: this one no longer counts calls.
    pub retired: AtomicBool,
}

impl WorkerStatus {
    pub(crate) fn new() -> Self {
        WorkerStatus {
            current: AtomicU64::new(IDLE),
            retired: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn start(&self, t: Ticket) {
        self.current.store(t.call_id(), Ordering::Release);
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

/// What a sender holds while sending on a lane.
pub(crate) struct LaneSender {
    pub producer: Producer,
    /// Free call slots this lane hands out (refilled in bulk from the table).
    pub slots: SlotCache,
    /// The current worker's status.
    pub status: Arc<WorkerStatus>,
    /// How many times this lane got a new worker.
    pub generation: u64,
}

/// Host-written and worker-written fields sit on separate cache lines: a
/// worker counting an outcome must not steal the line holding the sender lock.
pub(crate) struct ThreadLane {
    sender: CachePadded<Mutex<LaneSender>>,
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
}

impl ThreadLane {
    pub(crate) fn new(producer: Producer) -> Self {
        ThreadLane {
            sender: CachePadded::new(Mutex::new(LaneSender {
                producer,
                slots: SlotCache::new(),
                status: Arc::new(WorkerStatus::new()),
                generation: 0,
            })),
            submitted: CachePadded::new(AtomicU64::new(0)),
            completed: CachePadded::new(AtomicU64::new(0)),
            handle: Mutex::new(None),
            accepted: CachePadded::new(AtomicU64::new(0)),
            outcomes: CachePadded::new(Counters::new()),
            busy: CachePadded::new(AtomicU64::new(0)),
            wait: Histogram::new(),
            run: Histogram::new(),
            restarts: AtomicU64::new(0),
        }
    }

    /// Locks the request ring for sending; the caller must call
    /// [`ThreadLane::count_submitted`] for each message it sends.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LaneSender> {
        self.sender.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one sent call (while holding the lock, so a plain increment is enough).
    #[inline]
    pub(crate) fn count_submitted(&self) {
        let n = self.submitted.load(Ordering::Relaxed) + 1;
        self.submitted.store(n, Ordering::Relaxed);
        let a = self.accepted.load(Ordering::Relaxed) + 1;
        self.accepted.store(a, Ordering::Relaxed);
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Counts an outcome about to be delivered (or, with `undo`, takes the
    /// count back): without a read-modify-write by the lane's current worker,
    /// atomically by a retired one still finishing a call.
    #[inline]
    pub(crate) fn count_outcome(
        &self,
        shared: &Shared,
        status: &WorkerStatus,
        kind: Option<FailureKind>,
        undo: bool,
    ) {
        match (status.retired.load(Ordering::Relaxed), undo) {
            (true, false) => shared.stats.outcomes.settled(kind),
            (true, true) => shared.stats.outcomes.unsettle(kind),
            (false, false) => self.outcomes.settled_by_owner(kind),
            (false, true) => self.outcomes.unsettle_by_owner(kind),
        }
    }

    /// Records a finished run that started at `started`.
    pub(crate) fn record_timing(&self, shared: &Shared, t: Ticket, started: Instant) {
        let now = Instant::now();
        let run = now.duration_since(started).as_nanos() as u64;
        self.run.record(run);
        self.busy.fetch_add(run, Ordering::Relaxed);
        let enqueued = shared.table.enqueued(t);
        if enqueued != 0 {
            let start = shared.table.nanos(started);
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

    pub(crate) fn close(&self) {
        self.lock().producer.region().close();
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
