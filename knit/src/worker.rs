//! A worker thread: drains its lane's requests, runs each task, settles its call.

use std::sync::Arc;
use std::time::Instant;

use knit_transport::{Frame, TransportError, WorkerEnd};

use crate::cx::TaskCx;
use crate::error::{CallError, PayloadError};
use crate::lane::{ThreadLane, WorkerStatus};
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
    loop {
        match end
            .requests
            .drain(DRAIN_BATCH, |frame| handle(&cx, lane, &mut scratch, frame))
        {
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

fn handle(cx: &WorkerContext, lane: &ThreadLane, scratch: &mut Vec<u8>, frame: Frame<'_>) {
    let env = frame.envelope();
    let ticket = Ticket::from_call_id(env.call_id);
    let table = &cx.shared.table;
    // A call cancelled, timed out or claimed elsewhere is skipped: it never runs
    // here.
    if !table.claim_run(ticket) {
        lane.count_completed(&cx.status);
        return;
    }
    cx.status.start(ticket);
    let started = cx.shared.timing.then(Instant::now);
    let outcome = if env.flags & FLAG_ENCODE_FAILED != 0 {
        Outcome::Failed(CallError::Payload(PayloadError::Encode(
            "the argument's Serialize impl failed while writing".into(),
        )))
    } else {
        match cx.shared.registry.get(env.task_id) {
            Some(entry) => {
                let task_cx = TaskCx::new(table, ticket, cx.number);
                run_task(
                    entry,
                    frame.payload(),
                    scratch,
                    cx.shared.max_payload,
                    &task_cx,
                )
            }
            None => Outcome::Failed(CallError::UnknownTask(format!("id {:#018x}", env.task_id))),
        }
    };
    if let Some(started) = started {
        lane.record_timing(&cx.shared, ticket, started);
    }
    // Idle before finishing: the watchdog reads a call's deadline only while
    // its slot cannot be recycled.
    cx.status.stop();
    // Counted before settling: a caller that sees its result then also sees the
    // lane as no longer busy with it (balancers rely on that).
    lane.count_completed(&cx.status);
    // Counted before settling too (and taken back if the call turned out to
    // be settled early), so stats read after a result include it.
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
