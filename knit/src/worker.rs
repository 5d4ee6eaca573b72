//! A worker thread: drains its lane's requests, runs each task, settles its call.

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
use crate::table::{Outcome, Ticket};

/// Request flag: the caller's encoder failed after the size was reserved.
pub(crate) const FLAG_ENCODE_FAILED: u32 = 1;

/// How many requests a worker takes per drain (their ring space is released together).
const DRAIN_BATCH: usize = 32;

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
    let watch = DeathWatch { cx: &cx };
    // Reused for every result, so small results cost no allocation.
    let mut scratch = Vec::new();
    let lane = &cx.shared.lanes[cx.index];
    if let Some(queue) = &cx.shared.queue {
        serve_queue(&cx, lane, &mut scratch, queue, cx.shared.lane_config.spin);
        std::mem::forget(watch);
        return;
    }
    loop {
        let drained = end.requests.drain(DRAIN_BATCH, |frame| {
            let env = frame.envelope();
            let task = if env.flags & FLAG_ENCODE_FAILED != 0 {
                Err(CallError::Payload(PayloadError::Encode(
                    "the argument's Serialize impl failed while writing".into(),
                )))
            } else {
                cx.shared
                    .registry
                    .get(env.task_id)
                    .ok_or_else(|| CallError::UnknownTask(format!("id {:#018x}", env.task_id)))
            };
            let ticket = Ticket::from_call_id(env.call_id);
            run_call(&cx, lane, &mut scratch, ticket, task, frame.payload());
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
                eprintln!("knit: worker lane stopped: {e}");
                break;
            }
        }
    }
    std::mem::forget(watch);
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
    let closed = || cx.shared.closed.load(std::sync::atomic::Ordering::Acquire);
    while !cx.status.retired.load(std::sync::atomic::Ordering::Relaxed) {
        match queue.pop() {
            Some(job) => {
                run_call(cx, lane, scratch, job.ticket, Ok(job.entry), &job.input);
            }
            None if closed() => return,
            None => queue.wait(spin, closed),
        }
    }
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
) {
    let table = &cx.shared.table;
    if !table.claim_run(ticket) {
        lane.count_completed(&cx.status);
        return;
    }
    cx.status.start(ticket);
    let started = cx.shared.timing.then(Instant::now);
    let outcome = match task {
        Ok(entry) => {
            let task_cx = TaskCx::new(table, ticket, cx.number);
            run_task(entry, input, scratch, cx.shared.max_payload, &task_cx)
        }
        Err(e) => Outcome::Failed(e),
    };
    if let Some(started) = started {
        lane.record_timing(&cx.shared, ticket, started);
    }
    // Idle before finishing: the watchdog reads a call's deadline only while
    // its slot cannot be recycled.
    cx.status.stop();
    // Counted before settling: a caller that sees its result then also sees the
    // lane as no longer busy with it (balancers rely on that) and the stats
    // with it (taken back if the call turned out to be settled early).
    lane.count_completed(&cx.status);
    let kind = outcome.error().map(FailureKind::of);
    lane.count_outcome(&cx.shared, &cx.status, kind, false);
    if !table.finish(ticket, outcome) {
        lane.count_outcome(&cx.shared, &cx.status, kind, true);
    }
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
            let table = &cx.shared.table;
            table.settle_early(ticket, CallError::WorkerLost, true);
            table.abandon_run(ticket);
        }
        cx.shared
            .replace_lane(cx.index, cx.generation, LaneCause::WorkerDied);
    }
}
