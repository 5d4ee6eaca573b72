//! `LaneLock`: the lock calling threads take to send on a thread lane.
//!
//! One compare-and-swap takes it, and no read-modify-write lets it go.
//!
//! `std::sync::Mutex` lets go with an atomic swap, to learn whether anyone
//! sleeps on it. On x86 that is a locked instruction, which waits until every
//! store the sender just made (the request frame, the ring's tail, the call's
//! slot, all on lines the worker reads) has reached a line this core owns:
//! about one cache-line round trip per call in a burst. Here letting go is a
//! store and a light fence, and the sleeper count is read after it; a thread
//! about to sleep counts itself and runs the heavy fence of the pair
//! (`knit_transport::fence`), so it sees the lock free or the holder sees it
//! counted, and a wake-up is never lost.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

use crossbeam_utils::Backoff;
use knit_transport::fence;
use knit_transport::futex::{FutexWord, Sharing};

const FREE: u32 = 0;
const HELD: u32 = 1;

/// A lock around `T` for short critical sections on a hot path.
pub(crate) struct LaneLock<T> {
    state: FutexWord,
    /// Threads between counting themselves and taking the lock (asleep, or
    /// about to be).
    sleepers: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time (the
// one whose compare-and-swap moved `state` from FREE to HELD, until its guard
// stores FREE), so sharing the lock only lets threads send a `T` to each other.
unsafe impl<T: Send> Sync for LaneLock<T> {}
// SAFETY: as above; the lock owns its `T`.
unsafe impl<T: Send> Send for LaneLock<T> {}

/// Access to a [`LaneLock`]'s value; letting go of it unlocks.
pub(crate) struct LaneGuard<'a, T> {
    lock: &'a LaneLock<T>,
    /// Like `&mut T`: sharing the guard between threads needs `T: Sync`.
    _access: PhantomData<&'a mut T>,
}

impl<T> LaneLock<T> {
    pub(crate) fn new(value: T) -> Self {
        LaneLock {
            state: FutexWord::new(FREE),
            sleepers: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    fn try_take(&self) -> bool {
        self.state
            .atomic()
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock, spinning a little and then sleeping while another
    /// thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> LaneGuard<'_, T> {
        if !self.try_take() {
            self.lock_contended();
        }
        LaneGuard {
            lock: self,
            _access: PhantomData,
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.state.atomic().load(Ordering::Relaxed) == FREE && self.try_take() {
                return;
            }
            backoff.snooze();
        }
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        loop {
            // Counted, heavy fence, look again: a holder letting go stores
            // FREE, light-fences, then reads the count, so it sees this thread
            // counted or this thread sees FREE (below, or in the kernel's
            // check of the word).
            fence::heavy(Sharing::Private);
            if self.try_take() {
                break;
            }
            self.state.wait(HELD, Sharing::Private, None);
            if self.try_take() {
                break;
            }
        }
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    fn unlock(&self) {
        self.state.atomic().store(FREE, Ordering::Release);
        fence::light(Sharing::Private);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.state.wake_one(Sharing::Private);
        }
    }
}

impl<T> Deref for LaneGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard's thread holds the lock (see `LaneLock`'s Sync).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for LaneGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the guard is borrowed mutably, so this is the
        // only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for LaneGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Threads add to a plain (non-atomic) counter and a list under the lock,
    /// with a sleep inside now and then so that waiters go to sleep: every
    /// addition must be there, and nobody may hang.
    #[test]
    fn excludes_and_wakes_sleepers() {
        let threads: u64 = 6;
        let per_thread: u64 = 5_000;
        let lock = Arc::new(LaneLock::new((0u64, Vec::new())));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        let mut g = lock.lock();
                        let before = g.0;
                        if i % 500 == 0 {
                            std::thread::sleep(std::time::Duration::from_micros(200));
                        }
                        g.0 = before + 1;
                        g.1.push((t, i));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let g = lock.lock();
        assert_eq!(g.0, threads * per_thread);
        let mut seen = g.1.clone();
        seen.sort_unstable();
        let expected: Vec<_> = (0..threads)
            .flat_map(|t| (0..per_thread).map(move |i| (t, i)))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(lock.sleepers.load(Ordering::Relaxed), 0);
    }
}
