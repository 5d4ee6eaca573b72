//! Waiting on and waking a 32-bit word: the only module that talks to the OS about
//! sleeping. Everything else decides *when* to sleep; this decides *how*.
//!
//! * Private words (one process) use `atomic-wait`, which is portable across
//!   Linux, macOS, Windows and the BSDs.
//! * Shared words (a region mapped by several processes, or mapped twice) need a
//!   futex keyed by the backing page rather than the virtual address, so they go
//!   through `rustix`'s non-private `FUTEX_WAIT`/`FUTEX_WAKE` (Linux only). Timed
//!   waits also go through rustix because atomic-wait has no timeout.
//! * Under `--cfg loom` a word is modelled with a loom mutex and condvar: the mutex
//!   stands for the kernel's hash-bucket lock that makes "check value, then sleep"
//!   atomic with respect to a wake, so a lost wake-up shows up as a loom deadlock.

use std::time::Duration;

use crate::sync::{AtomicU32, Ordering};

/// Whether a futex word may be reached from more than one mapping (or process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Only threads of this process, through this one mapping, use the word.
    Private,
    /// The word lives in memory that other mappings or processes also map.
    Shared,
}

/// A 32-bit word that threads can sleep on until its value changes.
///
/// Its layout is one `u32` (except under loom), so it can be placed in shared memory.
///
/// ```
/// use knit_transport::futex::{FutexWord, Sharing};
/// let word = FutexWord::new(0);
/// word.store(1);
/// // The value is no longer 0, so this returns at once instead of sleeping.
/// word.wait(0, Sharing::Private, None);
/// ```
#[cfg_attr(not(loom), repr(transparent))]
pub struct FutexWord {
    value: AtomicU32,
    #[cfg(loom)]
    bucket: loom::sync::Mutex<()>,
    #[cfg(loom)]
    sleepers: loom::sync::Condvar,
}

impl FutexWord {
    /// A word holding `value`.
    pub fn new(value: u32) -> Self {
        FutexWord {
            value: AtomicU32::new(value),
            #[cfg(loom)]
            bucket: loom::sync::Mutex::new(()),
            #[cfg(loom)]
            sleepers: loom::sync::Condvar::new(),
        }
    }

    /// Reads the word (relaxed: callers order it with their own fences).
    #[inline]
    pub fn load(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }

    /// Writes the word (relaxed: callers order it with their own fences).
    #[inline]
    pub fn store(&self, value: u32) {
        self.value.store(value, Ordering::Relaxed)
    }

    /// The atomic itself, for protocols that need read-modify-write operations.
    #[inline]
    pub fn atomic(&self) -> &AtomicU32 {
        &self.value
    }

    /// Sleeps while the word holds `expected`, until woken, until `timeout` passes,
    /// or spuriously. Returns at once if the word already differs. Callers must
    /// re-check their condition after it returns.
    pub fn wait(&self, expected: u32, sharing: Sharing, timeout: Option<Duration>) {
        #[cfg(loom)]
        {
            let _ = (sharing, timeout);
            let guard = self.bucket.lock().unwrap();
            if self.value.load(Ordering::SeqCst) == expected {
                drop(self.sleepers.wait(guard).unwrap());
            }
        }
        #[cfg(not(loom))]
        match (sharing, timeout) {
            (Sharing::Private, None) => atomic_wait::wait(&self.value, expected),
            _ => os::wait(&self.value, expected, sharing, timeout),
        }
    }

    /// Wakes at most one thread sleeping on this word.
    pub fn wake_one(&self, sharing: Sharing) {
        #[cfg(loom)]
        {
            let _ = sharing;
            let _guard = self.bucket.lock().unwrap();
            self.sleepers.notify_one();
        }
        #[cfg(not(loom))]
        match sharing {
            Sharing::Private => atomic_wait::wake_one(&self.value),
            Sharing::Shared => os::wake(&self.value, 1),
        }
    }

    /// Wakes every thread sleeping on this word.
    pub fn wake_all(&self, sharing: Sharing) {
        #[cfg(loom)]
        {
            let _ = sharing;
            let _guard = self.bucket.lock().unwrap();
            self.sleepers.notify_all();
        }
        #[cfg(not(loom))]
        match sharing {
            Sharing::Private => atomic_wait::wake_all(&self.value),
            Sharing::Shared => os::wake(&self.value, i32::MAX as u32),
        }
    }
}

#[cfg(all(not(loom), target_os = "linux"))]
mod os {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use rustix::thread::futex;

    use super::Sharing;

    fn flags(sharing: Sharing) -> futex::Flags {
        match sharing {
            Sharing::Private => futex::Flags::PRIVATE,
            Sharing::Shared => futex::Flags::empty(),
        }
    }

    pub(super) fn wait(
        word: &AtomicU32,
        expected: u32,
        sharing: Sharing,
        timeout: Option<Duration>,
    ) {
        let timespec = timeout.map(|t| rustix::fs::Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: t.subsec_nanos() as _,
        });
        // EAGAIN (value changed), EINTR and ETIMEDOUT all mean "go and re-check",
        // which is what every caller does next, so the result carries no information.
        let _ = futex::wait(word, flags(sharing), expected, timespec.as_ref());
    }

    pub(super) fn wake(word: &AtomicU32, count: u32) {
        // Shared words only reach here; a failed wake cannot be retried usefully
        // (the only errors are EFAULT/EINVAL, which would be a layout bug).
        let _ = futex::wake(word, futex::Flags::empty(), count);
    }
}

#[cfg(all(not(loom), not(target_os = "linux")))]
mod os {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use super::Sharing;

    // Without a futex we can only poll; shared regions are refused at creation on
    // these targets, so this serves timed private waits.
    pub(super) fn wait(
        word: &AtomicU32,
        expected: u32,
        _sharing: Sharing,
        timeout: Option<Duration>,
    ) {
        let start = Instant::now();
        while word.load(Ordering::Acquire) == expected {
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    pub(super) fn wake(_word: &AtomicU32, _count: u32) {}
}
