//! `Call<T>`: a call in flight, to wait on, await, stop, cancel or time out.

use std::cell::{Cell, OnceCell};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::caller::Caller;
use crate::claimable::WhenFull;
use crate::codec;
use crate::error::{CallError, PayloadError};
use crate::pool_ref::PoolRef;
use crate::registry::TaskEntry;
use crate::shared::Shared;
use crate::table::{Outcome, Ticket};

mod cancel;
mod progress;

use cancel::DeferredCancel;
pub use cancel::{CancelHandle, Cancelled};

/// How a call in flight travels, which decides who may run it.
pub(crate) enum Via {
    /// In a worker lane's ring, run by that lane's worker.
    Lane,
    /// In the inline lane, run by whichever calling thread gets to it.
    Inline,
    /// Made on one of the pool's own workers (a task calling a task), with
    /// its encoded argument kept: it is claimed by compare-and-swap, so a
    /// worker that waits for it runs it itself if nobody has begun to, instead
    /// of blocking its lane while the call may be queued behind it.
    Nested(Box<[u8]>),
}

enum State {
    /// Refused before it was sent (closed pool, payload too large, ...).
    Refused(Option<CallError>),
    /// Holds a slot (and through it, the pool) until the outcome is taken or
    /// the `Call` is dropped.
    InFlight {
        ticket: Ticket,
        pool: PoolRef,
        entry: &'static TaskEntry,
        via: Via,
    },
    /// Waiting for room under `max_queue` with `QueuePolicy::Wait`: sent once
    /// waited on or polled and a place is free.
    Deferred {
        shared: Arc<Shared>,
        entry: &'static TaskEntry,
        input: Vec<u8>,
    },
    /// The outcome was handed out.
    Taken,
}

/// A call in flight. `.wait()` blocks for the result; `.await` gets it without
/// blocking (it is a plain `Future`, usable under any executor).
///
/// Dropping a `Call` does not cancel it: the call still runs, and its slot and
/// result are freed when it finishes (opt in to cancelling with
/// [`Call::cancel_on_drop`]). The one exception is a call still waiting for
/// room under `max_queue` with `QueuePolicy::Wait`: it was never sent, and a
/// dropped one never is.
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
    /// What a timed-out call resolves to (`timeout_or`).
    fallback: Option<T>,
    /// For a deferred call: its budget's end and whether it was asked to
    /// stop, to apply once it is sent.
    pending_deadline: Option<Instant>,
    pending_stop: Cell<bool>,
    /// What cancels a deferred call (made when it is first cancelled or
    /// given a handle): a cancelled one is never sent.
    deferred_cancel: OnceCell<Arc<DeferredCancel>>,
    /// Cancel the call if it is dropped before it settles.
    cancel_on_drop: bool,
    _result: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Call<T> {
    fn with_state(state: State) -> Self {
        Call {
            state,
            fallback: None,
            pending_deadline: None,
            pending_stop: Cell::new(false),
            deferred_cancel: OnceCell::new(),
            cancel_on_drop: false,
            _result: PhantomData,
        }
    }

    pub(crate) fn refused(error: CallError) -> Self {
        Self::with_state(State::Refused(Some(error)))
    }

    pub(crate) fn in_flight(
        ticket: Ticket,
        shared: &Arc<Shared>,
        entry: &'static TaskEntry,
        via: Via,
    ) -> Self {
        Self::with_state(State::InFlight {
            ticket,
            pool: PoolRef::new(shared),
            entry,
            via,
        })
    }

    pub(crate) fn deferred(shared: Arc<Shared>, entry: &'static TaskEntry, input: Vec<u8>) -> Self {
        Self::with_state(State::Deferred {
            shared,
            entry,
            input,
        })
    }

    /// Sends a deferred call whose `max_queue` place was just taken.
    fn send_deferred(&mut self) {
        let State::Deferred {
            shared,
            entry,
            input,
        } = std::mem::replace(&mut self.state, State::Taken)
        else {
            return;
        };
        let handles = self.deferred_cancel.get().cloned();
        if handles.as_ref().is_some_and(|h| !h.sending()) {
            // Cancelled first: it gives its place back and is never sent.
            if let Some(admission) = &shared.table.admission {
                admission.release();
            }
            self.state = State::Refused(Some(shared.stats.refuse(CallError::Aborted)));
            return;
        }
        let caller = Caller {
            shared: shared.clone(),
        };
        let copy = |dst: &mut [u8]| {
            dst.copy_from_slice(&input);
            Ok(())
        };
        self.state = match caller.send_admitted(entry, input.len(), &copy) {
            Ok((ticket, inline)) => {
                if let Some(at) = self.pending_deadline {
                    shared.arm_deadline(ticket, at);
                }
                if self.pending_stop.get() {
                    shared.table.abort(ticket);
                }
                if let Some(handles) = &handles {
                    handles.sent(&shared, ticket);
                }
                let via = if inline { Via::Inline } else { Via::Lane };
                State::InFlight {
                    ticket,
                    pool: PoolRef::new(&shared),
                    entry,
                    via,
                }
            }
            Err(e) => {
                if let Some(handles) = &handles {
                    handles.gone();
                }
                State::Refused(Some(shared.stats.refuse(e)))
            }
        };
    }

    /// Settles a deferred call that will never be sent (cancelled, or its
    /// budget ran out first) with `error`.
    fn drop_deferred(&mut self, error: CallError) {
        if let Some(handles) = self.deferred_cancel.get() {
            handles.gone();
        }
        if let State::Deferred { shared, .. } = &self.state {
            let e = shared.stats.refuse(error);
            self.state = State::Refused(Some(e));
        }
    }

    /// Asks the pool's `max_queue` gate for a place with `how`.
    fn admit(&self, how: impl FnOnce(&crate::admission::Admission) -> bool) -> bool {
        match &self.state {
            State::Deferred { shared, .. } => shared.table.admission.as_ref().is_none_or(how),
            _ => true,
        }
    }

    /// For a deferred call: sleeps for a `max_queue` place until `until`
    /// (if given), giving up early if a cancel handle cancels it meanwhile.
    fn wait_for_room(&self, until: Option<Instant>) -> bool {
        let handles = self.deferred_cancel.get().cloned();
        let cancelled = handles.as_ref().map(|h| move || h.cancelled());
        let give_up = cancelled.as_ref().map(|c| c as &dyn Fn() -> bool);
        self.admit(|a| a.acquire_until(until, give_up))
    }

    /// Whether a deferred call was settled before it got a place.
    fn deferred_settled(&mut self) -> bool {
        if self.deferred_cancel.get().is_some_and(|d| d.cancelled()) {
            self.drop_deferred(CallError::Aborted);
            return true;
        }
        if self.pending_deadline.is_some_and(|d| d <= Instant::now()) {
            self.drop_deferred(CallError::Timeout);
            return true;
        }
        false
    }

    /// Blocks until the call settles: spins briefly, then sleeps. While waiting,
    /// the thread runs queued inline-lane calls, if the pool has an inline lane.
    ///
    /// On one of the pool's own worker threads (a task waiting for a call it
    /// made), the worker runs the call itself if nobody has begun to, so a
    /// task can wait for the tasks it calls without blocking its lane.
    pub fn wait(mut self) -> Result<T, CallError> {
        if matches!(self.state, State::Deferred { .. }) && !self.deferred_settled() {
            let until = self.pending_deadline;
            if self.wait_for_room(until) {
                self.send_deferred();
            } else if !self.deferred_settled() {
                self.drop_deferred(CallError::Timeout);
            }
        }
        self.before_blocking(None);
        if let Some((ticket, shared)) = self.held() {
            shared.table.wait(ticket, shared.caller_spin, None, || {
                shared.help_inline(None)
            });
        }
        self.take_outcome()
    }

    /// Like [`Call::wait`], but gives up after `limit`, handing the call back
    /// (still in flight) if it has not settled by then. With an inline lane,
    /// it starts no queued inline call once `limit` has passed (one it has
    /// started runs to its end: a task cannot be interrupted).
    ///
    /// ```
    /// #[knit::task]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let call = pool.call.nap(200);
    /// let call = call.wait_for(std::time::Duration::from_millis(1)).unwrap_err(); // not yet
    /// assert_eq!(call.wait(), Ok(200));
    /// ```
    pub fn wait_for(mut self, limit: Duration) -> Result<Result<T, CallError>, Self> {
        let until = Instant::now() + limit;
        if matches!(self.state, State::Deferred { .. }) && !self.deferred_settled() {
            let stop = match self.pending_deadline {
                Some(d) if d < until => d,
                _ => until,
            };
            if self.wait_for_room(Some(stop)) {
                self.send_deferred();
            } else if !self.deferred_settled() {
                return Err(self);
            }
        }
        self.before_blocking(Some(until));
        if let Some((ticket, shared)) = self.held() {
            let help = || shared.help_inline(Some(until));
            let settled = shared
                .table
                .wait(ticket, shared.caller_spin, Some(until), help);
            if !settled {
                return Err(self);
            }
        }
        Ok(self.take_outcome())
    }

    /// Whether the result is already there (`wait` would not block).
    pub fn is_ready(&self) -> bool {
        match (self.held(), &self.state) {
            (Some((ticket, shared)), _) => shared.table.is_done(ticket),
            (None, State::Deferred { .. }) => false,
            _ => true,
        }
    }

    /// Gives the call a budget of `budget` from now (which is when it was made,
    /// when chained onto the call): once it runs out, the call settles with
    /// `CallError::Timeout`, the task sees `stop_requested()`, and its late
    /// result is dropped. Time spent queued counts. Overrides a
    /// `#[task(timeout_ms)]` default.
    ///
    /// ```
    /// #[knit::task]
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let r = pool.call.nap(500).timeout(std::time::Duration::from_millis(5)).wait();
    /// assert_eq!(r, Err(knit::CallError::Timeout));
    /// ```
    pub fn timeout(mut self, budget: Duration) -> Self {
        let at = Instant::now() + budget;
        if let Some((ticket, shared)) = self.held() {
            shared.arm_deadline(ticket, at);
        } else if let State::Deferred { .. } = self.state {
            self.pending_deadline = Some(at);
        }
        self
    }

    /// Like [`Call::timeout`], but a timed-out call resolves to `Ok(fallback)`.
    ///
    /// ```
    /// #[knit::task]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let r = pool.call.nap(500).timeout_or(std::time::Duration::from_millis(5), 0).wait();
    /// assert_eq!(r, Ok(0));
    /// ```
    pub fn timeout_or(mut self, budget: Duration, fallback: T) -> Self {
        self.fallback = Some(fallback);
        self.timeout(budget)
    }

    /// This call's id (unique among calls in flight on its pool), if it was sent.
    pub fn id(&self) -> Option<u64> {
        match &self.state {
            State::InFlight { ticket, .. } => Some(ticket.call_id()),
            _ => None,
        }
    }

    /// Hands out the outcome of a settled (or refused) call and frees its slot.
    fn take_outcome(&mut self) -> Result<T, CallError> {
        let outcome = match std::mem::replace(&mut self.state, State::Taken) {
            State::Refused(e) => Err(e.expect("a refused call is taken once")),
            State::InFlight {
                ticket,
                pool,
                entry,
                ..
            } => {
                // SAFETY: the slot is still held: it is released by this
                // `take` (the state was moved out, so nothing uses `pool` after).
                let shared = unsafe { pool.get() };
                let (outcome, released) = shared.table.take(ticket);
                let decoded = decode(outcome, entry);
                if matches!(decoded, Err((_, true))) {
                    // A runner's result (so the runner is done with the slot
                    // and this caller freed it: the state lives until
                    // `released` goes) that the worker counted as completed.
                    shared.stats.count_misread();
                }
                // After the table's last use: this may free the pool.
                drop(released);
                decoded.map_err(|(e, _)| e)
            }
            State::Deferred { .. } => unreachable!("a deferred call is sent before it is taken"),
            State::Taken => panic!("Call polled after it completed"),
        };
        match (outcome, self.fallback.take()) {
            (Err(CallError::Timeout), Some(fallback)) => Ok(fallback),
            (outcome, _) => outcome,
        }
    }
}

impl<T> Call<T> {
    /// The call's ticket and pool, while it holds its slot.
    fn held(&self) -> Option<(Ticket, &Shared)> {
        match &self.state {
            // SAFETY: an `InFlight` state holds its slot: only
            // `take_outcome` (which moves the state out first) and `drop`
            // release it, and the borrow of `self` outlives neither.
            State::InFlight { ticket, pool, .. } => Some((*ticket, unsafe { pool.get() })),
            _ => None,
        }
    }
}

/// A call's value from its outcome; an error says whether it is the
/// caller's own misreading of a result the task did deliver.
fn decode<T: DeserializeOwned>(
    outcome: Outcome,
    entry: &TaskEntry,
) -> Result<T, (CallError, bool)> {
    let bytes = match &outcome {
        Outcome::Small { len, bytes } => &bytes[..*len as usize],
        Outcome::Bytes(bytes) => bytes,
        Outcome::Failed(_) => {
            let Outcome::Failed(e) = outcome else {
                unreachable!()
            };
            return Err((e, false));
        }
    };
    #[cfg(feature = "js")]
    if crate::js::targets::is_js(entry.id) {
        return crate::js::from_wire(bytes).map_err(|e| {
            let why = format!(
                "the result of JS {} as {}: {e}",
                entry.path(),
                std::any::type_name::<T>()
            );
            (CallError::Payload(PayloadError::Decode(why)), true)
        });
    }
    codec::decode(bytes).map_err(|e| {
        let e = match e {
            PayloadError::Decode(why) => PayloadError::Decode(format!(
                "the result of task {} as {}: {why}",
                entry.path(),
                std::any::type_name::<T>()
            )),
            other => other,
        };
        (CallError::Payload(e), true)
    })
}

// `Call` never pins its fields (it only moves them out), so it is `Unpin`
// whatever `T` is.
impl<T> Unpin for Call<T> {}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if let (Some(d), State::Deferred { .. }) = (self.deferred_cancel.get(), &self.state) {
            d.gone();
        }
        if let State::InFlight {
            ticket, pool, via, ..
        } = &self.state
        {
            // SAFETY: the slot is still held (an `InFlight` call releases it
            // only here or in `take_outcome`, which leaves another state).
            let shared = unsafe { pool.get() };
            if self.cancel_on_drop {
                shared.settle_early(*ticket, CallError::Aborted);
            } else if let Via::Inline = via {
                // Nobody would run it: a dropped call still runs.
                shared.forward_inline(*ticket, WhenFull::Wait);
            }
            let released = shared.table.release(*ticket);
            // After the table's last use: this may free the pool.
            drop(released);
        }
    }
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match (&self.state, self.held()) {
            (_, Some((ticket, shared))) if shared.table.is_done(ticket) => "settled",
            (State::Refused(_), _) => "refused",
            (State::InFlight { .. }, _) => "in flight",
            (State::Deferred { .. }, _) => "waiting for room",
            (State::Taken, _) => "taken",
        };
        f.debug_struct("Call").field("state", &state).finish()
    }
}
