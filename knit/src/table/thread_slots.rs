//! Slots a calling thread freed, on their way back to the shared free list.
//!
//! A caller frees the slot of every call it collects. Pushing each onto the
//! shared list is a compare-and-swap per call, a locked instruction that
//! waits for the caller's earlier stores to lines the workers hold. Instead
//! the thread stacks them and hands them over as one chain once it holds
//! [`ThreadSlots::cap`] of them (one compare-and-swap per half of that).
//!
//! The stack belongs to one table at a time (a thread collecting from two
//! pools alternately hands its slots over at each switch) and holds at most
//! `capacity / 32` slots (32 for the default table; none for tables under
//! 64 slots), so a table can refuse a call as full while up to that many free
//! slots sit with a thread that collected from it. A table that finds its
//! shared list empty takes back the calling thread's own stack first; a
//! thread that ends hands its stack over. The stack keeps only a weak
//! reference, so it never keeps a dropped pool's table alive.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::CallTable;

/// Most slots a thread keeps (for a table of at least `32 * MAX_KEPT` slots).
const MAX_KEPT: usize = 32;

pub(super) struct ThreadSlots {
    /// The table these slots belong to (`Weak::new()` before the first use).
    table: Weak<CallTable>,
    slots: Vec<u32>,
}

thread_local! {
    static THREAD_SLOTS: RefCell<ThreadSlots> = const {
        RefCell::new(ThreadSlots { table: Weak::new(), slots: Vec::new() })
    };
}

impl ThreadSlots {
    /// How many slots a thread may keep for `table`.
    fn cap(table: &CallTable) -> usize {
        (table.capacity() / 32).min(MAX_KEPT)
    }

    /// Makes this stack `table`'s, first handing any other table's slots over.
    fn adopt(&mut self, table: &Arc<CallTable>) {
        if Weak::as_ptr(&self.table) != Arc::as_ptr(table) {
            self.hand_over(self.slots.len());
            self.table = Arc::downgrade(table);
        }
    }

    /// Pushes the `n` oldest slots onto the owning table's shared list.
    fn hand_over(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        // If the table is gone, its slots went with it.
        if let Some(table) = self.table.upgrade() {
            table.push_chain(&self.slots[..n]);
        }
        self.slots.drain(..n);
    }
}

impl Drop for ThreadSlots {
    fn drop(&mut self) {
        self.hand_over(self.slots.len());
    }
}

impl CallTable {
    /// Keeps a slot the caller just freed (and cleared) on this thread's
    /// stack, or pushes it onto the shared list if the table keeps none per
    /// thread or the stack is busy (this runs inside its own upkeep).
    #[inline]
    pub(super) fn keep_local(self: &Arc<Self>, index: u32) {
        let cap = ThreadSlots::cap(self);
        let kept = cap > 0
            && THREAD_SLOTS
                .try_with(|cell| {
                    let Ok(mut mine) = cell.try_borrow_mut() else {
                        return false;
                    };
                    mine.adopt(self);
                    if mine.slots.len() >= cap {
                        // The newest half stays: it is what the next batch
                        // taken from the shared list would want first anyway.
                        let n = mine.slots.len() - cap / 2;
                        mine.hand_over(n);
                    }
                    mine.slots.push(index);
                    true
                })
                .unwrap_or(false);
        if !kept {
            self.push_chain(&[index]);
        }
    }

    /// Hands this thread's stack over to the shared list (when it looks
    /// empty, so that at least this thread's freed slots are usable).
    pub(crate) fn hand_over_local(self: &Arc<Self>) {
        let _ = THREAD_SLOTS.try_with(|cell| {
            if let Ok(mut mine) = cell.try_borrow_mut() {
                if Weak::as_ptr(&mine.table) == Arc::as_ptr(self) {
                    let n = mine.slots.len();
                    mine.hand_over(n);
                }
            }
        });
    }
}
