//! A lane worker's loop as an event loop: the ring, async tasks' futures, and an engine's pending calls and timers; it still parks when idle.
//!
//! A plain call runs to its end as it is met. An async task's call and an
//! engine's call may instead stay pending: the call keeps its claim, and
//! the worker goes on with its ring. Between drains the loop polls the
//! futures whose wakers fired, runs the engine's turn (due timers, queued
//! jobs), delivers what settled, and lets go of pending calls whose caller
//! already has an outcome (timed out, cancelled). With nothing to do it
//! parks until the ring has a request, a waker fires, the engine's next
//! timer is due, or (while calls are pending) [`SWEEP_EVERY`] passes, so a
//! pending call settled early is let go of soon even with no timer set.
//! With nothing pending and no engine, that is the plain loop of old: drain,
//! park until a request comes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use knit_transport::{TransportError, WorkerEnd};

use super::super::engine::{Begun, Engine};
use super::super::flags::{FLAG_CLAIMABLE, FLAG_ENCODE_FAILED, FLAG_REDELIVERED};
use super::super::host::LaneHost;
use super::super::thread::ThreadLane;
use super::asyncs::AsyncTasks;
use super::context::WorkerContext;
use super::run::{begin_waiting, claim, lose_waiting, run_call, settle, settle_waiting, skip, Met};
use crate::error::{CallError, PayloadError};
use crate::table::{Claim, Outcome, Ticket};

/// How many requests a worker takes per drain (their ring space is released together).
pub(super) const DRAIN_BATCH: usize = 32;

/// How often a worker with pending calls looks for ones settled early.
const SWEEP_EVERY: Duration = Duration::from_millis(20);

/// How long a closed worker with async tasks still pending naps between
/// looks (its ring cannot wake it any more).
const CLOSED_NAP: Duration = Duration::from_millis(5);

/// The claims of the engine's calls that wait. Dropped by a worker that
/// unwinds: every call in it fails with `WorkerLost` then, instead of
/// waiting for ever.
struct Pending<'a, H: LaneHost> {
    cx: &'a WorkerContext<H>,
    lane: &'a ThreadLane,
    claims: HashMap<u64, (Claim, Option<Instant>)>,
}

impl<H: LaneHost> Pending<'_, H> {
    /// Delivers `outcome` for pending call `call`.
    fn settle(&mut self, call: u64, outcome: Outcome) {
        if let Some((claim, started)) = self.claims.remove(&call) {
            let ticket = Ticket::from_call_id(call);
            settle_waiting(self.cx, self.lane, ticket, outcome, claim, started);
        }
    }

    /// Ends every pending call for which `end` holds, in `engine` and here.
    fn end_where(
        &mut self,
        engine: &mut H::Engine,
        end: impl Fn(u64) -> bool,
        error: impl Fn() -> CallError,
    ) {
        let calls: Vec<u64> = self.claims.keys().copied().filter(|&c| end(c)).collect();
        for call in calls {
            engine.forget(call);
            self.settle(call, Outcome::Failed(error()));
        }
    }
}

impl<H: LaneHost> Drop for Pending<'_, H> {
    fn drop(&mut self) {
        let calls = std::mem::take(&mut self.claims);
        let calls = calls
            .into_iter()
            .map(|(call, (claim, started))| (Ticket::from_call_id(call), claim, started));
        lose_waiting(self.cx, self.lane, calls);
    }
}

/// What a worker keeps across its loop's turns.
struct Worker<'a, H: LaneHost> {
    cx: &'a WorkerContext<H>,
    lane: &'a ThreadLane,
    engine: Option<H::Engine>,
    pending: Pending<'a, H>,
    tasks: AsyncTasks<'a, H>,
}

impl<H: LaneHost> Worker<'_, H> {
    /// Runs (or begins) one call met in the ring or the shared queue.
    #[inline]
    fn run(
        &mut self,
        scratch: &mut Vec<u8>,
        ticket: Ticket,
        task_id: u64,
        encode_failed: bool,
        input: &[u8],
        met: Met,
    ) {
        let (cx, lane) = (self.cx, self.lane);
        if encode_failed {
            let e = CallError::Payload(PayloadError::Encode(
                "the argument's Serialize failed (or panicked) while writing it".into(),
            ));
            return run_call(cx, lane, scratch, ticket, Err(e), input, met);
        }
        if H::Engine::serves(task_id) {
            let engine = self.engine.as_mut();
            return begin_in_engine(
                cx,
                lane,
                engine,
                &mut self.pending,
                ticket,
                task_id,
                input,
                met,
            );
        }
        let Some(entry) = cx.host.registry().get(task_id) else {
            let e = CallError::UnknownTask(format!("id {task_id:#018x}"));
            return run_call(cx, lane, scratch, ticket, Err(e), input, met);
        };
        let Some(run) = entry.run_async else {
            return run_call(cx, lane, scratch, ticket, Ok(entry), input, met);
        };
        let Some(claim) = claim(cx, ticket, met) else {
            return skip(cx, lane);
        };
        let started = cx.host.timing().then(Instant::now);
        let tasks = &mut self.tasks;
        cx.host
            .enter(|| tasks.start(run, ticket, input, claim, started));
    }

    fn idle(&self) -> bool {
        self.pending.claims.is_empty() && self.tasks.is_empty()
    }

    /// Everything between drains: `shutdown_now`'s halt, woken futures, the
    /// engine's turn, calls settled early.
    fn turn(&mut self) {
        let cx = self.cx;
        if cx.host.is_halted() {
            // `shutdown_now`: nothing pending here goes on.
            self.tasks.sweep(|_| true);
            if let Some(engine) = self.engine.as_mut() {
                self.pending
                    .end_where(engine, |_| true, || CallError::Closed);
            }
        }
        if !self.tasks.is_empty() || self.tasks.woken() {
            let tasks = &mut self.tasks;
            cx.host.enter(|| tasks.poll_woken());
        }
        if let Some(engine) = self.engine.as_mut() {
            for (call, outcome) in engine.turn() {
                self.pending.settle(call, outcome);
            }
            if !self.pending.claims.is_empty() {
                let table = cx.host.table();
                self.pending.end_where(
                    engine,
                    |c| table.is_done(Ticket::from_call_id(c)),
                    || CallError::Aborted,
                );
            }
            engine.record(self.lane, false);
        }
    }

    /// Whether the worker has work now (a waker fired, the engine is due).
    fn busy(&self) -> bool {
        self.tasks.woken() || self.engine.as_ref().is_some_and(|e| e.has_work())
    }

    /// How long the worker may park: until the engine's next timer, or
    /// (with calls pending) the next sweep; `None`: until woken.
    fn park_until(&self) -> Option<Instant> {
        if let Some(engine) = &self.engine {
            engine.record(self.lane, true);
        }
        let timer = self.engine.as_ref().and_then(|e| e.next_deadline());
        let sweep = (!self.idle()).then(|| Instant::now() + SWEEP_EVERY);
        match (timer, sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Once the worker's lane is closed and drained: waits out what is
    /// pending (a timer or a waker may still settle it; engine calls with
    /// no timer left never will, and end). Returns once nothing is.
    fn finish_pending(&mut self) {
        loop {
            self.turn();
            if self.idle() {
                return;
            }
            let timer = self.engine.as_ref().and_then(|e| e.next_deadline());
            if let Some(engine) = self.engine.as_mut() {
                // A global timer (a bootstrap's `setInterval`) keeps
                // nothing alive: only one a pending call set may settle it.
                if timer.is_none() || !engine.pending_may_settle() {
                    self.pending
                        .end_where(engine, |_| true, || CallError::Closed);
                }
            }
            if self.idle() {
                return;
            }
            let now = Instant::now();
            let nap = timer.map_or(CLOSED_NAP, |at| at.saturating_duration_since(now));
            if !self.busy() {
                std::thread::sleep(nap.min(SWEEP_EVERY));
            }
            self.tasks.sweep(|_| false);
        }
    }
}

/// The loop of worker `cx`: its lane's ring, and under `Balancer::Shared`
/// the pool's queue too (the ring then carries only calls meant for this
/// worker, such as a JS session's). Returns once the lane (or the queue) is
/// closed and drained and nothing is pending, or once the worker was
/// replaced under `Balancer::Shared`.
pub(super) fn serve<H: LaneHost>(
    end: &mut WorkerEnd,
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
) {
    let queue = cx.host.queue();
    let wake: Box<dyn Fn() + Send + Sync> = match queue {
        Some(_) => {
            let host = cx.host.clone();
            Box::new(move || {
                if let Some(q) = host.queue() {
                    q.nudge();
                }
            })
        }
        None => {
            let region = end.requests.region().clone();
            Box::new(move || region.wake_consumer())
        }
    };
    let mut w = Worker {
        cx,
        lane,
        engine: cx.host.start_engine(cx.number),
        pending: Pending {
            cx,
            lane,
            claims: HashMap::new(),
        },
        tasks: AsyncTasks::new(cx, lane, wake),
    };
    let mut closed = false;
    loop {
        let mut drained = 0;
        if !closed {
            let result = end.requests.drain(DRAIN_BATCH, |frame| {
                let env = frame.envelope();
                let met = if env.flags & FLAG_CLAIMABLE != 0 {
                    Met::Claimable
                } else {
                    Met::Laned {
                        redelivered: env.flags & FLAG_REDELIVERED != 0,
                    }
                };
                let ticket = Ticket::from_call_id(env.call_id);
                let encode_failed = env.flags & FLAG_ENCODE_FAILED != 0;
                w.run(
                    scratch,
                    ticket,
                    env.task_id,
                    encode_failed,
                    frame.payload(),
                    met,
                );
            });
            match result {
                Ok(n) => drained = n,
                // Under `Balancer::Shared` the queue, not the ring, says
                // when to leave.
                Err(TransportError::Closed) => closed = queue.is_none(),
                Err(e) => {
                    // A corrupt ring cannot be trusted again; the calls in it are lost to
                    // this lane. In-process rings are only written by knit itself, so this
                    // is a bug, reported loudly.
                    tracing::error!(lane = cx.index, error = %e, "knit: corrupt request ring; the lane's worker stops");
                    closed = true;
                }
            }
        }
        if let Some(queue) = queue {
            if cx.status.retired.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            for _ in 0..DRAIN_BATCH {
                let Some(job) = queue.pop() else {
                    break;
                };
                w.run(
                    scratch,
                    job.ticket,
                    job.entry.id,
                    false,
                    &job.input,
                    Met::Claimable,
                );
                drained += 1;
            }
            closed = closed || queue.is_finished();
        }
        w.turn();
        if closed {
            break;
        }
        if drained > 0 || w.busy() {
            continue;
        }
        let until = w.park_until();
        let idle = w.idle();
        let tasks = &w.tasks;
        match queue {
            // The worker's own ring too: a call sent there (a session's) is
            // followed by a nudge, which a look at the ring after reading
            // the queue's sequence cannot miss.
            Some(queue) => queue.wait(cx.host.idle_spin(), until, || {
                tasks.woken() || end.requests.has_pending()
            }),
            None => {
                end.requests.wait_or(until, || tasks.woken());
            }
        }
        if !idle {
            w.tasks.sweep(|_| false);
        }
    }
    w.finish_pending();
}

/// Begins call `ticket` (met as `met`) in `engine`, or settles it.
#[allow(clippy::too_many_arguments)]
fn begin_in_engine<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    engine: Option<&mut H::Engine>,
    pending: &mut Pending<'_, H>,
    ticket: Ticket,
    task_id: u64,
    input: &[u8],
    met: Met,
) {
    let Some(claim) = claim(cx, ticket, met) else {
        skip(cx, lane);
        return;
    };
    let started = cx.host.timing().then(Instant::now);
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
            let claim = begin_waiting(cx, lane, ticket, claim);
            pending.claims.insert(ticket.call_id(), (claim, started));
        }
    }
}
