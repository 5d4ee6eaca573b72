//! A worker lane as the host sees it: the request producer (shared by all
//! calling threads behind a mutex) and the counters balancers read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_utils::CachePadded;
use knit_transport::Producer;

use crate::table::SlotCache;

/// What a sender holds while sending on a lane.
pub(crate) struct LaneSender {
    pub producer: Producer,
    /// Free call slots this lane hands out (refilled in bulk from the table).
    pub slots: SlotCache,
}

pub(crate) struct ThreadLane {
    producer: Mutex<LaneSender>,
    /// Calls sent (written under the producer lock, on the host's side).
    submitted: CachePadded<AtomicU64>,
    /// Calls finished (written by the worker only).
    pub completed: Arc<CachePadded<AtomicU64>>,
}

impl ThreadLane {
    pub(crate) fn new(producer: Producer) -> Self {
        ThreadLane {
            producer: Mutex::new(LaneSender {
                producer,
                slots: SlotCache::new(),
            }),
            submitted: CachePadded::new(AtomicU64::new(0)),
            completed: Arc::new(CachePadded::new(AtomicU64::new(0))),
        }
    }

    /// Locks the request ring for sending; the caller must call
    /// [`ThreadLane::count_submitted`] for each message it sends.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LaneSender> {
        self.producer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one sent call (while holding the lock, so a plain increment is enough).
    #[inline]
    pub(crate) fn count_submitted(&self) {
        let n = self.submitted.load(Ordering::Relaxed) + 1;
        self.submitted.store(n, Ordering::Relaxed);
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
}
