//! A worker thread: drains its lane's requests, runs each task, settles its call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use knit_transport::{Frame, TransportError, WorkerEnd};

use crate::error::{CallError, PayloadError};
use crate::registry::Registry;
use crate::run::run_task;
use crate::slot::CallSlot;

/// Request flag: the caller's encoder failed after the size was reserved.
pub(crate) const FLAG_ENCODE_FAILED: u32 = 1;

/// How many requests a worker takes per drain (their ring space is released together).
const DRAIN_BATCH: usize = 32;

pub(crate) struct WorkerContext {
    pub registry: Arc<Registry>,
    pub max_payload: usize,
    /// Calls this lane finished (only this worker writes it).
    pub completed: Arc<CachePadded<AtomicU64>>,
}

pub(crate) fn worker_loop(mut end: WorkerEnd, cx: WorkerContext) {
    loop {
        match end.requests.drain(DRAIN_BATCH, |frame| handle(&cx, frame)) {
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

fn handle(cx: &WorkerContext, frame: Frame<'_>) {
    let env = frame.envelope();
    // SAFETY: in-process lanes carry, as the call id, a pointer made by
    // `Arc::into_raw` on the caller's side, which transferred one strong
    // reference to this request; each request is consumed exactly once.
    let slot = unsafe { Arc::from_raw(env.call_id as usize as *const CallSlot) };
    let outcome = if env.flags & FLAG_ENCODE_FAILED != 0 {
        Err(CallError::Payload(PayloadError::Encode(
            "the argument's Serialize impl failed while writing".into(),
        )))
    } else {
        match cx.registry.get(env.task_id) {
            Some(entry) => run_task(entry, frame.payload(), cx.max_payload),
            None => Err(CallError::UnknownTask(format!("id {:#018x}", env.task_id))),
        }
    };
    // Count before settling: a caller that sees its result then also sees the
    // lane as no longer busy with it (balancers rely on that).
    let done = cx.completed.load(Ordering::Relaxed) + 1;
    cx.completed.store(done, Ordering::Release);
    slot.settle(outcome);
}
