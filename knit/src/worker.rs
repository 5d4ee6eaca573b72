//! A worker thread: drains its lane's requests, runs each task, settles its call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use knit_transport::{Frame, TransportError, WorkerEnd};

use crate::cx::TaskCx;
use crate::error::{CallError, PayloadError};
use crate::registry::Registry;
use crate::run::run_task;
use crate::table::{CallTable, Outcome, Ticket};

/// Request flag: the caller's encoder failed after the size was reserved.
pub(crate) const FLAG_ENCODE_FAILED: u32 = 1;

/// How many requests a worker takes per drain (their ring space is released together).
const DRAIN_BATCH: usize = 32;

pub(crate) struct WorkerContext {
    pub registry: Arc<Registry>,
    pub table: Arc<CallTable>,
    pub max_payload: usize,
    /// This lane's index in the balancer's numbering.
    pub lane: usize,
    /// Calls this lane finished or skipped (only this worker writes it).
    pub completed: Arc<CachePadded<AtomicU64>>,
}

pub(crate) fn worker_loop(mut end: WorkerEnd, cx: WorkerContext) {
    // Reused for every result, so small results cost no allocation.
    let mut scratch = Vec::new();
    loop {
        match end
            .requests
            .drain(DRAIN_BATCH, |frame| handle(&cx, &mut scratch, frame))
        {
            // Nothing waiting: sleep until there is, or until the lane closes
            // (the next drain then reports `Closed` once the ring is empty).
            Ok(0) => {
                end.requests.wait(None);
            }
            Ok(_) => {}
            Err(TransportError::Closed) => return,
            Err(e) => {
                // A corrupt ring cannot be trusted again; the calls in it are lost to
                // this lane. In-process rings are only written by knit itself, so this
                // is a bug, reported loudly.
                eprintln!("knit: worker lane stopped: {e}");
                return;
            }
        }
    }
}

fn handle(cx: &WorkerContext, scratch: &mut Vec<u8>, frame: Frame<'_>) {
    let env = frame.envelope();
    let ticket = Ticket::from_call_id(env.call_id);
    // A call cancelled or timed out while queued is skipped: it never runs.
    if cx.table.claim_run(ticket) {
        let outcome = if env.flags & FLAG_ENCODE_FAILED != 0 {
            Outcome::Failed(CallError::Payload(PayloadError::Encode(
                "the argument's Serialize impl failed while writing".into(),
            )))
        } else {
            match cx.registry.get(env.task_id) {
                Some(entry) => {
                    let task_cx = TaskCx::new(&cx.table, ticket, cx.lane);
                    run_task(entry, frame.payload(), scratch, cx.max_payload, &task_cx)
                }
                None => {
                    Outcome::Failed(CallError::UnknownTask(format!("id {:#018x}", env.task_id)))
                }
            }
        };
        count(&cx.completed);
        cx.table.finish(ticket, outcome);
    } else {
        count(&cx.completed);
    }
}

/// Counts a finished call before settling it: a caller that sees its result
/// then also sees the lane as no longer busy with it (balancers rely on that).
#[inline]
fn count(completed: &AtomicU64) {
    let done = completed.load(Ordering::Relaxed) + 1;
    completed.store(done, Ordering::Release);
}
