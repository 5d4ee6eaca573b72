//! The fixed header in front of every message in a ring.

/// Bytes of a frame header; frames start on multiples of [`FRAME_ALIGN`].
pub const FRAME_HEADER_BYTES: usize = 32;
/// Every frame starts at a multiple of this, so headers can be read as aligned `u64`s.
pub const FRAME_ALIGN: usize = 8;

/// A payload stored in the frame itself.
pub(crate) const KIND_INLINE: u16 = 0x1A11;
/// The frame's body is an [`OverflowRef`]: the payload is in the overflow area.
pub(crate) const KIND_OVERFLOW: u16 = 0x0F10;
/// Filler up to the end of the ring; the next frame starts at offset 0.
pub(crate) const KIND_PAD: u16 = 0x9AD0;

/// What the caller puts on every message besides the payload.
///
/// ```
/// use knit_transport::Envelope;
/// let env = Envelope { call_id: 7, task_id: 0xfeed, flags: 0 };
/// assert_eq!(env.call_id, 7);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Identifies the call this message belongs to (chosen by the caller).
    pub call_id: u64,
    /// Identifies the task to run, or the result's task.
    pub task_id: u64,
    /// Free for the caller's use (message kind, status, ...).
    pub flags: u32,
}

/// The header as laid out in the ring. `repr(C)`, 32 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawHeader {
    pub call_id: u64,
    pub task_id: u64,
    pub flags: u32,
    /// Bytes of body following the header (the payload, or an `OverflowRef`).
    pub body_len: u32,
    pub kind: u16,
    pub reserved: u16,
    /// Per-ring sequence number of this message, checked by the consumer so a torn
    /// or replayed frame is reported as corrupt instead of being delivered.
    pub seq: u32,
}

const _: () = assert!(std::mem::size_of::<RawHeader>() == FRAME_HEADER_BYTES);

impl RawHeader {
    pub(crate) fn new(env: Envelope, body_len: u32, kind: u16, seq: u32) -> Self {
        RawHeader {
            call_id: env.call_id,
            task_id: env.task_id,
            flags: env.flags,
            body_len,
            kind,
            reserved: 0,
            seq,
        }
    }

    pub(crate) fn pad() -> Self {
        RawHeader::new(Envelope::default(), 0, KIND_PAD, 0)
    }

    pub(crate) fn envelope(&self) -> Envelope {
        Envelope {
            call_id: self.call_id,
            task_id: self.task_id,
            flags: self.flags,
        }
    }
}

/// Where an overflowed payload lives: the body of a `KIND_OVERFLOW` frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OverflowRef {
    pub offset: u64,
    pub len: u64,
}

pub(crate) const OVERFLOW_REF_BYTES: usize = std::mem::size_of::<OverflowRef>();

/// Bytes a frame with `body_len` bytes of body occupies in the ring.
#[inline]
pub(crate) const fn frame_bytes(body_len: usize) -> usize {
    (FRAME_HEADER_BYTES + body_len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_round_to_alignment() {
        assert_eq!(frame_bytes(0), 32);
        assert_eq!(frame_bytes(1), 40);
        assert_eq!(frame_bytes(8), 40);
        assert_eq!(frame_bytes(9), 48);
        assert_eq!(frame_bytes(OVERFLOW_REF_BYTES), 48);
    }

    #[test]
    fn kinds_are_distinct() {
        assert_ne!(KIND_INLINE, KIND_OVERFLOW);
        assert_ne!(KIND_INLINE, KIND_PAD);
        assert_ne!(KIND_OVERFLOW, KIND_PAD);
    }
}
