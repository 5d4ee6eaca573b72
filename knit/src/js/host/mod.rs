//! A worker's JS engine: one QuickJS runtime and its contexts (the worker's own and one per session), driven by the worker's event loop.
//!
//! The worker reaches it through a narrow interface: [`JsEngine::begin`] a
//! call (it settles at once, or stays pending on a promise), [`JsEngine::turn`]
//! to run promise jobs and due timers (which settle pending calls),
//! [`JsEngine::next_deadline`] to know how long it may park, and
//! [`JsEngine::forget`] for a pending call that was settled early (timed out,
//! cancelled). The engine is made on its worker thread and never leaves it.
//!
//! # Interrupts
//!
//! The runtime's interrupt handler stops JS that runs for a call nobody
//! waits for any more: while a call's own code runs, when that call's stop
//! flag is up (its budget ran out, it was cancelled, the pool is shutting
//! down); while promise jobs or timers run (which call they belong to is not
//! known), when any call pending on this worker has its stop flag up. JS
//! cannot catch the interrupt. A job of another call that happens to run
//! while such a flag is raised is interrupted too: the price of not knowing
//! whose job it is (each turn forgets stopped calls before it runs jobs, so
//! only a flag raised while a job runs can do that). The jobs a call's own
//! code queued, run right after it, and the callback of a timer a pending
//! call set with the jobs that callback queued, run as that call.

mod calls;
mod context;
pub(crate) mod exposed;
mod setup;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rquickjs::Runtime;

use crate::error::CallError;
use crate::js::console::ConsoleSource;
use crate::js::modules::{install_loader, JsModuleError};
use crate::js::wire::WireLimits;
use crate::lanes::Begun;
use crate::table::{CallTable, Outcome, Ticket};

use crate::js::strict::call::StrictCalls;
use context::JsContext;
pub(crate) use setup::{JsSetup, HOST_MODULE};

/// How many promise jobs one turn runs at most before the worker looks at
/// its ring again (a promise chain that never ends must not starve it).
const JOBS_PER_TURN: usize = 4096;

/// What the engine's parts share (JS callbacks hold it too).
pub(crate) struct EngineState {
    /// The call whose own code runs now (`None` while jobs and timers run).
    pub current: Rc<Cell<Option<u64>>>,
    /// Its module (`eval` for a script), for the console.
    pub module: Rc<RefCell<Option<Rc<str>>>>,
    /// Calls waiting on a promise, and the session each runs in (`None`:
    /// the worker's own context).
    pub pending: RefCell<HashMap<u64, Option<u64>>>,
    /// Pending calls that settled during the last stretch of JS.
    pub settled: RefCell<Vec<(u64, Outcome)>>,
    pub table: Arc<CallTable>,
    pub setup: Arc<JsSetup>,
    /// Reused for results (see `calls::outcome_with`).
    pub scratch: RefCell<Vec<u8>>,
    pub lane: usize,
}

impl EngineState {
    /// The wire limits of values leaving the engine (results, host
    /// functions' arguments): the pool's payload limit.
    pub(crate) fn limits(&self) -> WireLimits {
        WireLimits {
            max_bytes: self.setup.max_payload,
            ..WireLimits::default()
        }
    }

    /// Settles pending call `call` with `outcome`, unless it was already
    /// settled or forgotten.
    pub(crate) fn settle(&self, call: u64, outcome: Outcome) {
        if self.pending.borrow_mut().remove(&call).is_some() {
            self.settled.borrow_mut().push((call, outcome));
        }
    }
}

/// One worker's JS engine.
pub(crate) struct JsEngine {
    /// The worker's context first, then sessions' (by session id).
    main: Option<JsContext>,
    sessions: HashMap<u64, JsContext>,
    state: Rc<EngineState>,
    /// Calls made into the engine (for the lane's stats).
    calls: u64,
    /// Untrusted scripts' calls, each in a runtime of its own.
    pub(crate) strict: StrictCalls,
    /// Dropped last: everything above holds values of it.
    rt: Runtime,
}

impl JsEngine {
    /// Builds the engine of the worker of lane `lane`: the runtime, the
    /// worker's context, the bootstrap script and the modules.
    pub(crate) fn new(
        setup: &Arc<JsSetup>,
        table: &Arc<CallTable>,
        lane: usize,
    ) -> Result<JsEngine, JsModuleError> {
        let rt = Runtime::new().map_err(|e| JsModuleError::Engine(e.to_string()))?;
        install_loader(&rt, &setup.compiled);
        let state = Rc::new(EngineState {
            current: Rc::new(Cell::new(None)),
            module: Rc::new(RefCell::new(None)),
            pending: RefCell::new(HashMap::new()),
            settled: RefCell::new(Vec::new()),
            scratch: RefCell::new(Vec::new()),
            table: table.clone(),
            setup: setup.clone(),
            lane,
        });
        let interrupt = state.clone();
        rt.set_interrupt_handler(Some(Box::new(move || should_interrupt(&interrupt))));
        let mut engine = JsEngine {
            main: None,
            sessions: HashMap::new(),
            state,
            calls: 0,
            strict: StrictCalls::new(setup.stack_size, lane),
            rt,
        };
        let main = JsContext::new(&engine.rt, &engine.state, true)?;
        engine.main = Some(main);
        Ok(engine)
    }

    /// Starts call `ticket` of JS target `task_id` on `input`: it settled at
    /// once, or it waits on a promise (it will come out of a later
    /// [`JsEngine::turn`] or [`JsEngine::begin`]).
    pub(crate) fn begin(&mut self, ticket: Ticket, task_id: u64, input: &[u8]) -> Begun {
        self.calls += 1;
        calls::begin(self, ticket, task_id, input)
    }

    /// Runs due timers and promise jobs; returns the calls that settled.
    /// Reads the clock only if a timer is set.
    pub(crate) fn turn(&mut self) -> Vec<(u64, Outcome)> {
        if !self.state.pending.borrow().is_empty() {
            self.forget_done();
        }
        let state = self.state.clone();
        let now = self.next_deadline().map(|_| Instant::now());
        for cx in self.main.iter().chain(self.sessions.values()) {
            if let Some(now) = now {
                cx.fire_timers(&state, now);
            }
        }
        if self.rt.is_job_pending() {
            self.main().run_jobs(JOBS_PER_TURN);
        }
        let state = self.state.clone();
        let strict = self.strict.turn(&state);
        let mut settled = std::mem::take(&mut *self.state.settled.borrow_mut());
        settled.extend(strict);
        settled
    }

    /// Whether a turn has work now (promise jobs queued, or a timer due).
    pub(crate) fn has_work(&self) -> bool {
        self.rt.is_job_pending()
            || self.strict.has_work()
            || self.next_deadline().is_some_and(|d| d <= Instant::now())
    }

    /// When the earliest timer is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.main
            .iter()
            .chain(self.sessions.values())
            .filter_map(|cx| cx.timers.next_deadline())
            .chain(self.strict.next_deadline())
            .min()
    }

    /// Stops tracking pending call `call` (it was settled early) and clears
    /// the timers it set.
    pub(crate) fn forget(&mut self, call: u64) {
        self.strict.forget(call);
        self.state.pending.borrow_mut().remove(&call);
        for cx in self.main.iter().chain(self.sessions.values()) {
            cx.timers.clear_owned_by(call);
        }
    }

    /// Forgets the pending calls whose caller already has an outcome, before
    /// jobs run: while a job runs, the interrupt handler stops it if any
    /// pending call's stop flag is up, and a stopped call must not make it
    /// stop another call's job. (The worker still ends their claims.)
    fn forget_done(&mut self) {
        let table = &self.state.table;
        let done: Vec<u64> = self
            .state
            .pending
            .borrow()
            .keys()
            .copied()
            .filter(|&c| table.is_done(Ticket::from_call_id(c)))
            .collect();
        for call in done {
            self.forget(call);
        }
    }

    /// Whether a timer set by a pending call is still set (after the pool
    /// closed, a pending call with none can never settle).
    pub(crate) fn pending_have_timers(&self) -> bool {
        let pending = self.state.pending.borrow();
        self.main
            .iter()
            .chain(self.sessions.values())
            .any(|cx| cx.timers.any_owned(|c| pending.contains_key(&c)))
            || self.strict.may_settle()
    }

    /// Bytes the engine's heap uses now.
    pub(crate) fn memory_used(&self) -> u64 {
        self.rt.memory_usage().memory_used_size as u64
    }

    /// The worker's own context.
    pub(crate) fn main(&self) -> &JsContext {
        self.main
            .as_ref()
            .expect("the main context lives as long as the engine")
    }

    /// Session `id`'s context, made the first time it is used.
    pub(crate) fn session(&mut self, id: u64) -> Result<&JsContext, JsModuleError> {
        if !self.sessions.contains_key(&id) {
            let cx = JsContext::new(&self.rt, &self.state, false)?;
            self.sessions.insert(id, cx);
        }
        Ok(&self.sessions[&id])
    }

    /// Drops session `id`'s context; its calls still pending fail (nothing
    /// could settle them any more).
    pub(crate) fn close_session(&mut self, id: u64) {
        let orphans: Vec<u64> = self
            .state
            .pending
            .borrow()
            .iter()
            .filter(|(_, s)| **s == Some(id))
            .map(|(&c, _)| c)
            .collect();
        for call in orphans {
            let error = crate::js_error::JsError::new("Error", "the session was closed");
            self.state
                .settle(call, Outcome::Failed(CallError::Js(Box::new(error))));
        }
        if let Some(cx) = self.sessions.remove(&id) {
            cx.close();
        }
        self.rt.run_gc();
    }
}

impl crate::lanes::Engine for JsEngine {
    #[inline]
    fn serves(task_id: u64) -> bool {
        crate::js::targets::is_js(task_id)
    }

    fn begin(&mut self, ticket: Ticket, task_id: u64, input: &[u8]) -> Begun {
        JsEngine::begin(self, ticket, task_id, input)
    }

    fn turn(&mut self) -> Vec<(u64, Outcome)> {
        JsEngine::turn(self)
    }

    fn has_work(&self) -> bool {
        JsEngine::has_work(self)
    }

    fn next_deadline(&self) -> Option<Instant> {
        JsEngine::next_deadline(self)
    }

    fn pending_may_settle(&self) -> bool {
        self.pending_have_timers()
    }

    fn forget(&mut self, call: u64) {
        JsEngine::forget(self, call)
    }

    fn record(&self, lane: &crate::lanes::ThreadLane, idle: bool) {
        lane.record_engine(self.calls, || self.memory_used(), idle);
    }
}

impl Drop for JsEngine {
    fn drop(&mut self) {
        // Timers and cached functions hold engine values: they go before the
        // contexts, which go before the runtime (a field declared last).
        for (_, cx) in self.sessions.drain() {
            cx.close();
        }
        if let Some(cx) = self.main.take() {
            cx.close();
        }
        self.rt.run_gc();
    }
}

/// The interrupt handler's question (see the module docs).
fn should_interrupt(state: &EngineState) -> bool {
    match state.current.get() {
        Some(call) => state.table.aborted(Ticket::from_call_id(call)),
        None => {
            // Not borrowed mutably while JS runs: JS runs only from the
            // engine's own methods, which let go of the map first.
            let Ok(pending) = state.pending.try_borrow() else {
                return false;
            };
            pending
                .keys()
                .any(|&c| state.table.aborted(Ticket::from_call_id(c)))
        }
    }
}

/// Console lines name the worker's lane and the call running JS.
pub(crate) fn console_source(state: &EngineState) -> ConsoleSource {
    ConsoleSource {
        lane: state.lane,
        call: state.current.clone(),
        module: state.module.clone(),
        quota: None,
    }
}
