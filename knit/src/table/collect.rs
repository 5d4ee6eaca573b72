//! The caller's half of a slot: waiting for the call to settle (spin, then
//! park on the slot's state word), taking its outcome, and letting the slot go.

use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::{Duration, Instant};

use knit_transport::futex::Sharing;
use knit_transport::SpinBudget;

use super::{
    can_free, generation, runner_done, CallTable, Outcome, Released, Ticket, DONE, EARLY, OUTCOME,
    PARKED, RELEASED, RESULT, WAKER,
};

/// How a waiting caller spins before it parks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallerSpin {
    /// How long (`PoolOptions::caller_spin`).
    pub budget: Duration,
    /// Give the core away between looks instead of pausing: set when the
    /// pool's workers fill every core, so that a waiting caller shares a core
    /// with a worker (maybe the one running its call), and a spin that keeps
    /// the core would take that worker's time.
    pub yields: bool,
}

impl CallTable {
    #[inline]
    pub(crate) fn is_done(&self, t: Ticket) -> bool {
        self.word(t.index).load(Ordering::Acquire) & DONE != 0
    }

    /// Takes the outcome and releases the slot; only the caller, once, after
    /// `is_done`. The caller drops the [`Released`] after its last use of the
    /// table.
    pub(crate) fn take(&self, t: Ticket) -> (Outcome, Released) {
        let s = self.word(t.index).load(Ordering::Acquire);
        assert!(s & DONE != 0 && generation(s) == t.gen);
        let i = t.index as usize;
        let outcome = if s & EARLY != 0 {
            // SAFETY: DONE was acquired, so the early settler that wrote
            // `early` has finished; only the caller reads it, once.
            let early = unsafe { (*self.extras[i].early.get()).take() };
            Outcome::Failed(early.expect("an early settler leaves its error"))
        } else {
            debug_assert!(s & OUTCOME != 0);
            // SAFETY: DONE without EARLY is set only by `finish`, after it
            // wrote the cell (OUTCOME); the caller moves the value out once, and
            // the release below tells `free` not to drop it again.
            unsafe { (*self.slots[i].outcome.get()).assume_init_read() }
        };
        let released = self.release_with(t, s, s & EARLY == 0);
        (outcome, released)
    }

    /// Gives up a ticket that was never sent, with its `max_queue` place. No
    /// runner knows it, but the watchdog may (its deadline is armed before the
    /// send), so this goes through the state word like any settle: if a
    /// timeout claimed it first, that settler finishes it and frees the slot.
    pub(crate) fn discard(&self, t: Ticket) {
        let nobody_settled =
            self.transition(t, |_| RESULT | DONE | RELEASED, |s| s & (EARLY | DONE) == 0);
        match nobody_settled {
            Some((_, new)) => {
                // No DONE came before, so nobody gave the place back yet.
                if let Some(admission) = &self.admission {
                    admission.release();
                }
                // The sender holds the pool, so the keep may go here.
                drop(self.free(t.index, new, false));
            }
            None => {
                // An early settler won: it gives the place back when it sets
                // DONE, and whichever of us comes second frees the slot.
                if let Some((old, new)) = self.transition(t, |_| RESULT | RELEASED, |_| true) {
                    self.after_held(t, old, new);
                }
            }
        }
    }

    /// The caller gives up on `t` without taking its outcome; it drops the
    /// [`Released`] after its last use of the table.
    pub(crate) fn release(&self, t: Ticket) -> Released {
        let s = self.word(t.index).load(Ordering::Acquire);
        debug_assert_eq!(generation(s), t.gen);
        self.release_with(t, s, false)
    }

    /// The caller is done with `t`, whose state it read as `s`; `took` says
    /// it moved the runner's outcome out of the slot.
    fn release_with(&self, t: Ticket, s: u32, took: bool) -> Released {
        if s & DONE != 0 && runner_done(s) {
            // Nobody else will write this generation's state again (late parties
            // see DONE and back off), so no read-modify-write is needed.
            return self.free(t.index, s, took);
        }
        // Not free-able yet: the call was settled early and a runner still
        // holds it, so `took` is false (the caller took the early error).
        match self.transition(t, |_| RELEASED, |_| true) {
            // The runner finished meanwhile: freeing is this caller's.
            Some((_, new)) if can_free(new) => self.free(t.index, new, false),
            // The runner frees the slot, and may return a draining table's
            // last slot before this returns: nothing here reads the table
            // after the exchange (as `Arc::drop` reads nothing after its
            // decrement).
            _ => Released(None),
        }
    }

    /// Spins up to `spin` (running `help` between looks; it returns whether it
    /// did any work), then sleeps until `t` settles or `until` passes. Returns
    /// whether `t` is settled.
    pub(crate) fn wait(
        &self,
        t: Ticket,
        spin: CallerSpin,
        until: Option<Instant>,
        mut help: impl FnMut() -> bool,
    ) -> bool {
        let spun = if spin.yields {
            self.spin_yielding(t, spin.budget, until, &mut help)
        } else {
            // Reading the clock costs as much as many looks at the word.
            self.spin(t, spin.budget, 64, until, &mut help, std::hint::spin_loop)
        };
        if let Some(settled) = spun {
            return settled;
        }
        let word = self.word(t.index);
        loop {
            let s = word.load(Ordering::Acquire);
            if s & DONE != 0 {
                return true;
            }
            if s & PARKED == 0
                && word
                    .compare_exchange(s, s | PARKED, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            let timeout = match until {
                Some(u) => match u.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return self.is_done(t),
                },
                None => None,
            };
            self.slots[t.index as usize]
                .state
                .wait(s | PARKED, Sharing::Private, timeout);
        }
    }

    /// Looks at `t` until it settles (`Some(true)`), `until` passes
    /// (`Some(false)`) or `budget` is spent (`None`), reading the clock every
    /// `every` looks and calling `relax` between them.
    #[inline(always)]
    fn spin(
        &self,
        t: Ticket,
        budget: Duration,
        every: u32,
        until: Option<Instant>,
        help: &mut impl FnMut() -> bool,
        relax: impl Fn(),
    ) -> Option<bool> {
        let mut budget = SpinBudget::new(budget, every);
        while !self.is_done(t) {
            if help() {
                continue;
            }
            if let Some(now) = budget.tick() {
                if budget.spent(now) {
                    return None;
                }
                if until.is_some_and(|u| now >= u) {
                    return Some(false);
                }
            }
            relax();
        }
        Some(true)
    }

    /// [`CallTable::spin`] giving the core away between looks. Kept out of
    /// line so that the pausing spin, the one on the hot path, stays as it
    /// was. A yield costs about as much as a clock read.
    #[cold]
    #[inline(never)]
    fn spin_yielding(
        &self,
        t: Ticket,
        budget: Duration,
        until: Option<Instant>,
        help: &mut impl FnMut() -> bool,
    ) -> Option<bool> {
        self.spin(t, budget, 4, until, help, std::thread::yield_now)
    }

    /// Leaves `waker` to be woken when `t` settles; false if it already has.
    pub(crate) fn register(&self, t: Ticket, waker: &Waker) -> bool {
        {
            let mut slot = self.extras[t.index as usize]
                .waker
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        self.transition(t, |_| WAKER, |s| s & DONE == 0).is_some()
    }
}
