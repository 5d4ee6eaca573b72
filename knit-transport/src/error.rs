//! The transport's one error type.

/// Everything that can go wrong moving a message through a lane.
///
/// ```
/// use knit_transport::TransportError;
/// let e = TransportError::TooLarge { len: 10, max: 4 };
/// assert_eq!(e.to_string(), "payload of 10 bytes exceeds the 4-byte message limit");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No room right now in the ring or the overflow area; retry after the peer
    /// consumes (or use a blocking send).
    #[error("lane is full")]
    Full,
    /// The payload is larger than the lane's per-message limit; nothing was written.
    #[error("payload of {len} bytes exceeds the {max}-byte message limit")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The lane's per-message limit.
        max: usize,
    },
    /// The lane was closed (by either end, or because an end was dropped).
    #[error("lane is closed")]
    Closed,
    /// The ring holds bytes that are not a valid frame (a bug or a hostile peer).
    /// The lane cannot be trusted after this.
    #[error("corrupt frame at ring position {position}: {reason}")]
    Corrupt {
        /// Absolute ring position of the bad frame.
        position: u64,
        /// What check failed.
        reason: &'static str,
    },
    /// The sizes asked for are inconsistent.
    #[error("invalid lane configuration: {0}")]
    InvalidConfig(String),
    /// A mapped region did not start with a valid knit header.
    #[error("not a knit lane region: {0}")]
    BadRegion(&'static str),
    /// This end of the lane was already taken.
    #[error("the {0} end of this lane is already in use")]
    AlreadyClaimed(&'static str),
    /// Mapping or sizing the region failed.
    #[error("mapping the lane region failed: {0}")]
    Io(#[from] std::io::Error),
}
