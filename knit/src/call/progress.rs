//! What a call does before its caller blocks or its future waits: the inline
//! lane's calls are run (or, for a future, handed to a worker lane, since an
//! async caller must not block on a task), and on one of the pool's own
//! workers a call the worker made is run in place, so that a task waiting
//! for a task never blocks its lane. (That is the one case where polling a
//! `Call` runs a task: on a worker of the call's own pool, where nothing
//! else could run it while the worker waits.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use serde::de::DeserializeOwned;

use super::{Call, State, Via};
use crate::claimable::WhenFull;
use crate::error::CallError;
use crate::lanes::{on_this_thread, run_claimable};

impl<T: DeserializeOwned> Call<T> {
    /// Before a blocking wait (until `until`, if given).
    pub(super) fn before_blocking(&mut self, until: Option<Instant>) {
        match &self.state {
            State::InFlight {
                ticket,
                pool,
                via: Via::Inline,
                ..
            } => {
                // SAFETY: an `InFlight` state holds its slot (see `held`).
                unsafe { pool.get() }.run_inline_until(*ticket, until);
            }
            _ => self.progress_on_worker(true),
        }
    }

    /// Before a poll that may return `Pending`; false: an inline call found
    /// every worker lane full and is still queued inline (poll again soon).
    fn before_polling(&mut self) -> bool {
        match &mut self.state {
            State::InFlight {
                ticket,
                pool,
                via: via @ Via::Inline,
                ..
            } => {
                // SAFETY: an `InFlight` state holds its slot (see `held`).
                let moved = unsafe { pool.get() }.forward_inline(*ticket, WhenFull::GiveUp);
                if moved {
                    *via = Via::Lane;
                }
                moved
            }
            _ => {
                self.progress_on_worker(false);
                true
            }
        }
    }

    /// On a worker of the call's own pool, about to wait for it: a call this
    /// worker made is run here unless someone has begun to run it; a laned
    /// call still queued on this very worker's lane can never run while its
    /// worker waits (`blocking`), so it fails at once with
    /// `CallError::WouldDeadlock`. A future polling it (an async task on
    /// the worker's loop) is no deadlock: the loop runs the call meanwhile.
    fn progress_on_worker(&self, blocking: bool) {
        let State::InFlight {
            ticket,
            pool,
            entry,
            via,
        } = &self.state
        else {
            return;
        };
        // SAFETY: an `InFlight` state holds its slot (see `held`).
        let shared = unsafe { pool.get() };
        let Some(here) = on_this_thread(shared) else {
            return;
        };
        if shared.table.is_done(*ticket) {
            return;
        }
        match via {
            Via::Nested(input) => {
                run_claimable(shared, *ticket, entry, input, here.number, || {});
            }
            Via::Lane
                if blocking
                    && !here.retired
                    && shared.table.queued_on_lane(*ticket) == Some(here.index as u32) =>
            {
                shared.settle_early(*ticket, CallError::WouldDeadlock);
            }
            _ => {}
        }
    }
}

impl<T: DeserializeOwned> Future for Call<T> {
    type Output = Result<T, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.state, State::Deferred { .. }) && !this.deferred_settled() {
            if this.admit(|a| a.poll_acquire(cx.waker())) {
                this.send_deferred();
            } else {
                if let Some(handles) = this.deferred_cancel.get() {
                    handles.wake_on_cancel(cx.waker());
                    // Cancelled between the look above and leaving the waker.
                    if handles.cancelled() {
                        cx.waker().wake_by_ref();
                    }
                }
                return Poll::Pending;
            }
        }
        let moved = this.before_polling();
        if let Some((ticket, shared)) = this.held() {
            if !shared.table.is_done(ticket) && shared.table.register(ticket, cx.waker()) {
                if !moved {
                    // Backpressure: try again on the next poll.
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(this.take_outcome())
    }
}
