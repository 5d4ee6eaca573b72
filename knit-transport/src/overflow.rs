//! The producer's bookkeeping for the overflow area.
//!
//! Payloads too big for the ring are placed in the overflow area and the ring
//! carries only their location. The consumer releases them in the order they
//! were sent (it reads the ring in order), so the area is used as a FIFO of
//! variable-sized blocks: new blocks go after the newest live one, wrapping to
//! the start when the oldest ones have been released. The consumer only counts
//! releases; the producer keeps the block list, so no allocator state is shared.
//!
//! The area is reserved at its maximum size but used only up to `capacity`,
//! which starts at the configured initial size and doubles when a block does not
//! fit, so untouched pages are never faulted in.

use std::collections::VecDeque;

use crate::config::OVERFLOW_ALIGN;

#[derive(Debug)]
pub(crate) struct OverflowAlloc {
    /// Bytes currently in use as the FIFO's span (grows up to `limit`).
    capacity: usize,
    limit: usize,
    /// Where the next block goes if it fits.
    write_off: usize,
    /// Start offsets of live blocks, oldest first.
    live: VecDeque<usize>,
    /// Blocks handed out so far (compared with the consumer's release count).
    allocated: u64,
    /// `write_off` before the last allocation, so it can be taken back.
    previous_write_off: usize,
}

impl OverflowAlloc {
    pub(crate) fn new(initial: usize, limit: usize) -> Self {
        OverflowAlloc {
            capacity: initial.min(limit),
            limit,
            write_off: 0,
            live: VecDeque::new(),
            allocated: 0,
            previous_write_off: 0,
        }
    }

    /// Forgets blocks the consumer has released (`released` is its running count).
    pub(crate) fn release_upto(&mut self, released: u64) {
        let live_now = self.allocated.saturating_sub(released) as usize;
        while self.live.len() > live_now {
            self.live.pop_front();
        }
        if self.live.is_empty() {
            self.write_off = 0;
        }
    }

    /// Number of live blocks (allocated, not yet released).
    pub(crate) fn live_blocks(&self) -> usize {
        self.live.len()
    }

    /// The span of the area in use so far.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Finds room for `len` bytes; `None` if the area is too full right now.
    /// `len` must not exceed the limit.
    pub(crate) fn try_alloc(&mut self, len: usize) -> Option<usize> {
        debug_assert!(len <= self.limit);
        let size = len.div_ceil(OVERFLOW_ALIGN).max(1) * OVERFLOW_ALIGN;
        let offset = self.place(size)?;
        self.previous_write_off = self.write_off;
        self.live.push_back(offset);
        self.allocated += 1;
        self.write_off = offset + size;
        Some(offset)
    }

    /// Takes back the block just returned by `try_alloc` (its message was never sent).
    pub(crate) fn cancel_last(&mut self) {
        if self.live.pop_back().is_some() {
            self.allocated -= 1;
            self.write_off = self.previous_write_off;
        }
    }

    fn place(&mut self, size: usize) -> Option<usize> {
        let Some(&oldest) = self.live.front() else {
            self.grow_to(size);
            return (size <= self.capacity).then_some(0);
        };
        let newest = *self.live.back().expect("non-empty");
        let wrapped = newest < oldest;
        if wrapped {
            // Free space is the gap between the newest block's end and the oldest.
            return (self.write_off + size <= oldest).then_some(self.write_off);
        }
        if self.write_off + size <= self.capacity {
            return Some(self.write_off);
        }
        // Reuse the released space at the front before growing the area.
        if size <= oldest {
            return Some(0);
        }
        self.grow_to(self.write_off + size);
        (self.write_off + size <= self.capacity).then_some(self.write_off)
    }

    fn grow_to(&mut self, needed: usize) {
        if needed > self.capacity {
            let doubled = self.capacity.saturating_mul(2);
            self.capacity = needed.next_power_of_two().max(doubled).min(self.limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_demand_up_to_the_limit() {
        let mut a = OverflowAlloc::new(1024, 8192);
        assert_eq!(a.capacity(), 1024);
        assert_eq!(a.try_alloc(1000), Some(0));
        assert_eq!(a.capacity(), 1024);
        // Does not fit after the first block: the area doubles.
        assert_eq!(a.try_alloc(1000), Some(1024));
        assert_eq!(a.capacity(), 2048);
        assert_eq!(a.try_alloc(4000), Some(2048));
        assert_eq!(a.capacity(), 8192);
        // Now at the limit and nothing released: no room.
        assert_eq!(a.try_alloc(2200), None);
        assert_eq!(a.live_blocks(), 3);
    }

    #[test]
    fn released_blocks_are_reused_in_fifo_order() {
        let mut a = OverflowAlloc::new(4096, 4096);
        assert_eq!(a.try_alloc(1024), Some(0));
        assert_eq!(a.try_alloc(1024), Some(1024));
        assert_eq!(a.try_alloc(1024), Some(2048));
        assert_eq!(a.try_alloc(2048), None);
        a.release_upto(1); // first block released
                           // 1024 free at the end (3072..4096): used before wrapping.
        assert_eq!(a.try_alloc(1024), Some(3072));
        // Wraps into the released first block.
        assert_eq!(a.try_alloc(1000), Some(0));
        // Wrapped: only the gap before the oldest live block (1024) is usable.
        assert_eq!(a.try_alloc(64), None);
        a.release_upto(3);
        assert_eq!(a.live_blocks(), 2);
        assert_eq!(a.try_alloc(2048), Some(1024));
    }

    #[test]
    fn empty_area_restarts_at_zero() {
        let mut a = OverflowAlloc::new(256, 1024);
        assert_eq!(a.try_alloc(100), Some(0));
        assert_eq!(a.try_alloc(100), Some(128));
        a.release_upto(2);
        assert_eq!(a.live_blocks(), 0);
        assert_eq!(a.try_alloc(1024), Some(0));
        assert_eq!(a.capacity(), 1024);
    }

    #[test]
    fn a_cancelled_block_is_reused() {
        let mut a = OverflowAlloc::new(1024, 1024);
        assert_eq!(a.try_alloc(64), Some(0));
        assert_eq!(a.try_alloc(64), Some(64));
        a.cancel_last();
        assert_eq!(a.live_blocks(), 1);
        assert_eq!(a.try_alloc(64), Some(64));
        a.release_upto(2);
        assert_eq!(a.live_blocks(), 0);
    }

    #[test]
    fn zero_length_blocks_still_take_a_slot() {
        let mut a = OverflowAlloc::new(128, 128);
        assert_eq!(a.try_alloc(0), Some(0));
        assert_eq!(a.try_alloc(0), Some(64));
        assert_eq!(a.try_alloc(0), None);
    }
}
