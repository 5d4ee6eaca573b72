//! Where one call's result lands: a small state machine shared by the caller
//! (who waits, blocking or as a future) and whoever runs the task (who settles).

use std::cell::UnsafeCell;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::task::Waker;
use std::time::{Duration, Instant};

use knit_transport::futex::{FutexWord, Sharing};

use crate::error::CallError;

/// Nobody is waiting yet.
const PENDING: u32 = 0;
/// A thread sleeps on the state word.
const PARKED: u32 = 1;
/// A future registered a waker.
const WAKER: u32 = 2;
/// The result is in place.
const DONE: u32 = 3;

/// The encoded result, or why there is none.
pub(crate) type Outcome = Result<Vec<u8>, CallError>;

pub(crate) struct CallSlot {
    state: FutexWord,
    outcome: UnsafeCell<Option<Outcome>>,
    waker: Mutex<Option<Waker>>,
}

// SAFETY: `outcome` is written once, by the single settler, before the state
// becomes DONE (release), and read only by the caller after it observes DONE
// (acquire); `waker` is behind a mutex; `state` is atomic.
unsafe impl Sync for CallSlot {}

impl CallSlot {
    pub(crate) fn new() -> Self {
        CallSlot {
            state: FutexWord::new(PENDING),
            outcome: UnsafeCell::new(None),
            waker: Mutex::new(None),
        }
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.atomic().load(Ordering::Acquire) == DONE
    }

    /// Stores the outcome and wakes the waiter. Must be called at most once per
    /// slot; the request that carries the slot is what makes its holder the settler.
    pub(crate) fn settle(&self, outcome: Outcome) {
        // SAFETY: only the settler writes, once, and the caller does not read
        // until it sees DONE, which is stored after this write.
        unsafe { *self.outcome.get() = Some(outcome) };
        let previous = self.state.atomic().swap(DONE, Ordering::AcqRel);
        debug_assert_ne!(previous, DONE, "a call settled twice");
        match previous {
            PARKED => self.state.wake_all(Sharing::Private),
            WAKER => {
                let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
            _ => {}
        }
    }

    /// Takes the outcome; call only after `is_done()` returned true (or after `wait`).
    pub(crate) fn take(&self) -> Option<Outcome> {
        debug_assert!(self.is_done());
        // SAFETY: DONE was observed with acquire, so the settler's write is visible
        // and finished; the caller (sole owner of the `Call`) is the only reader.
        unsafe { (*self.outcome.get()).take() }
    }

    /// Spins up to `spin`, running `help` between checks (it returns whether it
    /// did any work), then sleeps until settled.
    pub(crate) fn wait(&self, spin: Duration, mut help: impl FnMut() -> bool) {
        let start = Instant::now();
        let mut spins = 0u32;
        while !self.is_done() {
            if help() {
                continue;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(32) && start.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        let word = self.state.atomic();
        loop {
            match word.compare_exchange(PENDING, PARKED, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) | Err(PARKED) => self.state.wait(PARKED, Sharing::Private, None),
                Err(WAKER) => {
                    // Polled as a future before, now waited on by a thread: sleep instead.
                    let _ =
                        word.compare_exchange(WAKER, PARKED, Ordering::AcqRel, Ordering::Acquire);
                }
                Err(_) => return,
            }
        }
    }

    /// Registers `waker` to be woken on settle; returns false if already settled.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        {
            let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        let word = self.state.atomic();
        match word.compare_exchange(PENDING, WAKER, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(WAKER) => true,
            Err(_) => !self.is_done(),
        }
    }
}
