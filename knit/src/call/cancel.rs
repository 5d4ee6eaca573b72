//! Stopping and cancelling calls: the task's stop flag, `cancel`,
//! cancel-on-drop, and cancel handles other threads and tasks can keep.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use serde::de::DeserializeOwned;

use super::{Call, State};
use crate::error::CallError;
use crate::shared::Shared;
use crate::table::Ticket;

/// What [`Call::cancel`] (or [`CancelHandle::cancel`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The call was still queued: it is settled with `CallError::Aborted` and
    /// will never run.
    BeforeRun,
    /// The call was running: it is settled with `CallError::Aborted`, the task
    /// sees `stop_requested()`, and its late result is dropped.
    WhileRunning,
    /// The call had already settled (or was refused); nothing changed.
    TooLate,
}

/// Cancels one call from anywhere: a clone of it can go to another thread or
/// task (it is `Clone + Send + Sync`), and it stays usable after the `Call`
/// itself is dropped or waited on (cancelling then does nothing:
/// `Cancelled::TooLate`). Made by [`Call::cancel_handle`].
///
/// A handle names its call by slot and generation; it keeps the pool's
/// shared state (not its workers) alive while it exists. A call slot's
/// generation has 21 bits: a handle kept while its slot is reused 2^21 times
/// could cancel a later call of that slot.
///
/// ```
/// use knit::Cancelled;
///
/// #[knit::task]
/// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
/// let first = pool.call.nap(100);
/// let second = pool.call.nap(100); // queued behind `first`
/// let handle = second.cancel_handle();
/// let from_elsewhere = std::thread::spawn(move || handle.cancel()).join().unwrap();
/// assert_eq!(from_elsewhere, Cancelled::BeforeRun);
/// assert_eq!(second.wait(), Err(knit::CallError::Aborted));
/// assert_eq!(first.wait(), Ok(()));
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    target: Target,
}

#[derive(Clone)]
enum Target {
    /// The call was refused or had settled when the handle was made.
    Settled,
    InFlight {
        shared: Arc<Shared>,
        ticket: Ticket,
    },
    /// The call is waiting for room under `max_queue`.
    Deferred(Arc<DeferredCancel>),
}

impl CancelHandle {
    /// Cancels the call as [`Call::cancel`] does.
    pub fn cancel(&self) -> Cancelled {
        match &self.target {
            Target::Settled => Cancelled::TooLate,
            Target::InFlight { shared, ticket } => cancel_in_flight(shared, *ticket),
            Target::Deferred(d) => d.cancel(),
        }
    }
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle").finish_non_exhaustive()
    }
}

pub(super) fn cancel_in_flight(shared: &Shared, ticket: Ticket) -> Cancelled {
    match shared.settle_early(ticket, CallError::Aborted) {
        Some(true) => Cancelled::WhileRunning,
        Some(false) => {
            // Nobody will run it: an inline call's queued job goes too.
            if let Some(inline) = &shared.inline {
                inline.remove(ticket, false);
            }
            Cancelled::BeforeRun
        }
        None => Cancelled::TooLate,
    }
}

/// What cancelling a call that waits for room reaches: its `Call` and every
/// handle share it. Never held while the call is sent (sending may wait for
/// ring space, and a canceller may be the very worker that makes it) nor
/// while it is settled (settling runs wakers, which may drop the `Call`).
pub(super) struct DeferredCancel(Mutex<Deferred>);

enum Deferred {
    Waiting {
        cancelled: bool,
        /// The future waiting for room, to wake when cancelled (a blocked
        /// `wait` looks at `cancelled` between naps instead).
        waker: Option<Waker>,
    },
    /// Its `Call` took room and is sending it; `cancelled`: cancel it as
    /// soon as it is sent.
    Sending { cancelled: bool },
    /// It was sent as `ticket`.
    Sent { shared: Arc<Shared>, ticket: Ticket },
    /// It will never be sent (its `Call` was dropped, or sending failed).
    Gone,
}

impl DeferredCancel {
    pub(super) fn new() -> Self {
        DeferredCancel(Mutex::new(Deferred::Waiting {
            cancelled: false,
            waker: None,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Deferred> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels the call, whichever state it is in.
    fn cancel(&self) -> Cancelled {
        let mut state = self.lock();
        match &mut *state {
            Deferred::Waiting { cancelled, waker } if !*cancelled => {
                *cancelled = true;
                let waker = waker.take();
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
                Cancelled::BeforeRun
            }
            // It may start before its sender gets to cancel it.
            Deferred::Sending { cancelled } if !*cancelled => {
                *cancelled = true;
                Cancelled::WhileRunning
            }
            Deferred::Sent { shared, ticket } => {
                let (shared, ticket) = (shared.clone(), *ticket);
                drop(state);
                cancel_in_flight(&shared, ticket)
            }
            _ => Cancelled::TooLate,
        }
    }

    /// Whether it was cancelled while waiting for room.
    pub(super) fn cancelled(&self) -> bool {
        matches!(
            *self.lock(),
            Deferred::Waiting {
                cancelled: true,
                ..
            }
        )
    }

    /// Leaves `waker` to be woken if the call is cancelled while waiting.
    pub(super) fn wake_on_cancel(&self, waker: &Waker) {
        if let Deferred::Waiting { waker: slot, .. } = &mut *self.lock() {
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
    }

    /// The call is about to be sent: false if it was cancelled first (then
    /// it must not be).
    pub(super) fn sending(&self) -> bool {
        let mut state = self.lock();
        if let Deferred::Waiting {
            cancelled: false, ..
        } = &*state
        {
            *state = Deferred::Sending { cancelled: false };
            return true;
        }
        false
    }

    /// It was sent as `ticket`; cancels it now if that was asked meanwhile.
    pub(super) fn sent(&self, shared: &Arc<Shared>, ticket: Ticket) {
        let cancel = {
            let mut state = self.lock();
            let cancel = matches!(*state, Deferred::Sending { cancelled: true });
            *state = Deferred::Sent {
                shared: shared.clone(),
                ticket,
            };
            cancel
        };
        if cancel {
            cancel_in_flight(shared, ticket);
        }
    }

    /// It will never be sent.
    pub(super) fn gone(&self) {
        let mut state = self.lock();
        if !matches!(*state, Deferred::Sent { .. }) {
            *state = Deferred::Gone;
        }
    }
}

impl<T: DeserializeOwned> Call<T> {
    /// Asks the task to stop: it sees [`TaskCx::stop_requested`]. Only a
    /// flag: the call still settles with whatever the task returns (typically
    /// its own error). To settle the call now, use [`Call::cancel`].
    ///
    /// [`TaskCx::stop_requested`]: crate::TaskCx::stop_requested
    ///
    /// ```
    /// #[knit::task]
    /// fn spin_until_told(_: (), cx: &knit::TaskCx) -> Result<(), String> {
    ///     while !cx.stop_requested() { std::hint::spin_loop(); }
    ///     Err("stopped".into())
    /// }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let call = pool.call.spin_until_told(());
    /// call.request_stop();
    /// assert_eq!(call.wait(), Err(knit::CallError::Task("stopped".into())));
    /// ```
    pub fn request_stop(&self) {
        match (self.held(), &self.state) {
            (Some((ticket, shared)), _) => shared.table.abort(ticket),
            (None, State::Deferred { .. }) => self.pending_stop.set(true),
            _ => {}
        }
    }

    /// The old name of [`Call::request_stop`], which only raises the task's
    /// stop flag (it does not settle the call, unlike tokio's
    /// `JoinHandle::abort`; for that, use [`Call::cancel`]).
    #[deprecated(
        since = "0.1.0",
        note = "renamed `request_stop` (it only raises the task's stop flag); `cancel` settles the call now"
    )]
    pub fn abort(&self) {
        self.request_stop();
    }

    /// Settles the call now with `CallError::Aborted` (unless it already
    /// settled) and raises the task's stop flag. A call cancelled while
    /// queued never runs. (A call waiting for room under `max_queue` that is
    /// cancelled from elsewhere at the moment its own thread sends it reports
    /// `WhileRunning`: it is settled `Aborted` right after it is sent, but
    /// it may have started by then.)
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
            return self.deferred_cancel().cancel();
        }
        match self.held() {
            Some((ticket, shared)) => cancel_in_flight(shared, ticket),
            None => Cancelled::TooLate,
        }
    }

    /// Makes dropping this call cancel it (as [`Call::cancel`]) if it has not
    /// settled by then, instead of letting it run on: the behaviour of
    /// dropping a future in most async runtimes.
    ///
    /// ```
    /// #[knit::task]
    /// fn slow(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let first = pool.call.slow(50);
    /// drop(pool.call.slow(10_000).cancel_on_drop()); // queued, then cancelled: never runs
    /// assert_eq!(first.wait(), Ok(50));
    /// assert_eq!(pool.stats().failed.aborted, 1);
    /// ```
    pub fn cancel_on_drop(mut self) -> Self {
        self.cancel_on_drop = true;
        self
    }

    /// A handle that cancels this call from another thread or task.
    pub fn cancel_handle(&self) -> CancelHandle {
        let target = match &self.state {
            State::InFlight { ticket, pool, .. } => {
                // SAFETY: an `InFlight` call holds its slot while `self` is
                // borrowed (see `held`).
                let shared = unsafe { pool.get() };
                match shared.me() {
                    Some(shared) => Target::InFlight {
                        shared,
                        ticket: *ticket,
                    },
                    None => Target::Settled,
                }
            }
            State::Deferred { .. } => Target::Deferred(self.deferred_cancel().clone()),
            State::Refused(_) | State::Taken => Target::Settled,
        };
        CancelHandle { target }
    }

    fn deferred_cancel(&self) -> &Arc<DeferredCancel> {
        self.deferred_cancel
            .get_or_init(|| Arc::new(DeferredCancel::new()))
    }
}
