//! `max_queue`: a counting gate on the calls in flight.

use std::sync::atomic::{AtomicU32, Ordering};

use knit_transport::futex::{FutexWord, Sharing};

use crate::error::CallError;
use crate::options::QueuePolicy;

pub(crate) struct Admission {
    in_flight: FutexWord,
    max: u32,
    policy: QueuePolicy,
    /// Threads sleeping for room (so a release wakes only when someone waits).
    sleepers: AtomicU32,
}

impl Admission {
    pub(crate) fn new(max: usize, policy: QueuePolicy) -> Self {
        Admission {
            in_flight: FutexWord::new(0),
            max: max.min(u32::MAX as usize) as u32,
            policy,
            sleepers: AtomicU32::new(0),
        }
    }

    /// Takes a place for one call, or fails (`Reject`) or sleeps (`Wait`) when
    /// all are taken.
    pub(crate) fn acquire(&self) -> Result<(), CallError> {
        let word = self.in_flight.atomic();
        loop {
            let n = word.load(Ordering::Acquire);
            if n < self.max {
                if word
                    .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            if self.policy == QueuePolicy::Reject {
                return Err(CallError::QueueFull);
            }
            // Announce, then look again (both sequentially consistent, as is
            // `release`'s pair): either `release` sees the sleeper and wakes
            // it, or this thread sees the room it made.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            if word.load(Ordering::SeqCst) >= self.max {
                self.in_flight.wait(n, Sharing::Private, None);
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Gives a place back (its call settled, or was never sent).
    pub(crate) fn release(&self) {
        self.in_flight.atomic().fetch_sub(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.in_flight.wake_one(Sharing::Private);
        }
    }
}
