//! The call table: one recycled slot per call in flight.
//!
//! A call is named by a [`Ticket`] (slot index + generation), which is what
//! travels through the rings as the call id. Up to three parties touch a slot:
//!
//! * the caller (its `Call`), who waits, reads the outcome and releases it;
//! * one runner (a worker or the inline lane), who claims the call before running
//!   it (`claim_run`) and writes the task's outcome (`finish`);
//! * early settlers (cancel, timeout, shutdown, a lost worker), who settle the call
//!   with an error before or while it runs (`settle_early`).
//!
//! All of them go through one state word per slot, so exactly one outcome is
//! ever delivered and exactly one party frees the slot: the one whose
//! transition makes it releasable (see [`can_free`]). While a call holds the
//! slot, the word changes only by compare-and-swap; plain stores write it only
//! where no other party can reach the slot (allocation, `mark_laned`). A freed
//! slot keeps its last state (DONE and, if a runner held it, RESULT), which
//! every late party's compare-and-swap refuses; from the next allocation on,
//! the generation in the word makes it fail instead (a worker finishing a call
//! whose caller timed out long ago never touches the slot's next call).
//! Generations have 21 bits: a stale party would have to hold its ticket while
//! the slot is reused 2^21 times to meet the same generation again.
//!
//! A call sent to a worker lane is claimed for that lane's worker when it is
//! sent (`LANED`), so the worker runs it without writing the caller's slot line
//! first (a compare-and-swap there would cost a cache-line round trip on every
//! call). What the claim CAS used to decide, a handshake decides instead: the
//! worker publishes the call it starts, fences, then reads the call's
//! `settled_early` flag; an early settler raises that flag, fences, then reads
//! what the lane's workers run. At least one of them sees the other
//! (`knit/tests/loom_claim.rs` models this with sequentially consistent fences
//! on both sides). The worker's fence is the light half of an asymmetric pair
//! and the settler's the heavy half (`knit_transport::fence`): the worker
//! fences on every call, settlers rarely. A worker that sees the flag skips
//! the call (SKIPPED); one that does not runs it and says so in its status. A settler
//! that sees the worker on the call waits for that decision (a few
//! instructions away) before it reports whether the call ran; one that does not
//! knows the worker will see its flag. So a call reported settled "before it
//! ran" never runs. Calls that may reach two workers (moved off a replaced
//! lane, or met by a worker that was retired) are claimed by compare-and-swap
//! as before (`claim_laned`).
//!
//! `shutdown_now` uses the same pairing pool-wide: it raises the pool's halt
//! flag and runs the heavy fence before it reads what the workers run and
//! what is queued; a worker reads that flag after its light fence, and one
//! that sees it settles the call with `Closed` itself instead of running it
//! (`knit/tests/loom_claim.rs` checks that this cuts a lane's order once:
//! the calls that finish all come before the ones rejected). With the fence,
//! no call starts after the halt at all.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::Waker;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use knit_transport::futex::{FutexWord, Sharing};
use knit_transport::FlagBitmap;

use crate::admission::Admission;
use crate::deadline::Deadlines;
use crate::error::CallError;
use crate::stats::Counters;

mod collect;
mod early;
mod free_list;
mod outcome;
#[cfg(test)]
mod tests;

pub(crate) use collect::CallerSpin;
pub(crate) use free_list::{Released, SlotCache};
pub(crate) use outcome::Outcome;

/// A thread sleeps on the state word.
const PARKED: u32 = 1;
/// A future left a waker in the slot.
const WAKER: u32 = 1 << 1;
/// A runner claimed the call (it runs exactly once, or never).
const RUNNING: u32 = 1 << 2;
/// The runner is done with the slot (its outcome is written).
const RESULT: u32 = 1 << 3;
/// An early settler claimed the call; its error is the call's outcome.
const EARLY: u32 = 1 << 4;
/// The outcome is readable.
const DONE: u32 = 1 << 5;
/// The caller is done with the slot (read the outcome, or dropped the `Call`).
const RELEASED: u32 = 1 << 6;
/// The call has (or had) a deadline, so freeing it must forget that deadline.
const ARMED: u32 = 1 << 7;
/// The call was sent to a worker lane, whose worker holds the runner's claim
/// from then on: the slot is not freed before that worker sets RESULT.
const LANED: u32 = 1 << 8;
/// A laned call's runner met it settled early and did not run it.
const SKIPPED: u32 = 1 << 9;
/// The slot's `outcome` cell holds a runner's outcome (until the caller moves
/// it out, or the slot is freed).
const OUTCOME: u32 = 1 << 10;
const GEN_SHIFT: u32 = 11;
const NIL: u32 = u32::MAX;

/// Whether a slot in state `s` has no party left that may touch it.
fn can_free(s: u32) -> bool {
    s & RELEASED != 0 && s & DONE != 0 && runner_done(s)
}

/// Whether no runner holds (or may still take) the slot.
fn runner_done(s: u32) -> bool {
    s & (RUNNING | LANED) == 0 || s & RESULT != 0
}

fn generation(s: u32) -> u32 {
    s >> GEN_SHIFT
}

/// One call's name: which slot, and which use of that slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Ticket {
    pub index: u32,
    pub gen: u32,
}

impl Ticket {
    /// The id carried in request frames.
    pub(crate) fn call_id(self) -> u64 {
        (self.gen as u64) << 32 | self.index as u64
    }

    pub(crate) fn from_call_id(id: u64) -> Self {
        Ticket {
            index: id as u32,
            gen: (id >> 32) as u32,
        }
    }
}

/// The parts of a slot every call touches, on one cache line: the line goes
/// to the runner and back once per call. The caller's release writes nothing
/// here (freeing a slot leaves its state as it was; the next allocation
/// starts the next generation), so no store to a line the runner just wrote
/// delays the caller's next call.
#[repr(C, align(64))]
struct Slot {
    state: FutexWord,
    /// Written by the runner that claimed the call (OUTCOME); moved out by the
    /// caller after DONE, or dropped when the slot is freed.
    outcome: UnsafeCell<MaybeUninit<Outcome>>,
}

/// The parts only some calls touch (async waiters, early settles, budgets).
struct SlotExtra {
    /// Written by the early settler that claimed the call.
    early: UnsafeCell<Option<CallError>>,
    /// When the call was made, in nanoseconds since the table's epoch (only
    /// recorded when the pool times calls).
    enqueued: AtomicU64,
    waker: Mutex<Option<Waker>>,
    /// The call's deadline in nanoseconds since the table's epoch; 0: none.
    deadline: AtomicU64,
}

/// Every slot of a pool, its free list and its abort flags.
pub(crate) struct CallTable {
    slots: Box<[Slot]>,
    /// Per slot: while the slot is free, the next free slot; while a call sent
    /// to a worker lane holds it, that lane's index (for early settlers).
    links: Box<[AtomicU32]>,
    extras: Box<[SlotExtra]>,
    aborts: FlagBitmap,
    /// Raised when a call sent to a worker lane settles early: the worker that
    /// meets its frame must skip it (see the module docs).
    settled_early: FlagBitmap,
    /// Top of the free list: a pop count in the high half (against ABA), the
    /// slot index in the low half; once the table drains, a count of the
    /// slots returned (see `free_list`). On a line of its own: callers
    /// compare-and-swap it on every call they free, and the worker reads the
    /// fields around it (the bitmaps, the slots) on every call; sharing a
    /// line cost a cache-line transfer each way per call.
    free_head: CachePadded<AtomicU64>,
    /// What the table keeps alive until it has drained.
    keep: Mutex<Option<free_list::Keep>>,
    epoch: Instant,
    /// Deadlines of calls in flight, for the watchdog.
    pub(crate) deadlines: Deadlines,
    /// Outcomes of calls settled early (each counted by the settler that won).
    pub(crate) early: Counters,
    /// `max_queue`, if set: a place is taken per call sent, given back when it
    /// settles.
    pub(crate) admission: Option<Admission>,
    /// Batch takes begun and ended: while they differ, the shared list may look
    /// empty only because a taker holds it for a moment.
    takes_begun: CachePadded<AtomicU64>,
    takes_ended: CachePadded<AtomicU64>,
}

// SAFETY: the `UnsafeCell`s are written only by the party the state word grants
// them to (runner: `outcome` while it holds the claim and has not set RESULT;
// early settler: `early` between its EARLY claim and DONE; the freeing party:
// both, once no other party can touch the slot), and read only by the caller
// after it acquires DONE (it moves `outcome` out at most once, and tells `free`).
unsafe impl Sync for CallTable {}

impl CallTable {
    pub(crate) fn new(
        capacity: usize,
        admission: Option<Admission>,
    ) -> Result<Self, knit_transport::TransportError> {
        assert!(capacity > 0 && capacity < NIL as usize);
        let slots: Box<[Slot]> = (0..capacity)
            .map(|_| Slot {
                state: FutexWord::new(0),
                outcome: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        let links = (0..capacity)
            .map(|i| AtomicU32::new(if i + 1 < capacity { i as u32 + 1 } else { NIL }))
            .collect();
        let extras = (0..capacity)
            .map(|_| SlotExtra {
                early: UnsafeCell::new(None),
                enqueued: AtomicU64::new(0),
                waker: Mutex::new(None),
                deadline: AtomicU64::new(0),
            })
            .collect();
        Ok(CallTable {
            slots,
            links,
            extras,
            aborts: FlagBitmap::anonymous(capacity)?,
            settled_early: FlagBitmap::anonymous(capacity)?,
            free_head: CachePadded::new(AtomicU64::new(0)),
            keep: Mutex::new(None),
            epoch: Instant::now(),
            deadlines: Deadlines::new(),
            early: Counters::new(),
            admission,
            takes_begun: CachePadded::new(AtomicU64::new(0)),
            takes_ended: CachePadded::new(AtomicU64::new(0)),
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn word(&self, index: u32) -> &AtomicU32 {
        self.slots[index as usize].state.atomic()
    }

    /// Sets `add` on `t`'s state if `allowed(state)`; returns the states before
    /// and after, or `None` if the generation moved on or `allowed` said no.
    fn transition(
        &self,
        t: Ticket,
        add: impl Fn(u32) -> u32,
        allowed: impl Fn(u32) -> bool,
    ) -> Option<(u32, u32)> {
        let s = self.word(t.index).load(Ordering::Acquire);
        self.transition_from(t, s, add, allowed)
    }

    /// [`CallTable::transition`] starting from a guess of the current state
    /// instead of a load. On a line another core holds, a load then a
    /// compare-exchange cost two coherence round trips; a right guess costs one
    /// (a wrong one just retries with the value the exchange returned).
    #[inline]
    fn transition_from(
        &self,
        t: Ticket,
        guess: u32,
        add: impl Fn(u32) -> u32,
        allowed: impl Fn(u32) -> bool,
    ) -> Option<(u32, u32)> {
        let word = self.word(t.index);
        let mut s = guess;
        loop {
            if generation(s) != t.gen || !allowed(s) {
                return None;
            }
            let new = s | add(s);
            match word.compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some((s, new)),
                Err(now) => s = now,
            }
        }
    }

    /// Wakes whoever waits if `old -> new` made the call DONE, and frees the slot
    /// if it made the slot free-able.
    fn after(&self, t: Ticket, old: u32, new: u32) -> Released {
        if new & DONE != 0 && old & DONE == 0 {
            if let Some(admission) = &self.admission {
                admission.release();
            }
            if new & PARKED != 0 {
                self.slots[t.index as usize]
                    .state
                    .wake_all(Sharing::Private);
            }
            if new & WAKER != 0 {
                let waker = self.extras[t.index as usize]
                    .waker
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
        if can_free(new) && !can_free(old) {
            // The caller released without taking the runner's outcome (it gave
            // up, or took an early settler's error instead).
            return self.free(t.index, new, false);
        }
        Released(None)
    }

    /// [`CallTable::after`] for a party that keeps the pool alive by itself
    /// (a runner or settler holds a strong reference; a caller that has not
    /// released its slot cannot be the one to return the last slot), so the
    /// table's keep may be dropped right here.
    fn after_held(&self, t: Ticket, old: u32, new: u32) {
        drop(self.after(t, old, new));
    }

    /// A runner claims `t` before running it. False: the call was cancelled,
    /// settled early, or already claimed elsewhere; it must not run.
    #[inline]
    pub(crate) fn claim_run(&self, t: Ticket) -> bool {
        if !self.holds(t) {
            return false;
        }
        // Usually nobody has touched the call since it was sent.
        let fresh = t.gen << GEN_SHIFT;
        self.transition_from(t, fresh, |_| RUNNING, |s| s & (RUNNING | EARLY | DONE) == 0)
            .is_some()
    }

    /// Whether `t` names a slot of this table (a frame's call id is checked
    /// before its slot is touched).
    #[inline]
    pub(crate) fn holds(&self, t: Ticket) -> bool {
        (t.index as usize) < self.slots.len()
    }

    /// Marks a fresh ticket as sent to worker lane `lane`, whose worker then
    /// holds the runner's claim. Before anyone else knows the ticket.
    #[inline]
    pub(crate) fn mark_laned(&self, t: Ticket, lane: u32) {
        // Nobody else knows the ticket yet (not even the watchdog: no deadline
        // is armed before this), so plain stores suffice; the send publishes them.
        self.links[t.index as usize].store(lane, Ordering::Relaxed);
        self.word(t.index)
            .store((t.gen << GEN_SHIFT) | LANED, Ordering::Relaxed);
    }

    /// Whether laned call `t` was settled early, as the second half of the
    /// worker's handshake (after it published `t` as its current call and
    /// fenced).
    #[inline]
    pub(crate) fn settled_early(&self, t: Ticket) -> bool {
        self.settled_early.get(t.index as usize)
    }

    /// The lane's worker met laned call `t` settled early and skips it: its
    /// claim ends here.
    pub(crate) fn skip_laned(&self, t: Ticket) {
        if let Some((old, new)) = self.transition(t, |_| RESULT | SKIPPED, |s| s & RESULT == 0) {
            self.after_held(t, old, new);
        }
    }

    /// What laned call `t`'s state says about it having run: `Some(false)`
    /// if its runner skipped it, `Some(true)` if a runner claimed it by
    /// compare-and-swap or finished it, `None` if the state does not say.
    pub(crate) fn laned_ran(&self, t: Ticket) -> Option<bool> {
        let s = self.word(t.index).load(Ordering::Acquire);
        if s & SKIPPED != 0 {
            Some(false)
        } else if s & (RUNNING | RESULT) != 0 {
            Some(true)
        } else {
            None
        }
    }

    /// The worker lane `t` is queued on, if it is a laned call that no
    /// runner has claimed or skipped and nobody has settled. (A lane's own
    /// worker runs a laned call without marking the state, so this cannot
    /// tell queued from running; it is asked by that lane's worker itself,
    /// about a call other than the one it runs.)
    pub(crate) fn queued_on_lane(&self, t: Ticket) -> Option<u32> {
        let s = self.word(t.index).load(Ordering::Acquire);
        let untouched = s & (RUNNING | RESULT | SKIPPED | EARLY | DONE) == 0;
        (generation(s) == t.gen && s & LANED != 0 && untouched)
            .then(|| self.links[t.index as usize].load(Ordering::Relaxed))
    }

    /// Claims laned call `t` by compare-and-swap, for a worker that may not be
    /// its only runner (the frame was moved off a replaced lane, or this worker
    /// was retired). False: it must not run (settled early, or another runner
    /// has it); a claimant that finds it settled early ends the lane's claim.
    pub(crate) fn claim_laned(&self, t: Ticket) -> bool {
        if !self.holds(t) {
            return false;
        }
        let add = |s: u32| {
            if s & EARLY != 0 {
                RESULT | SKIPPED
            } else {
                RUNNING
            }
        };
        match self.transition(t, add, |s| s & LANED != 0 && s & (RUNNING | RESULT) == 0) {
            Some((old, new)) => {
                self.after_held(t, old, new);
                old & EARLY == 0
            }
            None => false,
        }
    }

    /// Runner-held call `t` (claimed with `claim`) goes on waiting without
    /// running (an async task's or a JS call's): its state says it started,
    /// since no worker's status will (an early settler then reports it as
    /// started, and it is not "queued" any more). Returns the claim to
    /// finish it with.
    pub(crate) fn mark_waiting(&self, t: Ticket, claim: Claim) -> Claim {
        let Claim::Lane = claim else {
            // Claimed by compare-and-swap: RUNNING says so already.
            return claim;
        };
        if let Some((old, new)) = self.transition(t, |_| RUNNING, |s| s & (RUNNING | RESULT) == 0) {
            self.after_held(t, old, new);
        }
        Claim::LaneCas
    }

    /// The runner that claimed `t` (holding `claim`: RUNNING, LANED or both)
    /// hands over its outcome (dropped if the call was settled early
    /// meanwhile). Returns whether this outcome is the call's.
    pub(crate) fn finish(&self, t: Ticket, outcome: Outcome, claim: Claim) -> bool {
        // SAFETY: this runner holds the runner's claim for `t` (RUNNING, or
        // LANED as the lane's only runner, see the module docs) and has not set
        // RESULT, so it alone may write `outcome`, and nobody reads it before the
        // DONE this runner sets below (or ever, if an early settler got there).
        unsafe { (*self.slots[t.index as usize].outcome.get()).write(outcome) };
        let done = self.transition_from(
            t,
            (t.gen << GEN_SHIFT) | claim.bits(),
            |s| {
                if s & EARLY == 0 {
                    OUTCOME | RESULT | DONE
                } else {
                    OUTCOME | RESULT
                }
            },
            |_| true,
        );
        let (old, new) =
            done.expect("a claimed call keeps its generation until its runner finishes");
        self.after_held(t, old, new);
        old & EARLY == 0
    }

    /// The runner that claimed `t` will never finish it (its thread died, or
    /// the pool halted before it began, after the call was settled early):
    /// release its claim so the slot can be freed.
    pub(crate) fn abandon_run(&self, t: Ticket) {
        self.abandon(t, RUNNING | LANED);
    }

    /// [`CallTable::abandon_run`] for the lane's claim on a laned call only
    /// (a dead lane's queue: a claimable call's runner, if any, is alive
    /// elsewhere).
    pub(crate) fn abandon_lane_claim(&self, t: Ticket) {
        self.abandon(t, LANED);
    }

    fn abandon(&self, t: Ticket, claims: u32) {
        if let Some((old, new)) = self.transition(
            t,
            |_| RESULT,
            |s| s & claims != 0 && s & EARLY != 0 && s & RESULT == 0,
        ) {
            self.after_held(t, old, new);
        }
    }

    /// Raises `t`'s abort flag if it has not settled; for its caller only (the
    /// slot cannot be recycled while the caller holds it).
    pub(crate) fn abort(&self, t: Ticket) {
        if !self.is_done(t) {
            self.aborts.set(t.index as usize);
        }
    }

    /// Whether `t`'s abort flag is raised (read by the task through `TaskCx`).
    #[inline]
    pub(crate) fn aborted(&self, t: Ticket) -> bool {
        self.aborts.get(t.index as usize)
    }

    /// Nanoseconds since this table's epoch (saturating), the clock of deadlines.
    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64
    }

    pub(crate) fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Gives `t` a deadline (its caller, while it holds the call), replacing
    /// any earlier one; the watchdog times the call out when it passes.
    pub(crate) fn arm(&self, t: Ticket, at: Instant) {
        let n = self.nanos(at).max(1);
        if self.transition(t, |_| ARMED, |_| true).is_none() {
            return;
        }
        let old = self.extras[t.index as usize]
            .deadline
            .swap(n, Ordering::AcqRel);
        if old != 0 {
            self.deadlines.remove(old, t.call_id());
        }
        self.deadlines.insert(n, t.call_id());
    }

    /// Times out `id` if it is still in flight (the watchdog, at its deadline).
    pub(crate) fn expire(&self, id: u64) {
        let t = Ticket::from_call_id(id);
        if self.holds(t) {
            self.settle_early(t, CallError::Timeout, true, None);
        }
    }

    /// Records when `t` was made (for the wait-time histogram).
    pub(crate) fn stamp_enqueued(&self, t: Ticket, at: Instant) {
        self.extras[t.index as usize]
            .enqueued
            .store(self.nanos(at), Ordering::Relaxed);
    }

    /// When `t` was made, if stamped.
    pub(crate) fn enqueued(&self, t: Ticket) -> u64 {
        self.extras[t.index as usize]
            .enqueued
            .load(Ordering::Relaxed)
    }

    /// `t`'s deadline, if it has one and `t` still holds its slot (a worker's
    /// status may name a call it has finished and its caller has freed).
    pub(crate) fn deadline(&self, t: Ticket) -> Option<Instant> {
        let n = self.extras[t.index as usize]
            .deadline
            .load(Ordering::Acquire);
        // Read after the deadline: if `t` still holds the slot now, it held it
        // when the deadline was read, so the deadline is `t`'s.
        let s = self.word(t.index).load(Ordering::Acquire);
        if n == 0 || generation(s) != t.gen {
            return None;
        }
        Some(self.instant(n))
    }
}

/// Which claim a runner holds on a call (what [`CallTable::finish`] expects
/// the state to carry).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Claim {
    /// Claimed by compare-and-swap (inline lane, shared queue).
    Cas,
    /// A laned call, run by its lane's worker on the handshake alone.
    Lane,
    /// A laned call claimed by compare-and-swap (`claim_laned`).
    LaneCas,
}

impl Claim {
    fn bits(self) -> u32 {
        match self {
            Claim::Cas => RUNNING,
            Claim::Lane => LANED,
            Claim::LaneCas => LANED | RUNNING,
        }
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// The generation after `g` (generations wrap within the state word's bits).
fn next_generation(g: u32) -> u32 {
    g.wrapping_add(1) & (u32::MAX >> GEN_SHIFT)
}
