//! The flags a request frame's envelope carries from its sender to the lane's worker.

/// Request flag: the caller's encoder failed after the size was reserved.
pub(crate) const FLAG_ENCODE_FAILED: u32 = 1;
/// Request flag: the frame was moved off a replaced lane, so the old worker
/// may meet it too; it is claimed by compare-and-swap.
pub(crate) const FLAG_REDELIVERED: u32 = 1 << 1;

/// Request flag: the call is not laned (see `table`'s module docs): its runner
/// claims it by compare-and-swap, because another thread may run it first
/// (an inline call moved to a worker lane, or a call a worker made, which
/// that worker runs itself if it waits for it first).
pub(crate) const FLAG_CLAIMABLE: u32 = 1 << 2;
