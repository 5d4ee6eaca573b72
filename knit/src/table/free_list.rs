//! The table's free slots: a tagged lock-free stack shared by the pool, and the
//! private chains lanes take from it in batches (so a send usually allocates
//! under the lane lock it already holds, without touching the shared stack).
//!
//! Once the pool closes, the table drains: the stack stops handing out slots
//! and counts the ones that come back instead. The party that returns the last
//! one gets what the table kept alive until then (the pool's shared state,
//! which a `Call` in flight reaches through its slot without a reference count
//! of its own).

use std::any::Any;
use std::sync::atomic::Ordering;

use super::{
    generation, next_generation, CallTable, Ticket, ARMED, EARLY, GEN_SHIFT, NIL, OUTCOME, WAKER,
};

/// How many free slots a lane takes from the shared list at a time.
const CACHE_BATCH: usize = 64;

/// Set in `free_head` when the table drains. From then on its low half counts
/// the slots returned, and nothing is popped.
pub(super) const DRAINING: u64 = 1 << 63;
/// The pop count, between the slot index and `DRAINING`.
const TAG: u64 = !DRAINING & !(u32::MAX as u64);

/// `head` with its pop count advanced and `index` on top.
fn popped(head: u64, index: u32) -> u64 {
    (head.wrapping_add(1 << 32) & TAG) | index as u64
}

/// Whatever a table keeps alive until it drains.
pub(crate) type Keep = Box<dyn Any + Send + Sync>;

/// Handed to a party whose free returned a draining table's last slot: the
/// table's [`Keep`] (usually nothing). Dropping it may free the table itself,
/// so it is dropped only where the party no longer borrows the table.
#[must_use = "drop it once the table is no longer borrowed"]
pub(crate) struct Released(#[allow(dead_code)] pub(super) Option<Keep>);

/// A private chain of free slots (see [`CallTable::alloc_cached`]).
pub(crate) struct SlotCache {
    head: u32,
}

impl SlotCache {
    pub(crate) fn new() -> Self {
        SlotCache { head: NIL }
    }
}

impl CallTable {
    /// Takes a free slot from the shared list, or `None` if it is really empty
    /// (not just held for a moment by a lane taking a batch).
    pub(crate) fn alloc_settled(&self) -> Option<Ticket> {
        loop {
            let ended = self.takes_ended.load(Ordering::SeqCst);
            let begun = self.takes_begun.load(Ordering::SeqCst);
            if let Some(t) = self.alloc() {
                return Some(t);
            }
            if begun == ended && self.takes_begun.load(Ordering::SeqCst) == begun {
                // No batch take was under way from before the look until after it.
                return None;
            }
            std::thread::yield_now();
        }
    }

    /// Takes a free slot, or `None` if every slot holds a call.
    pub(crate) fn alloc(&self) -> Option<Ticket> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let index = head as u32;
            if index == NIL || head & DRAINING != 0 {
                return None;
            }
            let next = self.links[index as usize].load(Ordering::Relaxed);
            match self.free_head.compare_exchange_weak(
                head,
                popped(head, next),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(self.begin_use(index)),
                Err(now) => head = now,
            }
        }
    }

    /// Starts the next generation of slot `index`, just taken off a free list
    /// (nobody else can reach it).
    fn begin_use(&self, index: u32) -> Ticket {
        let word = self.word(index);
        let gen = next_generation(generation(word.load(Ordering::Relaxed)));
        word.store(gen << GEN_SHIFT, Ordering::Relaxed);
        Ticket { index, gen }
    }

    /// Clears a slot that no party can touch any more and puts it back on the
    /// free list. Only what `state` says was used is cleared, and the slot's
    /// own line is not written (its state stays as it is until the next
    /// allocation starts a new generation; every late party backs off on the
    /// DONE or RESULT it shows). `took`: the caller moved the runner's outcome
    /// out.
    pub(super) fn free(&self, index: u32, state: u32, took: bool) -> Released {
        let i = index as usize;
        if state & OUTCOME != 0 && !took {
            // SAFETY: `state` is free-able (`can_free` for the state this party
            // installed; DONE with the runner done, for the caller's release),
            // so no runner, early settler or caller will touch the cell again
            // for this generation; OUTCOME says a runner wrote it and `took`
            // that the caller did not move it out.
            unsafe { (*self.slots[i].outcome.get()).assume_init_drop() };
        }
        if state & (EARLY | WAKER | ARMED) != 0 {
            let extra = &self.extras[i];
            if state & EARLY != 0 {
                // SAFETY: as above (the early settler has finished with it).
                unsafe { *extra.early.get() = None };
                self.settled_early.clear(i);
            }
            if state & WAKER != 0 {
                drop(extra.waker.lock().unwrap_or_else(|e| e.into_inner()).take());
            }
            if state & ARMED != 0 {
                let deadline = extra.deadline.swap(0, Ordering::Relaxed);
                let id = Ticket {
                    index,
                    gen: generation(state),
                };
                self.deadlines.remove(deadline, id.call_id());
            }
        }
        self.aborts.clear(i);
        self.push_free(index, index, 1)
    }

    /// Pushes the chain `first ..= last` of `count` slots (linked through
    /// `links`) onto the shared free list, or counts them if the table drains.
    fn push_free(&self, first: u32, last: u32, count: u32) -> Released {
        let mut head = self.free_head.load(Ordering::Relaxed);
        loop {
            if head & DRAINING != 0 {
                return self.count_returned(count);
            }
            self.links[last as usize].store(head as u32, Ordering::Relaxed);
            let pushed = (head & !(u32::MAX as u64)) | first as u64;
            match self.free_head.compare_exchange_weak(
                head,
                pushed,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Released(None),
                Err(now) => head = now,
            }
        }
    }

    /// Adds `count` slots to those a draining table got back; the party whose
    /// count completes it gets the table's [`Keep`].
    fn count_returned(&self, count: u32) -> Released {
        // Read first: unless this add completes the count, another party may
        // complete it and free the table right after.
        let capacity = self.capacity();
        // Acquire-release: the party that completes the count has seen every
        // other party's last use of the table (a release sequence of adds).
        let before = self.free_head.fetch_add(count as u64, Ordering::AcqRel);
        if (before as u32 + count) as usize == capacity {
            Released(self.keep.lock().unwrap_or_else(|e| e.into_inner()).take())
        } else {
            Released(None)
        }
    }

    /// Keeps `keep` alive until the table has drained (see [`CallTable::drain`]).
    pub(crate) fn keep_until_drained(&self, keep: Keep) {
        *self.keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(keep);
    }

    /// Stops handing out slots; from now on they are counted as they come
    /// back. Only once nobody can allocate any more (the pool is closed and
    /// every lane's cache was returned): the slots out then are exactly the
    /// calls in flight. Idempotent.
    pub(crate) fn drain(&self) -> Released {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            if head & DRAINING != 0 {
                return Released(None);
            }
            match self.free_head.compare_exchange_weak(
                head,
                DRAINING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        // The list as it was is this party's now: nobody pops from it or
        // links into it any more.
        let count = match head as u32 {
            NIL => 0,
            first => self.chain_end(first).1,
        };
        self.count_returned(count)
    }

    /// Whether the table drains (the pool is closed).
    pub(crate) fn is_draining(&self) -> bool {
        self.free_head.load(Ordering::Acquire) & DRAINING != 0
    }

    /// Allocates through `cache`, a private chain of free slots owned by one
    /// lock holder. It is refilled with up to [`CACHE_BATCH`] slots at a time,
    /// so a run of calls pays one read-modify-write of the shared list per batch
    /// instead of one per call, and no lane hoards more than a batch.
    pub(crate) fn alloc_cached(&self, cache: &mut SlotCache) -> Option<Ticket> {
        if cache.head == NIL {
            cache.head = self.take_batch();
            if cache.head == NIL {
                return None;
            }
        }
        let index = cache.head;
        cache.head = self.links[index as usize].load(Ordering::Relaxed);
        Some(self.begin_use(index))
    }

    /// Takes the whole shared list, keeps its first `CACHE_BATCH` slots (as a
    /// NIL-terminated chain) and puts the rest back.
    fn take_batch(&self) -> u32 {
        self.takes_begun.fetch_add(1, Ordering::SeqCst);
        let first = self.take_batch_inner();
        self.takes_ended.fetch_add(1, Ordering::SeqCst);
        first
    }

    fn take_batch_inner(&self) -> u32 {
        let first = self.take_all();
        if first == NIL {
            return NIL;
        }
        let mut last = first;
        for _ in 1..CACHE_BATCH {
            let next = self.links[last as usize].load(Ordering::Relaxed);
            if next == NIL {
                return first;
            }
            last = next;
        }
        let rest = self.links[last as usize].load(Ordering::Relaxed);
        self.links[last as usize].store(NIL, Ordering::Relaxed);
        if rest != NIL {
            // Under a lane lock, whose holder keeps the pool alive.
            drop(self.put_back(rest));
        }
        first
    }

    /// Empties the shared list; returns its first slot (or NIL).
    fn take_all(&self) -> u32 {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            if head as u32 == NIL || head & DRAINING != 0 {
                return NIL;
            }
            match self.free_head.compare_exchange_weak(
                head,
                popped(head, NIL),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return head as u32,
                Err(now) => head = now,
            }
        }
    }

    /// Puts a NIL-terminated chain (the remainder of a batch) back on the
    /// shared list, splicing in whatever was freed meanwhile.
    fn put_back(&self, mut chain: u32) -> Released {
        loop {
            let head = self.free_head.load(Ordering::Acquire);
            if head & DRAINING != 0 {
                let (_, count) = self.chain_end(chain);
                return self.count_returned(count);
            }
            if head as u32 == NIL {
                let restored = (head & !(u32::MAX as u64)) | chain as u64;
                if self
                    .free_head
                    .compare_exchange(head, restored, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return Released(None);
                }
                continue;
            }
            // Slots were freed since the batch was taken (a short chain): take
            // them, hang `chain` after them, and try again.
            let freed = self.take_all();
            if freed == NIL {
                continue;
            }
            let (tail, _) = self.chain_end(freed);
            self.links[tail as usize].store(chain, Ordering::Relaxed);
            chain = freed;
        }
    }

    /// Hands `cache`'s slots back to the shared list (so another lane can use
    /// them when the table runs low, or count them when it drains).
    pub(crate) fn return_cache(&self, cache: &mut SlotCache) -> Released {
        if cache.head == NIL {
            return Released(None);
        }
        let first = cache.head;
        let (last, count) = self.chain_end(first);
        cache.head = NIL;
        self.push_free(first, last, count)
    }

    /// The last slot of the private chain starting at `first`, and the
    /// chain's length.
    fn chain_end(&self, first: u32) -> (u32, u32) {
        let (mut last, mut count) = (first, 1);
        loop {
            let next = self.links[last as usize].load(Ordering::Relaxed);
            if next == NIL {
                return (last, count);
            }
            last = next;
            count += 1;
        }
    }
}
