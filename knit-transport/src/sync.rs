//! The one place atomics come from, so that `--cfg loom` can swap in loom's
//! model-checked versions without touching the protocol code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// One step of a busy wait: a CPU pause hint normally, a yield under loom so the
/// model checker can schedule the other thread.
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
