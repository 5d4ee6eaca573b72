//! Async Rust tasks on a worker: their futures are polled by the worker's loop, many in flight at once, woken through the lane's ring.
//!
//! A worker that meets a call of an `async fn` task does not block on it:
//! it polls the task's future once and, if it is not done, keeps it (with
//! the call's claim) and goes on with its ring. The future's waker records
//! the call as ready and wakes the worker where it parks (its ring's wait,
//! or the shared queue's); the loop then polls the ready futures.
//! A future whose call was settled early (timed out, cancelled) is dropped
//! at the loop's next look, which cancels it the way dropping a future does.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use super::super::host::LaneHost;
use super::super::thread::ThreadLane;
use super::context::WorkerContext;
use super::run::{begin_waiting, lose_waiting, settle, settle_waiting};
use crate::cx::TaskCx;
use crate::error::CallError;
use crate::registry::{AsyncRunFn, TaskFuture};
use crate::run::panic_message;
use crate::table::{CallTable, Claim, Outcome, Ticket};

/// What wakers tell the worker.
struct Woken {
    any: AtomicBool,
    ready: Mutex<Vec<u64>>,
    /// Wakes the worker wherever it parks.
    wake: Box<dyn Fn() + Send + Sync>,
}

/// The waker of one call's future.
struct CallWaker {
    call: u64,
    woken: Arc<Woken>,
}

impl Wake for CallWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let woken = &self.woken;
        woken
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.call);
        woken.any.store(true, Ordering::Release);
        (woken.wake)();
    }
}

struct Task {
    future: TaskFuture,
    waker: Waker,
    claim: Claim,
    started: Option<Instant>,
}

/// The async tasks a worker has in flight. Dropped by a worker that
/// unwinds: their calls fail with `WorkerLost` then.
pub(crate) struct AsyncTasks<'a, H: LaneHost> {
    cx: &'a WorkerContext<H>,
    lane: &'a ThreadLane,
    tasks: HashMap<u64, Task>,
    woken: Arc<Woken>,
}

impl<'a, H: LaneHost> AsyncTasks<'a, H> {
    /// No tasks yet; `wake` wakes the worker where it parks.
    pub(crate) fn new(
        cx: &'a WorkerContext<H>,
        lane: &'a ThreadLane,
        wake: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        AsyncTasks {
            cx,
            lane,
            tasks: HashMap::new(),
            woken: Arc::new(Woken {
                any: AtomicBool::new(false),
                ready: Mutex::new(Vec::new()),
                wake,
            }),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether a waker fired since the last [`AsyncTasks::poll_woken`]
    /// (what the worker's ring wait also returns on).
    #[inline]
    pub(crate) fn woken(&self) -> bool {
        self.woken.any.load(Ordering::Acquire)
    }

    /// Starts claimed call `ticket` of an async task: polls its future once,
    /// and keeps it if it is not done.
    pub(crate) fn start(
        &mut self,
        run: AsyncRunFn,
        ticket: Ticket,
        input: &[u8],
        claim: Claim,
        started: Option<Instant>,
    ) {
        let cx = self.cx;
        let table: &CallTable = cx.host.table();
        // SAFETY: the future (which holds this `TaskCx`) lives in `self`,
        // which borrows the worker's context for `'a`; that context holds
        // the pool's state and through it the table, so the table outlives
        // every future here.
        let table: &'static CallTable = unsafe { &*(table as *const CallTable) };
        let task_cx = TaskCx::new(table, ticket, cx.number);
        let made = catch_unwind(AssertUnwindSafe(|| {
            run(input, cx.host.max_payload(), task_cx)
        }));
        let future = match made {
            Ok(Ok(f)) => f,
            Ok(Err(failure)) => {
                return self.finish(ticket, Outcome::Failed(failure.0), claim, started)
            }
            Err(panic) => {
                let e = CallError::Panicked(panic_message(panic.as_ref()));
                return self.finish(ticket, Outcome::Failed(e), claim, started);
            }
        };
        let call = ticket.call_id();
        let waker = Waker::from(Arc::new(CallWaker {
            call,
            woken: self.woken.clone(),
        }));
        let mut task = Task {
            future,
            waker,
            claim,
            started,
        };
        match poll(&mut task) {
            Some(outcome) => self.finish(ticket, outcome, task.claim, task.started),
            None => {
                task.claim = begin_waiting(cx, self.lane, ticket, task.claim);
                self.tasks.insert(call, task);
            }
        }
    }

    /// Polls the futures whose wakers fired, delivering those that finish;
    /// drops those whose call was settled early.
    pub(crate) fn poll_woken(&mut self) {
        if self.woken.any.swap(false, Ordering::AcqRel) {
            let ready =
                std::mem::take(&mut *self.woken.ready.lock().unwrap_or_else(|e| e.into_inner()));
            for call in ready {
                let Some(task) = self.tasks.get_mut(&call) else {
                    continue;
                };
                if let Some(outcome) = poll(task) {
                    let task = self.tasks.remove(&call).expect("polled above");
                    let ticket = Ticket::from_call_id(call);
                    settle_waiting(
                        self.cx,
                        self.lane,
                        ticket,
                        outcome,
                        task.claim,
                        task.started,
                    );
                }
            }
        }
        self.sweep(|_| false);
    }

    /// Drops every future whose call already has an outcome, or for which
    /// `end` says so (with that error as its outcome).
    pub(crate) fn sweep(&mut self, end: impl Fn(u64) -> bool) {
        if self.tasks.is_empty() {
            return;
        }
        let table = self.cx.host.table();
        // Each with its error: `end`'s calls end `Closed`, the others were
        // settled early already (their error is only the claim's end).
        let gone: Vec<(u64, CallError)> = self
            .tasks
            .keys()
            .filter_map(|&c| {
                if end(c) {
                    Some((c, CallError::Closed))
                } else {
                    table
                        .is_done(Ticket::from_call_id(c))
                        .then_some((c, CallError::Aborted))
                }
            })
            .collect();
        for (call, error) in gone {
            let task = self.tasks.remove(&call).expect("listed above");
            drop(task.future);
            let ticket = Ticket::from_call_id(call);
            let outcome = Outcome::Failed(error);
            settle_waiting(
                self.cx,
                self.lane,
                ticket,
                outcome,
                task.claim,
                task.started,
            );
        }
    }

    fn finish(&self, ticket: Ticket, outcome: Outcome, claim: Claim, started: Option<Instant>) {
        settle(self.cx, self.lane, ticket, outcome, claim, started);
    }
}

/// Polls one task's future: its outcome if it is done.
fn poll(task: &mut Task) -> Option<Outcome> {
    let mut context = Context::from_waker(&task.waker);
    let polled = catch_unwind(AssertUnwindSafe(|| task.future.as_mut().poll(&mut context)));
    match polled {
        Ok(Poll::Pending) => None,
        Ok(Poll::Ready(Ok(mut bytes))) => Some(Outcome::from_encoded(&mut bytes)),
        Ok(Poll::Ready(Err(failure))) => Some(Outcome::Failed(failure.0)),
        Err(panic) => Some(Outcome::Failed(CallError::Panicked(panic_message(
            panic.as_ref(),
        )))),
    }
}

impl<H: LaneHost> Drop for AsyncTasks<'_, H> {
    fn drop(&mut self) {
        // Each future is dropped before its call is settled.
        let calls = std::mem::take(&mut self.tasks)
            .into_iter()
            .map(|(call, task)| {
                drop(task.future);
                (Ticket::from_call_id(call), task.claim, task.started)
            });
        lose_waiting(self.cx, self.lane, calls);
    }
}
