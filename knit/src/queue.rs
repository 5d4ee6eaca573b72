//! `Balancer::Shared`: one submission queue for the pool, claimed from by
//! whichever worker is idle.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use knit_transport::futex::{FutexWord, Sharing};

use crate::inline::InlineJob;

pub(crate) struct SharedQueue {
    jobs: Injector<InlineJob>,
    /// Bumped on every push and on close: what sleeping workers wait on.
    seq: FutexWord,
    sleepers: AtomicU32,
    /// Calls ever pushed (for `PoolStats::in_flight`).
    pub accepted: AtomicU64,
}

impl SharedQueue {
    pub(crate) fn new() -> Self {
        SharedQueue {
            jobs: Injector::new(),
            seq: FutexWord::new(0),
            sleepers: AtomicU32::new(0),
            accepted: AtomicU64::new(0),
        }
    }

    pub(crate) fn push(&self, job: InlineJob) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.jobs.push(job);
        self.seq.atomic().fetch_add(1, Ordering::SeqCst);
        // Pairs with `wait`: a worker either counted itself a sleeper before the
        // bump above (and is woken here) or reads the bumped value (and looks
        // at the queue again instead of sleeping).
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.seq.wake_one(Sharing::Private);
        }
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

    /// Spins up to `spin`, then sleeps until a job may be waiting or the pool
    /// closes (`closed()`).
    pub(crate) fn wait(&self, spin: Duration, closed: impl Fn() -> bool) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.jobs.is_empty() && !closed() {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(32) && start.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let seen = self.seq.atomic().load(Ordering::SeqCst);
        if self.jobs.is_empty() && !closed() {
            self.seq.wait(seen, Sharing::Private, None);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every sleeping worker (the pool closed).
    pub(crate) fn wake_all(&self) {
        self.seq.atomic().fetch_add(1, Ordering::SeqCst);
        self.seq.wake_all(Sharing::Private);
    }

    /// Empties the queue (for `shutdown_now`).
    pub(crate) fn take_all(&self) -> Vec<InlineJob> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}
