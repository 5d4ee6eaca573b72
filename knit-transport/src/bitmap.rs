//! A bitmap of flags in mapped memory, shared by every thread of a pool and
//! mappable by a worker process, like a lane region.
//!
//! knit keeps one abort flag per call slot here: the caller (or the pool's
//! watchdog) sets it, and the task polls it through `TaskCx::stop_requested`.

use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapMut, MmapOptions};

use crate::error::TransportError;

/// A fixed number of flags, each settable from any thread without locking.
///
/// ```
/// use knit_transport::FlagBitmap;
///
/// let flags = FlagBitmap::anonymous(100).unwrap();
/// assert!(!flags.get(42));
/// flags.set(42);
/// assert!(flags.get(42) && !flags.get(43));
/// flags.clear(42);
/// assert!(!flags.get(42));
/// ```
pub struct FlagBitmap {
    map: MmapMut,
    len: usize,
}

impl FlagBitmap {
    /// A bitmap of `len` flags (all clear) in private anonymous memory.
    pub fn anonymous(len: usize) -> Result<Self, TransportError> {
        if len == 0 {
            return Err(TransportError::InvalidConfig(
                "a flag bitmap needs at least one flag".into(),
            ));
        }
        let bytes = len.div_ceil(64) * 8;
        let map = MmapOptions::new().len(bytes).map_anon()?;
        Ok(FlagBitmap { map, len })
    }

    /// How many flags there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a bitmap has at least one flag.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn word(&self, index: usize) -> (&AtomicU64, u64) {
        assert!(index < self.len, "flag {index} out of {}", self.len);
        let words = self.map.as_ptr() as *const AtomicU64;
        // SAFETY: the mapping is page-aligned (so 8-byte aligned), holds
        // len.div_ceil(64) zero-initialised words, `index / 64` is in bounds by the
        // assert above, and the mapping lives as long as `self`. All access to the
        // words goes through atomics, so sharing them between threads is sound.
        let word = unsafe { &*words.add(index / 64) };
        (word, 1u64 << (index % 64))
    }

    /// Raises flag `index` (release: what was written before is visible to a
    /// reader that sees the flag).
    pub fn set(&self, index: usize) {
        let (word, bit) = self.word(index);
        word.fetch_or(bit, Ordering::Release);
    }

    /// Lowers flag `index`.
    pub fn clear(&self, index: usize) {
        let (word, bit) = self.word(index);
        if word.load(Ordering::Relaxed) & bit != 0 {
            word.fetch_and(!bit, Ordering::Release);
        }
    }

    /// Whether flag `index` is raised.
    #[inline]
    pub fn get(&self, index: usize) -> bool {
        let (word, bit) = self.word(index);
        word.load(Ordering::Acquire) & bit != 0
    }
}

impl std::fmt::Debug for FlagBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagBitmap")
            .field("len", &self.len)
            .finish()
    }
}
