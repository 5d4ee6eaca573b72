//! Early settlers: cancel, timeouts, shutdown and lost workers settle a call
//! with an error before or while it runs, in two halves around the heavy
//! fence of the claim handshake (see the table's module docs).

use std::sync::atomic::Ordering;

use knit_transport::futex::Sharing;

use super::{CallTable, Ticket, DONE, EARLY, LANED, RUNNING};
use crate::error::CallError;
use crate::stats::FailureKind;

impl CallTable {
    /// Settles `t` with `error` unless it already has an outcome; raises its abort
    /// flag too if `abort`. Returns `None` if it had already settled, else
    /// whether it had started running (or ran). For a laned call, `lane_runs`
    /// answers whether a worker of the lane it names runs (or ran) it, reading
    /// their statuses sequentially consistently and waiting for a worker it
    /// finds on the call to decide (see the module docs); without it, a laned
    /// call that a worker started without a compare-and-swap counts as not
    /// started (the watchdog, which does not report it).
    pub(crate) fn settle_early(
        &self,
        t: Ticket,
        error: CallError,
        abort: bool,
        lane_runs: Option<&dyn Fn(Ticket, u32) -> bool>,
    ) -> Option<bool> {
        let claim = self.claim_early(t, error, abort, false)?;
        if claim.laned() && lane_runs.is_some() {
            knit_transport::fence::heavy(Sharing::Private);
        }
        Some(self.finish_early(claim, lane_runs))
    }

    /// [`CallTable::settle_early`] for many calls at once, with one heavy
    /// fence for all of them (each is an inter-processor interrupt to every
    /// core running this process). `error` gives each call's error.
    /// With `spare_claimed`, a call that is not laned and that a runner has
    /// claimed is left to that runner (a dead lane's queue may hold the frame
    /// of a claimable call another thread already runs).
    pub(crate) fn settle_early_all(
        &self,
        tickets: impl IntoIterator<Item = Ticket>,
        error: impl Fn() -> CallError,
        lane_runs: &dyn Fn(Ticket, u32) -> bool,
        spare_claimed: bool,
    ) {
        let claims: Vec<EarlyClaim> = tickets
            .into_iter()
            .filter_map(|t| self.claim_early(t, error(), true, spare_claimed))
            .collect();
        if claims.iter().any(|c| c.laned()) {
            knit_transport::fence::heavy(Sharing::Private);
        }
        for claim in claims {
            self.finish_early(claim, Some(lane_runs));
        }
    }

    /// The first half of an early settle: claims `t` (unless it already has
    /// an outcome), leaves `error`, raises the abort flag if `abort`, and for
    /// a laned call raises its `settled_early` flag, the settler's half of the
    /// claim handshake (the heavy fence and the look at the workers follow).
    fn claim_early(
        &self,
        t: Ticket,
        error: CallError,
        abort: bool,
        spare_claimed: bool,
    ) -> Option<EarlyClaim> {
        let allowed = |s: u32| {
            let claimed_elsewhere = spare_claimed && s & LANED == 0 && s & RUNNING != 0;
            s & (EARLY | DONE) == 0 && !claimed_elsewhere
        };
        let (claimed, _) = self.transition(t, |_| EARLY, allowed)?;
        self.early.settled(Some(FailureKind::of(&error)));
        let i = t.index as usize;
        // SAFETY: this party won the EARLY claim, so it alone writes `early`, and
        // the caller reads it only after the DONE set in `finish_early`.
        unsafe { *self.extras[i].early.get() = Some(error) };
        if abort {
            // Before DONE, so the slot cannot have been recycled yet.
            self.aborts.set(i);
        }
        if claimed & LANED != 0 {
            self.settled_early.set(i);
        }
        Some(EarlyClaim { t, claimed })
    }

    /// The second half: after the heavy fence (if the call is laned and
    /// `lane_runs` will look at its workers), finds out whether the call
    /// started and sets DONE. Without `lane_runs` (the watchdog, which reports
    /// nothing) no fence is needed: a worker that misses the flag runs the
    /// call with its abort flag up and its result is dropped.
    fn finish_early(
        &self,
        claim: EarlyClaim,
        lane_runs: Option<&dyn Fn(Ticket, u32) -> bool>,
    ) -> bool {
        let EarlyClaim { t, claimed } = claim;
        let i = t.index as usize;
        let started = if claimed & LANED != 0 {
            // A worker that has not published `t` yet will see the flag.
            let lane = self.links[i].load(Ordering::Relaxed);
            // The workers are read first: one that has moved past `t` did so
            // after setting RESULT, which is then visible in the state word.
            lane_runs.is_some_and(|runs| runs(t, lane)) || self.laned_ran(t) == Some(true)
        } else {
            claimed & RUNNING != 0
        };
        let (old, new) = self
            .transition(t, |_| DONE, |_| true)
            .expect("an EARLY claim keeps the generation until DONE");
        self.after_held(t, old, new);
        started
    }
}

/// An early settler's claim on a call, between `claim_early` and
/// `finish_early`.
struct EarlyClaim {
    t: Ticket,
    /// The call's state before the claim.
    claimed: u32,
}

impl EarlyClaim {
    fn laned(&self) -> bool {
        self.claimed & LANED != 0
    }
}
