//! `Call<T>`: a call in flight, to wait on, await, abort, cancel or time out.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::caller::Caller;
use crate::codec;
use crate::error::CallError;
use crate::pool_ref::PoolRef;
use crate::registry::TaskEntry;
use crate::shared::Shared;
use crate::table::{Outcome, Ticket};

enum State {
    /// Refused before it was sent (closed pool, payload too large, ...).
    Refused(Option<CallError>),
    /// Holds a slot (and through it, the pool) until the outcome is taken or
    /// the `Call` is dropped.
    InFlight {
        ticket: Ticket,
        pool: PoolRef,
        /// Whether the call sits in the inline lane (run by whoever waits for it).
        inline: bool,
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

/// What [`Call::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The call was still queued: it is settled with `CallError::Aborted` and
    /// will never run.
    BeforeRun,
    /// The call was running: it is settled with `CallError::Aborted`, the task
    /// sees `has_aborted()`, and its late result is dropped.
    WhileRunning,
    /// The call had already settled (or was refused); nothing changed.
    TooLate,
}

/// A call in flight. `.wait()` blocks for the result; `.await` gets it without
/// blocking (it is a plain `Future`, usable under any executor). Dropping a
/// `Call` does not cancel it (use [`Call::cancel`]); its result is freed when
/// the task finishes.
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
    /// For a deferred call: its budget's end and whether it was aborted, to
    /// apply once it is sent.
    pending_deadline: Option<Instant>,
    pending_abort: Cell<bool>,
    /// A deferred call was cancelled: it is never sent.
    pending_cancel: Cell<bool>,
    _result: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Call<T> {
    pub(crate) fn refused(error: CallError) -> Self {
        Call {
            state: State::Refused(Some(error)),
            fallback: None,
            pending_deadline: None,
            pending_abort: Cell::new(false),
            pending_cancel: Cell::new(false),
            _result: PhantomData,
        }
    }

    pub(crate) fn in_flight(ticket: Ticket, shared: &Arc<Shared>, inline: bool) -> Self {
        Call {
            state: State::InFlight {
                ticket,
                pool: PoolRef::new(shared),
                inline,
            },
            fallback: None,
            pending_deadline: None,
            pending_abort: Cell::new(false),
            pending_cancel: Cell::new(false),
            _result: PhantomData,
        }
    }

    pub(crate) fn deferred(shared: Arc<Shared>, entry: &'static TaskEntry, input: Vec<u8>) -> Self {
        Call {
            state: State::Deferred {
                shared,
                entry,
                input,
            },
            fallback: None,
            pending_deadline: None,
            pending_abort: Cell::new(false),
            pending_cancel: Cell::new(false),
            _result: PhantomData,
        }
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
                if self.pending_abort.get() {
                    shared.table.abort(ticket);
                }
                State::InFlight {
                    ticket,
                    pool: PoolRef::new(&shared),
                    inline,
                }
            }
            Err(e) => State::Refused(Some(shared.stats.refuse(e))),
        };
    }

    /// Settles a deferred call that will never be sent (cancelled, or its
    /// budget ran out first) with `error`.
    fn drop_deferred(&mut self, error: CallError) {
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

    /// Whether a deferred call was settled before it got a place.
    fn deferred_settled(&mut self) -> bool {
        if self.pending_cancel.get() {
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
    pub fn wait(mut self) -> Result<T, CallError> {
        if matches!(self.state, State::Deferred { .. }) && !self.deferred_settled() {
            let until = self.pending_deadline;
            if self.admit(|a| a.acquire_until(until)) {
                self.send_deferred();
            } else {
                self.drop_deferred(CallError::Timeout);
            }
        }
        self.run_own_inline();
        if let Some((ticket, shared)) = self.held() {
            shared
                .table
                .wait(ticket, shared.caller_spin, None, || shared.help_inline());
        }
        self.take_outcome()
    }

    /// Like [`Call::wait`], but gives up after `limit`, handing the call back
    /// (still in flight) if it has not settled by then.
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
            if self.admit(|a| a.acquire_until(Some(stop))) {
                self.send_deferred();
            } else if !self.deferred_settled() {
                return Err(self);
            }
        }
        self.run_own_inline();
        if let Some((ticket, shared)) = self.held() {
            let settled = shared
                .table
                .wait(ticket, shared.caller_spin, Some(until), || {
                    shared.help_inline()
                });
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

    /// Signals the task to stop: it sees `TaskCx::has_aborted()`. The call still
    /// settles with whatever the task returns (typically its own error).
    ///
    /// ```
    /// #[knit::task]
    /// fn spin_until_aborted(_: (), cx: &knit::TaskCx) -> Result<(), String> {
    ///     while !cx.has_aborted() { std::hint::spin_loop(); }
    ///     Err("aborted".into())
    /// }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let call = pool.call.spin_until_aborted(());
    /// call.abort();
    /// assert_eq!(call.wait(), Err(knit::CallError::Task("aborted".into())));
    /// ```
    pub fn abort(&self) {
        match (self.held(), &self.state) {
            (Some((ticket, shared)), _) => shared.table.abort(ticket),
            (None, State::Deferred { .. }) => self.pending_abort.set(true),
            _ => {}
        }
    }

    /// Settles the call now with `CallError::Aborted` (unless it already
    /// settled) and signals the task. A call cancelled while queued never runs.
    ///
    /// ```
    /// use knit::Cancelled;
    ///
    /// #[knit::task]
    /// fn slow(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let first = pool.call.slow(100);
    /// let second = pool.call.slow(100); // queued behind `first`
    /// assert_eq!(second.cancel(), Cancelled::BeforeRun);
    /// assert_eq!(second.wait(), Err(knit::CallError::Aborted));
    /// assert_eq!(first.wait(), Ok(()));
    /// ```
    pub fn cancel(&self) -> Cancelled {
        if let State::Deferred { .. } = &self.state {
            return if self.pending_cancel.replace(true) {
                Cancelled::TooLate
            } else {
                Cancelled::BeforeRun
            };
        }
        match self.held() {
            Some((ticket, shared)) => match shared.settle_early(ticket, CallError::Aborted) {
                Some(was_running) if was_running => Cancelled::WhileRunning,
                Some(_) => Cancelled::BeforeRun,
                None => Cancelled::TooLate,
            },
            None => Cancelled::TooLate,
        }
    }

    /// Gives the call a budget of `budget` from now (which is when it was made,
    /// when chained onto the call): once it runs out, the call settles with
    /// `CallError::Timeout`, the task sees `has_aborted()`, and its late result is
    /// dropped. Time spent queued counts. Overrides a `#[task(timeout_ms)]` default.
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

    /// A call in the inline lane is run by whoever waits for it: run the lane's
    /// queue up to and including this call before waiting or polling.
    fn run_own_inline(&self) {
        if let (State::InFlight { inline: true, .. }, Some((ticket, shared))) =
            (&self.state, self.held())
        {
            shared.run_inline_until(ticket);
        }
    }

    /// Hands out the outcome of a settled (or refused) call and frees its slot.
    fn take_outcome(&mut self) -> Result<T, CallError> {
        let outcome = match std::mem::replace(&mut self.state, State::Taken) {
            State::Refused(e) => Err(e.expect("a refused call is taken once")),
            State::InFlight { ticket, pool, .. } => {
                // SAFETY: the slot is still held: it is released by this
                // `take` (the state was moved out, so nothing uses `pool` after).
                let (outcome, released) = unsafe { pool.get() }.table.take(ticket);
                // After the table's last use: this may free the pool.
                drop(released);
                decode(outcome)
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

fn decode<T: DeserializeOwned>(outcome: Outcome) -> Result<T, CallError> {
    let bytes = match &outcome {
        Outcome::Small { len, bytes } => &bytes[..*len as usize],
        Outcome::Bytes(bytes) => bytes,
        Outcome::Failed(_) => {
            let Outcome::Failed(e) = outcome else {
                unreachable!()
            };
            return Err(e);
        }
    };
    codec::decode(bytes).map_err(CallError::Payload)
}

// `Call` never pins its fields (it only moves them out), so it is `Unpin`
// whatever `T` is.
impl<T> Unpin for Call<T> {}

impl<T: DeserializeOwned> Future for Call<T> {
    type Output = Result<T, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.state, State::Deferred { .. }) && !this.deferred_settled() {
            if this.admit(|a| a.poll_acquire(cx.waker())) {
                this.send_deferred();
            } else {
                return Poll::Pending;
            }
        }
        this.run_own_inline();
        if let Some((ticket, shared)) = this.held() {
            if !shared.table.is_done(ticket) && shared.table.register(ticket, cx.waker()) {
                return Poll::Pending;
            }
        }
        Poll::Ready(this.take_outcome())
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if let State::InFlight { ticket, pool, .. } = &self.state {
            // SAFETY: the slot is still held (an `InFlight` call releases it
            // only here or in `take_outcome`, which leaves another state).
            let released = unsafe { pool.get() }.table.release(*ticket);
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
