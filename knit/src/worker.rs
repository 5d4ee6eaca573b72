//! A worker thread: drains its lane's requests, runs each task, settles its call.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use knit_transport::{TransportError, WorkerEnd};

use crate::cx::TaskCx;
use crate::error::{CallError, PayloadError};
use crate::lane::{ThreadLane, WorkerStatus};
use crate::queue::SharedQueue;
use crate::registry::TaskEntry;
use crate::run::run_task;
use crate::shared::{LaneCause, Shared};
use crate::stats::FailureKind;
use crate::table::{Claim, Outcome, Ticket};

/// Request flag: the caller's encoder failed after the size was reserved.
pub(crate) const FLAG_ENCODE_FAILED: u32 = 1;
/// Request flag: the frame was moved off a replaced lane, so the old worker
/// may meet it too; it is claimed by compare-and-swap.
pub(crate) const FLAG_REDELIVERED: u32 = 1 << 1;

/// Request flag: the call is not laned (see `table`'s module docs): its runner
/// claims it by compare-and-swap, because another thread may run it first
/// (an inline call moved to a worker lane, or a call a worker made, which
/// that worker runs itself if it waits for it first).
pub(crate) const FLAG_CLAIMABLE: u32 = 1 << 2;

thread_local! {
    /// The pool this thread is a worker of (null if none), with its lane's
    /// index and number and the worker's status.
    static WORKER_OF: Cell<Here> = const { Cell::new(NOBODY) };
}

#[derive(Clone, Copy)]
struct Here {
    pool: *const Shared,
    index: usize,
    number: usize,
    status: *const WorkerStatus,
}

/// What [`WORKER_OF`] holds on a thread that is no pool's worker.
const NOBODY: Here = Here {
    pool: std::ptr::null(),
    index: 0,
    number: 0,
    status: std::ptr::null(),
};

/// A worker thread of a pool, as seen from a call of that pool.
pub(crate) struct WorkerHere {
    /// Its lane's index among the worker lanes.
    pub index: usize,
    /// Its lane's number in the balancer's view.
    pub number: usize,
    /// Whether the lane has a new worker (its queue moved there).
    pub retired: bool,
}

/// Clears this thread's [`WORKER_OF`] when dropped.
struct Leaving;

impl Drop for Leaving {
    fn drop(&mut self) {
        WORKER_OF.with(|w| w.set(NOBODY));
    }
}

/// What this thread is to `shared`'s pool, if it is one of its workers.
#[inline]
pub(crate) fn on_this_thread(shared: &Shared) -> Option<WorkerHere> {
    let here = WORKER_OF.with(Cell::get);
    if !std::ptr::eq(here.pool, shared) {
        return None;
    }
    // SAFETY: `status` was set by this thread's worker loop from the status
    // its context holds for as long as the thread runs the loop; the pointer
    // matched this pool, so the loop (which set both) is still running:
    // the pool's state cannot have been freed and reused meanwhile, because
    // the loop holds it.
    let retired = unsafe { &*here.status }.is_retired();
    Some(WorkerHere {
        index: here.index,
        number: here.number,
        retired,
    })
}

/// How many requests a worker takes per drain (their ring space is released together).
pub(crate) const DRAIN_BATCH: usize = 32;

pub(crate) struct WorkerContext {
    pub shared: Arc<Shared>,
    /// Index into the pool's worker lanes.
    pub index: usize,
    /// This lane's number in the balancer's numbering (what `TaskCx` reports).
    pub number: usize,
    pub status: Arc<WorkerStatus>,
    /// Which of the lane's workers this is.
    pub generation: u64,
}

pub(crate) fn worker_loop(mut end: WorkerEnd, cx: WorkerContext) {
    WORKER_OF.with(|w| {
        w.set(Here {
            pool: Arc::as_ptr(&cx.shared),
            index: cx.index,
            number: cx.number,
            status: Arc::as_ptr(&cx.status),
        })
    });
    // However the loop ends (unwinding included), the thread stops being
    // this pool's worker before the context that keeps the pool alive goes.
    let _here = Leaving;
    let watch = DeathWatch { cx: &cx };
    // Reused for every result, so small results cost no allocation.
    let mut scratch = Vec::new();
    let lane = &cx.shared.lanes[cx.index];
    if let Some(queue) = &cx.shared.queue {
        serve_queue(&cx, lane, &mut scratch, queue, cx.shared.lane_config.spin);
        std::mem::forget(watch);
        return;
    }
    #[cfg(feature = "js")]
    if let Some(setup) = &cx.shared.js {
        let engine = setup.start_engine(&cx.shared.table, cx.number);
        crate::worker_js::serve_lane(&mut end, &cx, lane, &mut scratch, engine);
        std::mem::forget(watch);
        return;
    }
    loop {
        let drained = end.requests.drain(DRAIN_BATCH, |frame| {
            let env = frame.envelope();
            let met = if env.flags & FLAG_CLAIMABLE != 0 {
                Met::Claimable
            } else {
                Met::Laned {
                    redelivered: env.flags & FLAG_REDELIVERED != 0,
                }
            };
            run_frame(&cx, lane, &mut scratch, env, frame.payload(), met);
        });
        match drained {
            // Nothing waiting: sleep until there is, or until the lane closes
            // (the next drain then reports `Closed` once the ring is empty).
            Ok(0) => {
                end.requests.wait(None);
            }
            Ok(_) => {}
            Err(TransportError::Closed) => break,
            Err(e) => {
                // A corrupt ring cannot be trusted again; the calls in it are lost to
                // this lane. In-process rings are only written by knit itself, so this
                // is a bug, reported loudly.
                tracing::error!(lane = cx.index, error = %e, "knit: corrupt request ring; the lane's worker stops");
                break;
            }
        }
    }
    std::mem::forget(watch);
}

/// Runs the Rust call of a request frame.
#[inline]
pub(crate) fn run_frame(
    cx: &WorkerContext,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
    env: knit_transport::Envelope,
    input: &[u8],
    met: Met,
) {
    let task = if env.flags & FLAG_ENCODE_FAILED != 0 {
        Err(CallError::Payload(PayloadError::Encode(
            "the argument's Serialize failed (or panicked) while writing it".into(),
        )))
    } else {
        cx.shared
            .registry
            .get(env.task_id)
            .ok_or_else(|| CallError::UnknownTask(format!("id {:#018x}", env.task_id)))
    };
    let ticket = Ticket::from_call_id(env.call_id);
    run_call(cx, lane, scratch, ticket, task, input, met);
}

/// The loop of a worker under `Balancer::Shared`: claim the next call from the
/// pool's queue, run it; sleep when there is none; leave once the pool closed
/// and the queue is empty, or once this worker was replaced.
fn serve_queue(
    cx: &WorkerContext,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
    queue: &SharedQueue,
    spin: std::time::Duration,
) {
    while !cx.status.retired.load(Ordering::Relaxed) {
        match queue.pop() {
            Some(job) => {
                let (ticket, entry) = (job.ticket, Ok(job.entry));
                run_call(cx, lane, scratch, ticket, entry, &job.input, Met::Claimable);
            }
            None if queue.is_finished() => return,
            None => queue.wait(spin),
        }
    }
}

/// Where a worker met a call.
#[derive(Clone, Copy)]
pub(crate) enum Met {
    /// In its lane's ring: the call is laned (see `table`'s module docs).
    Laned { redelivered: bool },
    /// In the pool's shared queue, or in its ring as a claimable frame
    /// (`FLAG_CLAIMABLE`): claimed by compare-and-swap.
    Claimable,
}

/// Claims a call this worker met, or returns `None` if it must not run
/// (cancelled, timed out, claimed by another worker, or the pool halted).
#[inline]
pub(crate) fn claim(cx: &WorkerContext, ticket: Ticket, met: Met) -> Option<Claim> {
    let table = &cx.shared.table;
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
#[inline]
fn halted(cx: &WorkerContext, ticket: Ticket) -> bool {
    if !cx.shared.halted.load(Ordering::Relaxed) {
        return false;
    }
    cx.shared
        .table
        .settle_early(ticket, CallError::Closed, false, None);
    true
}

/// Runs one call (unless it was cancelled, timed out or claimed elsewhere),
/// counts it, and settles it.
fn run_call(
    cx: &WorkerContext,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
    ticket: Ticket,
    task: Result<&'static TaskEntry, CallError>,
    input: &[u8],
    met: Met,
) {
    let table = &cx.shared.table;
    let Some(claim) = claim(cx, ticket, met) else {
        cx.status.stop();
        lane.count_completed(&cx.status);
        return;
    };
    let started = cx.shared.timing.then(Instant::now);
    let outcome = match task {
        Ok(entry) => {
            let task_cx = TaskCx::new(table, ticket, cx.number);
            run_task(entry, input, scratch, cx.shared.max_payload, &task_cx)
        }
        Err(e) => Outcome::Failed(e),
    };
    settle(cx, lane, ticket, outcome, claim, started);
}

/// Delivers the outcome of a call this worker claimed (now, or later for a
/// JS call that waited on a promise), counting it.
#[inline]
pub(crate) fn settle(
    cx: &WorkerContext,
    lane: &ThreadLane,
    ticket: Ticket,
    outcome: Outcome,
    claim: Claim,
    started: Option<Instant>,
) {
    let table = &cx.shared.table;
    if let Some(started) = started {
        lane.record_timing(&cx.shared, ticket, started);
    }
    // Counted before settling: a caller that sees its result then also sees the
    // lane as no longer busy with it (balancers rely on that) and the stats
    // with it (taken back if the call turned out to be settled early).
    lane.count_completed(&cx.status);
    let kind = outcome.error().map(FailureKind::of);
    lane.count_outcome(&cx.shared, &cx.status, kind, false);
    if !table.finish(ticket, outcome, claim) {
        lane.count_outcome(&cx.shared, &cx.status, kind, true);
    }
    // Idle only after finishing: an early settler that sees this worker past
    // the call then also sees the RESULT it set.
    cx.status.stop();
}

/// Runs when a worker thread unwinds past its loop (a panic no `catch_unwind`
/// stopped, such as a panic payload whose `Drop` panics): the call it was
/// running fails with `WorkerLost`, and the lane gets a new worker, which takes
/// over the calls still queued.
struct DeathWatch<'a> {
    cx: &'a WorkerContext,
}

impl Drop for DeathWatch<'_> {
    fn drop(&mut self) {
        let cx = self.cx;
        if let Some(ticket) = cx.status.current() {
            cx.shared.runner_lost(ticket);
        }
        cx.shared
            .replace_lane(cx.index, cx.generation, LaneCause::WorkerDied);
    }
}
