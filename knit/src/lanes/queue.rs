//! `Balancer::Shared`: one submission queue for the pool.
//!
//! Whichever worker is idle claims the next call from it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use knit_transport::futex::{FutexWord, Sharing};
use knit_transport::SpinBudget;

use super::job::InlineJob;

/// The queue, and what its sleeping workers wait on.
pub(crate) struct SharedQueue {
    jobs: Injector<InlineJob>,
    /// Bumped on every push and on close: what sleeping workers wait on.
    seq: FutexWord,
    sleepers: AtomicU32,
    /// Calls ever pushed (for `PoolStats::in_flight`).
    pub accepted: AtomicU64,
    /// The pool closed: no more pushes.
    closed: AtomicBool,
    /// Pushes under way. With `closed`, it tells workers when no job can
    /// arrive any more (a push that passed the `closed` check must still be
    /// served).
    pushing: AtomicU32,
}

impl SharedQueue {
    pub(crate) fn new() -> Self {
        SharedQueue {
            jobs: Injector::new(),
            seq: FutexWord::new(0),
            sleepers: AtomicU32::new(0),
            accepted: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            pushing: AtomicU32::new(0),
        }
    }

    /// Queues `job`, or hands it back if the pool has closed.
    pub(crate) fn push(&self, job: InlineJob) -> Result<(), InlineJob> {
        // Counted before `closed` is read, and `is_finished` reads them the
        // other way round (all sequentially consistent): a worker that finds
        // the queue closed either sees this push counted or this push sees
        // the queue closed.
        self.pushing.fetch_add(1, Ordering::SeqCst);
        if self.is_closed() {
            self.pushing.fetch_sub(1, Ordering::SeqCst);
            return Err(job);
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.jobs.push(job);
        self.pushing.fetch_sub(1, Ordering::SeqCst);
        self.seq.atomic().fetch_add(1, Ordering::SeqCst);
        // Pairs with `wait`: a worker either counted itself a sleeper before the
        // bump above (and is woken here) or reads the bumped value (and looks
        // at the queue again instead of sleeping).
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.seq.wake_one(Sharing::Private);
        }
        Ok(())
    }

    /// Refuses pushes from now on and wakes every sleeping worker.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Whether the queue is closed, empty, and no push is under way: no job
    /// will come any more.
    pub(crate) fn is_finished(&self) -> bool {
        self.is_closed() && self.pushing.load(Ordering::SeqCst) == 0 && self.jobs.is_empty()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Claims the next job, if any (each job goes to exactly one claimer).
    pub(crate) fn pop(&self) -> Option<InlineJob> {
        loop {
            match self.jobs.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Spins up to `spin`, then sleeps until a job may be waiting or the
    /// queue closes.
    pub(crate) fn wait(
        &self,
        spin: Duration,
        until: Option<Instant>,
        mut woken: impl FnMut() -> bool,
    ) {
        let mut budget = SpinBudget::new(spin, 32);
        let mut ready = || !self.jobs.is_empty() || self.is_closed() || woken();
        while !ready() {
            if budget.tick().is_some_and(|now| budget.spent(now)) {
                break;
            }
            std::hint::spin_loop();
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let seen = self.seq.atomic().load(Ordering::SeqCst);
        if !ready() {
            let timeout = until.map(|at| at.saturating_duration_since(Instant::now()));
            if timeout != Some(Duration::ZERO) {
                self.seq.wait(seen, Sharing::Private, timeout);
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every sleeping worker to look again (a waker fired, or a call
    /// reached a worker's own ring).
    pub(crate) fn nudge(&self) {
        self.wake_all();
    }

    fn wake_all(&self) {
        self.seq.atomic().fetch_add(1, Ordering::SeqCst);
        self.seq.wake_all(Sharing::Private);
    }

    /// Empties the queue (for `shutdown_now`).
    pub(crate) fn take_all(&self) -> Vec<InlineJob> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}
