//! One call on a worker: claim it, run its task, settle it and count it.
//!
//! The steps are separate functions so that a call can be claimed now and
//! settled later (a call whose work stays pending across loop turns):
//! [`claim`] publishes the call as the worker's current one and decides
//! whether it runs, [`settle`] delivers its outcome, counts it and leaves the
//! worker idle, and [`skip`] is what a call [`claim`] refused gets instead.

use std::time::Instant;

use super::super::host::LaneHost;
use super::super::thread::ThreadLane;
use super::context::WorkerContext;
use crate::cx::TaskCx;
use crate::error::CallError;
use crate::registry::TaskEntry;
use crate::run::run_task;
use crate::stats::FailureKind;
use crate::table::{Claim, Outcome, Ticket};

/// Where a worker met a call.
#[derive(Clone, Copy)]
pub(crate) enum Met {
    /// In its lane's ring: the call is laned (see `table`'s module docs).
    Laned { redelivered: bool },
    /// In the pool's shared queue, or in its ring as a claimable frame
    /// (`FLAG_CLAIMABLE`): claimed by compare-and-swap.
    Claimable,
}

/// Runs one call (unless it was cancelled, timed out or claimed elsewhere),
/// counts it, and settles it.
pub(crate) fn run_call<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
    ticket: Ticket,
    task: Result<&'static TaskEntry, CallError>,
    input: &[u8],
    met: Met,
) {
    let Some(claim) = claim(cx, ticket, met) else {
        skip(cx, lane);
        return;
    };
    let started = cx.host.timing().then(Instant::now);
    let outcome = match task {
        Ok(entry) => {
            let task_cx = TaskCx::new(cx.host.table(), ticket, cx.number);
            run_task(entry, input, scratch, cx.host.max_payload(), &task_cx)
        }
        Err(e) => Outcome::Failed(e),
    };
    settle(cx, lane, ticket, outcome, claim, started);
}

/// Claims a call this worker met, or returns `None` if it must not run
/// (cancelled, timed out, claimed by another worker, or the pool halted).
/// Either way the call is this worker's current one afterwards: follow a
/// claim with [`settle`], a `None` with [`skip`].
#[inline]
pub(crate) fn claim<H: LaneHost>(cx: &WorkerContext<H>, ticket: Ticket, met: Met) -> Option<Claim> {
    let table = cx.host.table();
    let Met::Laned { redelivered } = met else {
        if !table.claim_run(ticket) {
            return None;
        }
        cx.status.begin(ticket);
        if halted(cx, ticket) {
            table.abandon_run(ticket);
            return None;
        }
        return Some(Claim::Cas);
    };
    if !table.holds(ticket) {
        return None;
    }
    cx.status.begin(ticket);
    let shared_claim = redelivered || cx.status.is_retired();
    if halted(cx, ticket) {
        // Ends the lane's claim (the call is EARLY by now).
        if shared_claim {
            table.claim_laned(ticket);
        } else {
            table.skip_laned(ticket);
        }
        return None;
    }
    let claim = if shared_claim {
        table.claim_laned(ticket).then_some(Claim::LaneCas)?
    } else if table.settled_early(ticket) {
        table.skip_laned(ticket);
        return None;
    } else {
        Claim::Lane
    };
    cx.status.decide_to_run(ticket);
    Some(claim)
}

/// Whether `shutdown_now` has begun (read after [`WorkerStatus::begin`]'s
/// fence, the light half of the pair whose heavy half follows the pool's
/// halt flag): then nothing starts any more, and the call is settled with
/// `Closed` here, because the settler may not have it (a laned call's frame
/// may be consumed already, a queued call is off the queue). Whichever party
/// claims it first gives the outcome; the caller still ends its runner's
/// claim.
///
/// [`WorkerStatus::begin`]: super::super::status::WorkerStatus::begin
#[inline]
fn halted<H: LaneHost>(cx: &WorkerContext<H>, ticket: Ticket) -> bool {
    if !cx.host.is_halted() {
        return false;
    }
    cx.host
        .table()
        .settle_early(ticket, CallError::Closed, false, None);
    true
}

/// Finishes a call [`claim`] refused: the worker is idle again and the lane
/// counts the call done.
#[inline]
pub(crate) fn skip<H: LaneHost>(cx: &WorkerContext<H>, lane: &ThreadLane) {
    cx.status.stop();
    lane.count_completed(&cx.status);
}

/// Delivers the `outcome` of call `ticket`, which this worker claimed with
/// `claim` (and began running at `started`, if calls are timed), counts it,
/// and leaves the worker idle.
#[inline]
pub(crate) fn settle<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    ticket: Ticket,
    outcome: Outcome,
    claim: Claim,
    started: Option<Instant>,
) {
    let table = cx.host.table();
    if let Some(started) = started {
        lane.record_timing(table, ticket, started);
    }
    // Counted before settling: a caller that sees its result then also sees the
    // lane as no longer busy with it (balancers rely on that) and the stats
    // with it (taken back if the call turned out to be settled early).
    lane.count_completed(&cx.status);
    let kind = outcome.error().map(FailureKind::of);
    lane.count_outcome(cx.host.counters(), &cx.status, kind, false);
    if !table.finish(ticket, outcome, claim) {
        lane.count_outcome(cx.host.counters(), &cx.status, kind, true);
    }
    // Idle only after finishing: an early settler that sees this worker past
    // the call then also sees the RESULT it set.
    cx.status.stop();
}

/// Call `ticket`, claimed with `claim`, goes on waiting without running (an
/// async task's future, an engine's promise): its state says it started,
/// its lane lists it (for `shutdown_now`), and the worker is idle again.
/// Returns the claim to settle it with ([`settle_waiting`]).
pub(crate) fn begin_waiting<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    ticket: Ticket,
    claim: Claim,
) -> Claim {
    let claim = cx.host.table().mark_waiting(ticket, claim);
    lane.wait_began(ticket.call_id());
    cx.status.stop();
    claim
}

/// [`settle`] for a call that waited ([`begin_waiting`]).
pub(crate) fn settle_waiting<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    ticket: Ticket,
    outcome: Outcome,
    claim: Claim,
    started: Option<Instant>,
) {
    lane.wait_ended(ticket.call_id());
    settle(cx, lane, ticket, outcome, claim, started);
}

/// Fails with `WorkerLost` the waiting calls a worker leaves behind (it
/// unwinds, or leaves with calls it cannot finish). `settle` leaves the
/// worker idle, but the call it was running, if any, stays its current
/// one: the death watch must still find it (or a frame still in the ring
/// would be run a second time by the lane's next worker).
pub(crate) fn lose_waiting<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    calls: impl IntoIterator<Item = (Ticket, Claim, Option<Instant>)>,
) {
    let running = cx.status.current();
    for (ticket, claim, started) in calls {
        let outcome = Outcome::Failed(CallError::WorkerLost);
        settle_waiting(cx, lane, ticket, outcome, claim, started);
    }
    if let Some(t) = running {
        cx.status.begin(t);
    }
}
