//! Asymmetric fences for the store-then-load handshakes (publish / park).
//!
//! A handshake where each side stores its flag, fences, then loads the
//! other's needs a sequentially consistent fence on *both* sides; on x86 that
//! is a locked instruction, which waits for every store the thread has
//! buffered to reach a cache line it owns. When one side runs on every call
//! (a producer publishing, a worker starting a call) and the other rarely (a
//! consumer about to sleep, a canceller), the frequent side can use a
//! [`light`] fence, which only stops the compiler from reordering, and the
//! rare side a [`heavy`] one: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`,
//! which makes every running thread of the process execute a full barrier
//! before it returns. Whichever side's accesses come first in that order, the
//! other side sees them, as if both had fenced.
//!
//! The heavy side falls back to a plain fence, and the light side then fences
//! too, where membarrier is missing (old kernels, seccomp filters, Miri,
//! systems other than Linux), under loom (which models the plain fence), and
//! always for words shared with another process (membarrier only reaches
//! this process's threads).

use crate::futex::Sharing;
use crate::sync::{fence, Ordering};

#[cfg(all(target_os = "linux", not(any(loom, miri))))]
mod membarrier {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Once;

    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};

    /// Set once, after this process registered for expedited private
    /// membarriers; never cleared. A light fence that reads it set is paired
    /// only with heavy fences that use membarrier (a heavy fence reads it
    /// after [`registered`] has run, and it never goes back).
    static ON: AtomicBool = AtomicBool::new(false);
    static REGISTER: Once = Once::new();

    /// Registers this process (once); returns whether heavy fences use membarrier.
    pub(super) fn registered() -> bool {
        REGISTER.call_once(|| {
            let query = membarrier_query();
            let usable = query.contains_command(MembarrierCommand::PrivateExpedited)
                && query.contains_command(MembarrierCommand::RegisterPrivateExpedited)
                && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok();
            ON.store(usable, Ordering::Release);
        });
        ON.load(Ordering::Acquire)
    }

    #[inline]
    pub(super) fn on() -> bool {
        ON.load(Ordering::Relaxed)
    }

    pub(super) fn run() {
        // Registered, so the man page's failures (unknown command, not
        // registered, no syscall) should not happen; one could (a seccomp
        // filter installed later). Light fences elsewhere are already bare
        // compiler barriers, which no fence here can make up for: carrying on
        // could lose a wake-up (a hang) or run a cancelled call, so stop.
        if let Err(e) = membarrier(MembarrierCommand::PrivateExpedited) {
            // Straight to stderr, not to a `tracing` subscriber: the process
            // aborts on the next line, before a subscriber could flush.
            eprintln!("knit-transport: membarrier failed after registration ({e}); aborting");
            std::process::abort();
        }
    }
}

/// Prepares [`heavy`] fences (registers the process for membarrier, once),
/// so that [`light`] fences become cheap from now on. Calling it is optional:
/// until something does, light fences are full fences.
///
/// ```
/// knit_transport::fence::init();
/// ```
pub fn init() {
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    membarrier::registered();
}

/// The frequent side's fence: orders this thread's earlier stores before its
/// later loads as seen by a thread that runs [`heavy`] (and by no one else).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use knit_transport::{fence, futex::Sharing};
///
/// let (published, sleeping) = (AtomicU32::new(0), AtomicU32::new(0));
/// published.store(1, Ordering::Release);
/// fence::light(Sharing::Private);
/// if sleeping.load(Ordering::Relaxed) != 0 { /* wake the other side */ }
/// ```
#[inline]
pub fn light(sharing: Sharing) {
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    if sharing == Sharing::Private && membarrier::on() {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        return;
    }
    let _ = sharing;
    fence(Ordering::SeqCst);
}

/// The rare side's fence: after it, this thread sees what any thread stored
/// before its last [`light`] fence, or that thread sees what this one stored
/// before this fence. A system call when membarrier is in use.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use knit_transport::{fence, futex::Sharing};
///
/// let (published, sleeping) = (AtomicU32::new(0), AtomicU32::new(0));
/// sleeping.store(1, Ordering::Relaxed);
/// fence::heavy(Sharing::Private);
/// if published.load(Ordering::Acquire) != 0 { /* do not sleep after all */ }
/// ```
pub fn heavy(sharing: Sharing) {
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    if sharing == Sharing::Private && membarrier::registered() {
        // The syscall is itself a full barrier for this thread, before and after.
        membarrier::run();
        return;
    }
    let _ = sharing;
    fence(Ordering::SeqCst);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    /// Store buffering: each side stores its flag, fences, loads the other's.
    /// With one light and one heavy fence, at least one side must see the
    /// other's store, in every round.
    #[test]
    fn light_and_heavy_forbid_store_buffering() {
        init();
        let rounds = if cfg!(miri) { 50 } else { 20_000 };
        let flags = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let seen_by_light = Arc::new(AtomicU64::new(0));
        let go = Arc::new(AtomicU64::new(0));
        let light_side = {
            let (flags, seen, go) = (flags.clone(), seen_by_light.clone(), go.clone());
            std::thread::spawn(move || {
                for round in 1..=rounds {
                    while go.load(Ordering::Acquire) < 2 * round - 1 {
                        std::hint::spin_loop();
                    }
                    flags[0].store(round, Ordering::Relaxed);
                    light(Sharing::Private);
                    seen.store(flags[1].load(Ordering::Relaxed), Ordering::Release);
                    go.fetch_add(1, Ordering::AcqRel);
                }
            })
        };
        for round in 1..=rounds {
            go.fetch_add(1, Ordering::AcqRel);
            flags[1].store(round, Ordering::Relaxed);
            heavy(Sharing::Private);
            let heavy_saw = flags[0].load(Ordering::Relaxed);
            while go.load(Ordering::Acquire) < 2 * round {
                std::hint::spin_loop();
            }
            let light_saw = seen_by_light.load(Ordering::Acquire);
            assert!(
                heavy_saw == round || light_saw == round,
                "round {round}: neither side saw the other (heavy saw {heavy_saw}, light saw {light_saw})"
            );
        }
        light_side.join().unwrap();
    }
}
