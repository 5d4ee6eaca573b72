//! A worker with a JS engine: its loop is an event loop (the ring, promise jobs, timers) that still parks when idle.
//!
//! Rust calls run as on any worker. A JS call is claimed like any call, then
//! begun in the engine: it settles at once, or it waits on a promise and
//! its claim is kept until a later turn settles it. Between drains the loop
//! runs the engine's turn (due timers, then queued promise jobs), delivers
//! the calls that settled, and forgets pending calls whose caller already
//! has an outcome (timed out, cancelled). With nothing to do it parks until
//! the next timer is due, the ring has a request, or (while calls are
//! pending) [`SWEEP_EVERY`] passes, so that a pending call settled early is
//! let go of soon even with no timer set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use knit_transport::{TransportError, WorkerEnd};

use crate::error::CallError;
use crate::js::host::{Begun, JsEngine};
use crate::js::targets::is_js;
use crate::lane::ThreadLane;
use crate::table::{Claim, Outcome, Ticket};
use crate::worker::{
    claim, settle, Met, WorkerContext, FLAG_CLAIMABLE, FLAG_ENCODE_FAILED, FLAG_REDELIVERED,
};

/// How often a worker with pending JS calls looks for ones settled early.
const SWEEP_EVERY: Duration = Duration::from_millis(20);

/// The claims of this worker's JS calls that wait on a promise. Dropped by
/// a worker that unwinds: every call in it fails with `WorkerLost` then,
/// instead of waiting for ever.
pub(crate) struct Pending<'a> {
    cx: &'a WorkerContext,
    lane: &'a ThreadLane,
    claims: HashMap<u64, (Claim, Option<Instant>)>,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(cx: &'a WorkerContext, lane: &'a ThreadLane) -> Self {
        Pending {
            cx,
            lane,
            claims: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }

    /// Delivers `outcome` for pending call `call`.
    fn settle(&mut self, call: u64, outcome: Outcome) {
        if let Some((claim, started)) = self.claims.remove(&call) {
            let ticket = Ticket::from_call_id(call);
            settle(self.cx, self.lane, ticket, outcome, claim, started);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        for (call, (claim, started)) in std::mem::take(&mut self.claims) {
            let outcome = Outcome::Failed(CallError::WorkerLost);
            settle(
                self.cx,
                self.lane,
                Ticket::from_call_id(call),
                outcome,
                claim,
                started,
            );
        }
    }
}

/// Begins JS call `ticket` (met as `met`) in `engine`, or settles it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_js_call(
    cx: &WorkerContext,
    lane: &ThreadLane,
    engine: Option<&mut JsEngine>,
    pending: &mut Pending<'_>,
    ticket: Ticket,
    task_id: u64,
    input: &[u8],
    met: Met,
) {
    let Some(claim) = claim(cx, ticket, met) else {
        cx.status.stop();
        lane.count_completed(&cx.status);
        return;
    };
    let started = cx.shared.timing.then(Instant::now);
    let Some(engine) = engine else {
        let e = CallError::UnknownTask(format!(
            "JS target {task_id:#018x}: this pool has no JS engine (PoolOptions::js is None, or the worker's engine failed to start)"
        ));
        settle(cx, lane, ticket, Outcome::Failed(e), claim, started);
        return;
    };
    match engine.begin(ticket, task_id, input) {
        Begun::Done(outcome) => settle(cx, lane, ticket, outcome, claim, started),
        Begun::Pending => {
            pending.claims.insert(ticket.call_id(), (claim, started));
            cx.status.stop();
        }
    }
}

/// One turn of the engine: due timers and promise jobs, then the calls
/// that settled meanwhile (and during the last drain) are delivered, and
/// pending calls whose caller has an outcome already are forgotten.
pub(crate) fn turn(cx: &WorkerContext, engine: &mut JsEngine, pending: &mut Pending<'_>) {
    for (call, outcome) in engine.turn(Instant::now()) {
        pending.settle(call, outcome);
    }
    pending.lane.record_js(engine, false);
    if pending.is_empty() {
        return;
    }
    let gone: Vec<u64> = pending
        .claims
        .keys()
        .copied()
        .filter(|&c| cx.shared.table.is_done(Ticket::from_call_id(c)))
        .collect();
    for call in gone {
        engine.forget(call);
        // Already settled: this only ends the worker's claim.
        pending.settle(call, Outcome::Failed(CallError::Aborted));
    }
}

/// When a worker with `engine` may sleep until, if it has nothing to do
/// now; `Some(None)`: until a request comes.
pub(crate) fn park_until(engine: &JsEngine, pending: &Pending<'_>) -> Option<Option<Instant>> {
    let now = Instant::now();
    if engine.has_work(now) {
        return None;
    }
    let sweep = (!pending.is_empty()).then(|| now + SWEEP_EVERY);
    Some(match (engine.next_deadline(), sweep) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// The loop of a worker with a JS engine on a lane ring.
pub(crate) fn serve_lane(
    end: &mut WorkerEnd,
    cx: &WorkerContext,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
    mut engine: Option<JsEngine>,
) {
    let mut pending = Pending::new(cx, lane);
    let mut closed = false;
    loop {
        if !closed {
            let drained = end.requests.drain(crate::worker::DRAIN_BATCH, |frame| {
                let env = frame.envelope();
                let ticket = Ticket::from_call_id(env.call_id);
                let met = if env.flags & FLAG_CLAIMABLE != 0 {
                    Met::Claimable
                } else {
                    Met::Laned {
                        redelivered: env.flags & FLAG_REDELIVERED != 0,
                    }
                };
                if is_js(env.task_id) && env.flags & FLAG_ENCODE_FAILED == 0 {
                    let task_id = env.task_id;
                    let input = frame.payload();
                    run_js_call(
                        cx,
                        lane,
                        engine.as_mut(),
                        &mut pending,
                        ticket,
                        task_id,
                        input,
                        met,
                    );
                } else {
                    crate::worker::run_frame(cx, lane, scratch, env, frame.payload(), met);
                }
            });
            match drained {
                Ok(_) => {}
                Err(TransportError::Closed) => closed = true,
                Err(e) => {
                    tracing::error!(lane = cx.index, error = %e, "knit: corrupt request ring; the lane's worker stops");
                    closed = true;
                }
            }
        }
        let Some(engine) = engine.as_mut() else {
            if closed {
                return;
            }
            end.requests.wait(None);
            continue;
        };
        turn(cx, engine, &mut pending);
        if closed && pending.is_empty() {
            return;
        }
        let Some(until) = park_until(engine, &pending) else {
            continue;
        };
        lane.record_js(engine, true);
        if !closed {
            end.requests.wait(until);
            continue;
        }
        // Closed: the pending calls may still settle on a timer; once no
        // timer is left, nothing can settle them any more, and they end.
        match engine.next_deadline() {
            Some(at) => {
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
            }
            None => {
                let calls: Vec<u64> = pending.claims.keys().copied().collect();
                for call in calls {
                    engine.forget(call);
                    pending.settle(call, Outcome::Failed(CallError::Closed));
                }
                return;
            }
        }
    }
}
