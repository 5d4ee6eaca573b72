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

/// A spinning waiter's time budget, checked without reading the clock on
/// every spin: the clock is read once every `every` spins, and the budget
/// runs from the first of those reads, not from the first spin (a hot peer
/// usually answers within the first round, and a clock read costs about as
/// much as a cache-line transfer on some VMs).
///
/// ```
/// use std::time::Duration;
/// use knit_transport::SpinBudget;
///
/// let mut budget = SpinBudget::new(Duration::from_micros(5), 32);
/// let mut spins = 0u64;
/// loop {
///     spins += 1; // look at the condition here
///     if budget.tick().is_some_and(|now| budget.spent(now)) {
///         break; // time to park
///     }
///     std::hint::spin_loop();
/// }
/// assert!(spins >= 64, "the budget starts at the first clock read");
/// ```
#[derive(Debug)]
pub struct SpinBudget {
    budget: std::time::Duration,
    every: u32,
    /// Spins left until the next clock read (a countdown: a division by a
    /// run-time `every` on every spin would slow the spin itself).
    left: u32,
    start: Option<Instant>,
}

impl SpinBudget {
    /// A budget of `budget`, with the clock read every `every` spins.
    pub fn new(budget: std::time::Duration, every: u32) -> Self {
        let every = every.max(1);
        SpinBudget {
            budget,
            every,
            left: every,
            start: None,
        }
    }

    /// Counts one spin; on every `every`-th, reads the clock and returns the
    /// time (for [`SpinBudget::spent`], and for any deadline of the caller's).
    #[inline]
    pub fn tick(&mut self) -> Option<Instant> {
        self.left -= 1;
        if self.left > 0 {
            return None;
        }
        self.left = self.every;
        Some(Instant::now())
    }

    /// Whether the budget has run out at `now` (a time [`SpinBudget::tick`]
    /// returned).
    pub fn spent(&mut self, now: Instant) -> bool {
        now.duration_since(*self.start.get_or_insert(now)) >= self.budget
    }
}

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
            let mut budget = SpinBudget::new(spin, SPINS_PER_CLOCK_READ);
            loop {
                spin_hint();
                if ready() {
                    return WaitOutcome::Ready;
                }
                if let Some(now) = budget.tick() {
                    if self.is_closed() {
                        return self.closed_outcome(&mut ready);
                    }
                    if budget.spent(now) {
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

/// Asks the CPU to start loading the cache line holding `at` into this
/// core's cache (x86_64 only; elsewhere nothing). Only a hint: it never
/// faults and changes nothing the program can see, so any address will do.
#[inline(always)]
pub(crate) fn prefetch(at: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(any(loom, miri))))]
    // SAFETY: `prefetcht0` is a hint with no architectural effect: it cannot
    // fault or change memory, whatever the address (SSE is baseline on x86_64).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", not(any(loom, miri)))))]
    let _ = at;
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
