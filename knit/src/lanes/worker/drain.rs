//! A worker thread's loop: drains its lane's requests (or the shared queue) and runs each call.

use std::sync::atomic::Ordering;
use std::time::Duration;

use knit_transport::{TransportError, WorkerEnd};

use super::super::flags::{FLAG_CLAIMABLE, FLAG_ENCODE_FAILED, FLAG_REDELIVERED};
use super::super::host::LaneHost;
use super::super::queue::SharedQueue;
use super::super::thread::ThreadLane;
use super::context::WorkerContext;
use super::here;
use super::run::{run_call, Met};
use crate::error::{CallError, PayloadError};
use crate::table::Ticket;

/// How many requests a worker takes per drain (their ring space is released together).
const DRAIN_BATCH: usize = 32;

/// Runs worker `cx` on its lane's worker end until the lane closes (or,
/// under `Balancer::Shared`, until the pool's queue is finished).
pub(crate) fn worker_loop<H: LaneHost>(mut end: WorkerEnd, cx: WorkerContext<H>) {
    // However the loop ends (unwinding included), the thread stops being
    // this pool's worker before the context that keeps the pool alive goes.
    // SAFETY: `cx` holds the host and the status (both behind `Arc`s, so
    // they do not move); a parameter, it drops after every local of this
    // function, `_here` included.
    let _here = unsafe { here::enter(&*cx.host, cx.index, cx.number, &cx.status) };
    let watch = DeathWatch { cx: &cx };
    // Reused for every result, so small results cost no allocation.
    let mut scratch = Vec::new();
    let lane = cx.host.lane(cx.index);
    if let Some(queue) = cx.host.queue() {
        serve_queue(&cx, lane, &mut scratch, queue, cx.host.idle_spin());
        std::mem::forget(watch);
        return;
    }
    loop {
        let drained = end.requests.drain(DRAIN_BATCH, |frame| {
            let env = frame.envelope();
            let task = if env.flags & FLAG_ENCODE_FAILED != 0 {
                Err(CallError::Payload(PayloadError::Encode(
                    "the argument's Serialize failed (or panicked) while writing it".into(),
                )))
            } else {
                cx.host
                    .registry()
                    .get(env.task_id)
                    .ok_or_else(|| CallError::UnknownTask(format!("id {:#018x}", env.task_id)))
            };
            let ticket = Ticket::from_call_id(env.call_id);
            let met = if env.flags & FLAG_CLAIMABLE != 0 {
                Met::Claimable
            } else {
                Met::Laned {
                    redelivered: env.flags & FLAG_REDELIVERED != 0,
                }
            };
            run_call(&cx, lane, &mut scratch, ticket, task, frame.payload(), met);
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

/// The loop of a worker under `Balancer::Shared`: claim the next call from the
/// pool's queue, run it; sleep when there is none; leave once the pool closed
/// and the queue is empty, or once this worker was replaced.
fn serve_queue<H: LaneHost>(
    cx: &WorkerContext<H>,
    lane: &ThreadLane,
    scratch: &mut Vec<u8>,
    queue: &SharedQueue,
    spin: Duration,
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

/// Runs when a worker thread unwinds past its loop (a panic no `catch_unwind`
/// stopped, such as a panic payload whose `Drop` panics): the call it was
/// running fails with `WorkerLost`, and the lane gets a new worker, which takes
/// over the calls still queued.
struct DeathWatch<'a, H: LaneHost> {
    cx: &'a WorkerContext<H>,
}

impl<H: LaneHost> Drop for DeathWatch<'_, H> {
    fn drop(&mut self) {
        let cx = self.cx;
        if let Some(ticket) = cx.status.current() {
            cx.host.runner_lost(ticket);
        }
        cx.host.replace_dead_worker(cx.index, cx.generation);
    }
}
