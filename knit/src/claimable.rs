//! Calls that travel on a worker lane without being laned: an inline call
//! moved off the inline lane, and a call made on one of the pool's own
//! workers. Their frames carry `FLAG_CLAIMABLE`, and whoever runs them claims
//! them by compare-and-swap, because another thread may get there first.
//!
//! Sending them never leaves a worker waiting for ring space it is the only
//! one to make: a worker whose calls find every lane full runs them itself.

use std::sync::atomic::Ordering;
use std::time::Duration;

use knit_transport::{Envelope, TransportError};

use crate::error::{CallError, PayloadError};
use crate::lanes::{on_this_thread, run_claimable, InlineJob, FLAG_CLAIMABLE};
use crate::shared::Shared;
use crate::table::Ticket;

/// What to do when every worker lane is full.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Wait for room, as any sender does (a thread that is not a worker).
    Wait,
    /// Give up at once (a worker, or a future that must not block).
    GiveUp,
}

impl Shared {
    /// Moves inline call `ticket`, if it is still queued, to a worker lane:
    /// its `Call` will not run it (it was dropped, or it is polled by an
    /// async caller, which must not block on a task). On a worker thread
    /// that finds every lane full, the call runs here instead; `GiveUp`
    /// leaves it queued on the inline lane (returning false) for the caller
    /// to try again.
    pub(crate) fn forward_inline(&self, ticket: Ticket, when_full: WhenFull) -> bool {
        let Some(inline) = &self.inline else {
            return true;
        };
        let Some(job) = inline.remove(ticket, true) else {
            return true;
        };
        let on_worker = on_this_thread(self);
        let when_full = if on_worker.is_some() {
            WhenFull::GiveUp
        } else {
            when_full
        };
        match self.send_claimable(ticket, job.entry.id, &job.input, false, when_full) {
            Ok(true) => true,
            Ok(false) => match on_worker {
                Some(here) => {
                    run_claimable(self, ticket, job.entry, &job.input, here.number, || {});
                    true
                }
                None => {
                    inline.put_back(job);
                    false
                }
            },
            // The pool is shutting down and its rings are closed, but it
            // still runs what it accepted (unless `shutdown_now` halted it):
            // on this thread, since no worker will take it any more.
            Err(CallError::Closed) if !self.halted.load(Ordering::Relaxed) => {
                run_claimable(self, ticket, job.entry, &job.input, inline.index, || {});
                true
            }
            Err(e) => {
                self.settle_early(ticket, e);
                true
            }
        }
    }

    /// Sends a call made on one of this pool's workers (`job`, holding a
    /// fresh ticket nobody else knows but the watchdog), claimable. When
    /// every lane is full it runs here at once: waiting for room would
    /// wait for this very worker. An error means it was not sent.
    pub(crate) fn send_nested(&self, job: &InlineJob, lane_number: usize) -> Result<(), CallError> {
        if let Some(queue) = &self.queue {
            let copy = InlineJob {
                ticket: job.ticket,
                entry: job.entry,
                input: job.input.clone(),
            };
            return queue.push(copy).map_err(|_| CallError::Closed);
        }
        let sent =
            self.send_claimable(job.ticket, job.entry.id, &job.input, true, WhenFull::GiveUp)?;
        if !sent {
            self.stats.count_run_unsent();
            run_claimable(self, job.ticket, job.entry, &job.input, lane_number, || {});
        }
        Ok(())
    }

    /// Sends call `ticket` of task `task_id` with `input` as a claimable
    /// frame to a worker lane, the least loaded first; `fresh`: a new call
    /// (not one another lane accepted). Ok(false): every lane was full and
    /// `when_full` said not to wait.
    pub(crate) fn send_claimable(
        &self,
        ticket: Ticket,
        task_id: u64,
        input: &[u8],
        fresh: bool,
        when_full: WhenFull,
    ) -> Result<bool, CallError> {
        let env = Envelope {
            call_id: ticket.call_id(),
            task_id,
            flags: FLAG_CLAIMABLE,
        };
        let copy = |dst: &mut [u8], _: &mut Envelope| dst.copy_from_slice(input);
        let mut lanes: Vec<_> = self.lanes.iter().collect();
        lanes.sort_by_key(|l| l.in_flight());
        for lane in lanes {
            let mut sender = lane.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Err(CallError::Closed);
            }
            let sent = match when_full {
                WhenFull::Wait => {
                    let (held, sent) = lane.send_frame(sender, env, input.len(), copy);
                    sender = held;
                    sent
                }
                WhenFull::GiveUp => {
                    sender
                        .producer
                        .send_with(env, input.len(), copy, Some(Duration::ZERO))
                }
            };
            match sent {
                Ok(()) => {
                    if fresh {
                        lane.count_submitted();
                    } else {
                        lane.count_moved_in();
                    }
                    drop(sender);
                    return Ok(true);
                }
                Err(TransportError::Full) => continue,
                Err(e) => return Err(self.send_error(e)),
            }
        }
        Ok(false)
    }

    /// The error of a call whose frame a worker lane refused.
    pub(crate) fn send_error(&self, e: TransportError) -> CallError {
        match e {
            TransportError::TooLarge { len, max } => PayloadError::TooLarge { len, max }.into(),
            // A closed ring in an open pool: the lane's worker died and
            // could not be replaced.
            TransportError::Closed if !self.closed.load(Ordering::Acquire) => CallError::WorkerLost,
            _ => CallError::Closed,
        }
    }
}
