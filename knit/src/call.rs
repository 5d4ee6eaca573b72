//! `Call<T>`: a call in flight, to wait on or to await.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::CallError;
use crate::pool::Shared;
use crate::slot::{CallSlot, Outcome};

enum State {
    /// Refused before it was sent (closed pool, payload too large, ...).
    Refused(Option<CallError>),
    InFlight {
        slot: Arc<CallSlot>,
        shared: Arc<Shared>,
        /// Whether the call sits in the inline lane (run by whoever waits for it).
        inline: bool,
    },
}

impl State {
    /// A call in the inline lane is run by whoever waits for it: run the lane's
    /// queue up to and including this call before waiting or polling.
    fn run_own_inline(&self) {
        if let State::InFlight {
            slot,
            shared,
            inline: true,
        } = self
        {
            shared.run_inline_until(slot);
        }
    }
}

/// A call in flight. `.wait()` blocks for the result; `.await` gets it without
/// blocking (it is a plain `Future`, usable under any executor). Dropping a
/// `Call` does not cancel it; its result is freed when the task finishes.
///
/// ```
/// #[knit::task]
/// fn double(x: u32) -> u32 { x * 2 }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
/// let call: knit::Call<u32> = pool.call.double(21);
/// assert_eq!(call.wait(), Ok(42));
/// ```
#[must_use = "a Call does nothing visible unless waited on or awaited"]
pub struct Call<T> {
    state: State,
    _result: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Call<T> {
    pub(crate) fn refused(error: CallError) -> Self {
        Call {
            state: State::Refused(Some(error)),
            _result: PhantomData,
        }
    }

    pub(crate) fn in_flight(slot: Arc<CallSlot>, shared: Arc<Shared>, inline: bool) -> Self {
        Call {
            state: State::InFlight {
                slot,
                shared,
                inline,
            },
            _result: PhantomData,
        }
    }

    /// Blocks until the call settles: spins briefly, then sleeps. While waiting,
    /// the thread runs queued inline-lane calls, if the pool has an inline lane.
    pub fn wait(mut self) -> Result<T, CallError> {
        self.state.run_own_inline();
        match &mut self.state {
            State::Refused(e) => Err(e.take().expect("a refused call is waited on once")),
            State::InFlight { slot, shared, .. } => {
                slot.wait(shared.caller_spin, || shared.help_inline());
                decode(slot.take())
            }
        }
    }

    /// Whether the result is already there (`wait` would not block).
    pub fn is_ready(&self) -> bool {
        match &self.state {
            State::Refused(_) => true,
            State::InFlight { slot, .. } => slot.is_done(),
        }
    }
}

fn decode<T: DeserializeOwned>(outcome: Option<Outcome>) -> Result<T, CallError> {
    match outcome.expect("a settled call holds its outcome until taken") {
        Ok(bytes) => codec::decode(&bytes).map_err(CallError::Payload),
        Err(e) => Err(e),
    }
}

impl<T: DeserializeOwned> Future for Call<T> {
    type Output = Result<T, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.state.run_own_inline();
        match &mut this.state {
            State::Refused(e) => Poll::Ready(Err(e.take().expect("Call polled after completion"))),
            State::InFlight { slot, .. } => {
                if slot.is_done() || !slot.register(cx.waker()) {
                    return Poll::Ready(decode(slot.take()));
                }
                Poll::Pending
            }
        }
    }
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Refused(_) => "refused",
            State::InFlight { slot, .. } if slot.is_done() => "settled",
            State::InFlight { .. } => "in flight",
        };
        f.debug_struct("Call").field("state", &state).finish()
    }
}
