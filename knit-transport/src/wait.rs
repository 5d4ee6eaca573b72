//! Spin-then-park waiting with the announce / fence / re-check protocol.
//!
//! Waiter: spin on the condition for a bounded budget, then store SLEEPING in the
//! wait word, issue a heavy fence, re-check the condition, and only then sleep.
//! Poster: publish its change, issue a light fence, and wake only if the word
//! says SLEEPING. The fence pair (see [`crate::fence`]) makes it impossible for
//! the waiter to miss the change *and* the poster to miss the announcement (the
//! store-buffering case), so a wake-up is never lost and the poster never makes
//! a syscall while the waiter is awake. The poster runs on every message, the
//! waiter only on its way to sleep, so the costly half of the pair is the
//! waiter's.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::futex::{FutexWord, Sharing};
use crate::sync::{spin_hint, AtomicU32, Ordering};

/// Value of a wait word while its owner is running or spinning.
pub(crate) const AWAKE: u32 = 0;
/// Value of a wait word after its owner announced it is about to sleep.
pub(crate) const SLEEPING: u32 = 1;

/// How often the spin loop reads the clock: often enough to honour a budget of a
/// few microseconds, rarely enough that the clock read is not the spin's cost.
const SPINS_PER_CLOCK_READ: u32 = 32;

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The condition became true.
    Ready,
    /// The lane was closed while the condition was still false.
    Closed,
    /// The deadline passed while the condition was still false.
    TimedOut,
}

/// Everything a wait needs besides the condition itself.
pub(crate) struct WaitSite<'a> {
    pub word: &'a FutexWord,
    pub closed: &'a AtomicU32,
    pub sharing: Sharing,
    /// Counts the times this waiter actually went to sleep (for tests and tuning).
    pub parks: &'a Cell<u64>,
}

impl WaitSite<'_> {
    /// Acquire: whatever the closer published before closing (the last messages)
    /// is visible to the `ready()` check that follows.
    #[inline]
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) != 0
    }

    /// After seeing the lane closed, a final look: data published before the
    /// close still counts as ready.
    fn closed_outcome(&self, ready: &mut impl FnMut() -> bool) -> WaitOutcome {
        if ready() {
            WaitOutcome::Ready
        } else {
            WaitOutcome::Closed
        }
    }

    /// Waits until `ready()` is true, the lane closes, or `deadline` passes.
    /// `ready` is checked before `closed`, so data published before a close is
    /// still delivered.
    pub(crate) fn wait(
        &self,
        spin: Duration,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> WaitOutcome {
        if ready() {
            return WaitOutcome::Ready;
        }
        if !spin.is_zero() {
            // The clock is first read after a round of spins, not on entry: a
            // hot peer usually answers within it, and a clock read costs about
            // as much as a cache-line transfer on some VMs.
            let mut start = None;
            let mut spins = 0u32;
            loop {
                spin_hint();
                if ready() {
                    return WaitOutcome::Ready;
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(SPINS_PER_CLOCK_READ) {
                    if self.is_closed() {
                        return self.closed_outcome(&mut ready);
                    }
                    let now = Instant::now();
                    if now.duration_since(*start.get_or_insert(now)) >= spin {
                        break;
                    }
                }
            }
        }
        loop {
            if self.is_closed() {
                return self.closed_outcome(&mut ready);
            }
            let remaining = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(r) if !r.is_zero() => Some(r),
                    _ => return WaitOutcome::TimedOut,
                },
                None => None,
            };
            self.word.store(SLEEPING);
            crate::fence::heavy(self.sharing);
            if ready() {
                self.word.store(AWAKE);
                return WaitOutcome::Ready;
            }
            if self.is_closed() {
                self.word.store(AWAKE);
                return self.closed_outcome(&mut ready);
            }
            self.parks.set(self.parks.get() + 1);
            self.word.wait(SLEEPING, self.sharing, remaining);
            if ready() {
                self.word.store(AWAKE);
                return WaitOutcome::Ready;
            }
        }
    }
}

/// The poster's half: call after publishing a change the owner of `word` may be
/// waiting for. Costs a light fence and a read of a line the sleeper rarely
/// writes; the syscall happens only when the sleeper has announced itself.
#[inline]
pub(crate) fn notify(word: &FutexWord, sharing: Sharing) {
    crate::fence::light(sharing);
    if word.load() == SLEEPING {
        word.store(AWAKE);
        word.wake_one(sharing);
    }
}

/// Wakes every sleeper on `word` unconditionally (used when closing).
pub(crate) fn wake_all(word: &FutexWord, sharing: Sharing) {
    word.store(AWAKE);
    word.wake_all(sharing);
}
