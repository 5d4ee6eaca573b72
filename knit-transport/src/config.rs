//! Sizes of a lane, their defaults and their validation.

use std::time::Duration;

use crate::error::TransportError;
use crate::frame::FRAME_HEADER_BYTES;

/// Sizes and tuning of one lane (a request ring and a response ring plus their
/// overflow areas).
///
/// ```
/// use knit_transport::LaneConfig;
/// let config = LaneConfig { ring_bytes: 1 << 16, ..LaneConfig::default() };
/// assert!(config.validate().is_ok());
/// assert_eq!(config.max_message(), config.overflow_max_bytes / 8);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneConfig {
    /// Bytes of each ring (per direction). A power of two, at least 1 KiB.
    pub ring_bytes: usize,
    /// Payloads up to this size travel inline in the ring; larger ones go through
    /// the overflow area. At most `ring_bytes / 4 - 32` so a frame always fits.
    pub inline_max_bytes: usize,
    /// Size the overflow area starts at (per direction); it doubles on demand.
    pub overflow_initial_bytes: usize,
    /// Size the overflow area may grow to (per direction). Address space for it
    /// is reserved up front; pages are only touched as it grows.
    pub overflow_max_bytes: usize,
    /// Largest payload accepted; `None` means `overflow_max_bytes / 8`.
    pub max_message_bytes: Option<usize>,
    /// How long a waiting end spins before it parks on a futex.
    pub spin: Duration,
}

impl Default for LaneConfig {
    fn default() -> Self {
        LaneConfig {
            ring_bytes: 64 * 1024,
            inline_max_bytes: 8 * 1024,
            overflow_initial_bytes: 1024 * 1024,
            overflow_max_bytes: 64 * 1024 * 1024,
            max_message_bytes: None,
            spin: Duration::from_micros(50),
        }
    }
}

/// Overflow allocations are rounded to this, so every payload starts on its own
/// cache line.
pub(crate) const OVERFLOW_ALIGN: usize = 64;

impl LaneConfig {
    /// The largest payload this lane accepts.
    pub fn max_message(&self) -> usize {
        self.max_message_bytes
            .unwrap_or(self.overflow_max_bytes / 8)
    }

    /// Checks that the sizes are consistent; every constructor calls this.
    pub fn validate(&self) -> Result<(), TransportError> {
        let bad = |why: String| Err(TransportError::InvalidConfig(why));
        if !self.ring_bytes.is_power_of_two() || self.ring_bytes < 1024 {
            return bad(format!(
                "ring_bytes {} must be a power of two >= 1024",
                self.ring_bytes
            ));
        }
        if self.ring_bytes > 1 << 30 {
            return bad(format!(
                "ring_bytes {} must be at most 1 GiB",
                self.ring_bytes
            ));
        }
        if self.inline_max_bytes + FRAME_HEADER_BYTES > self.ring_bytes / 4 {
            return bad(format!(
                "inline_max_bytes {} must be at most ring_bytes/4 - {FRAME_HEADER_BYTES}",
                self.inline_max_bytes
            ));
        }
        if !self.overflow_max_bytes.is_multiple_of(OVERFLOW_ALIGN) || self.overflow_max_bytes == 0 {
            return bad(format!(
                "overflow_max_bytes {} must be a non-zero multiple of {OVERFLOW_ALIGN}",
                self.overflow_max_bytes
            ));
        }
        if self.overflow_initial_bytes == 0 || self.overflow_initial_bytes > self.overflow_max_bytes
        {
            return bad(format!(
                "overflow_initial_bytes {} must be in 1..=overflow_max_bytes",
                self.overflow_initial_bytes
            ));
        }
        let max = self.max_message();
        if max > self.overflow_max_bytes || max > u32::MAX as usize {
            return bad(format!(
                "max_message_bytes {max} must fit the overflow area and a u32 length"
            ));
        }
        Ok(())
    }
}
