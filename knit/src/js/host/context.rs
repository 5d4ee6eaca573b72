//! One JS context of a worker's engine (the worker's own, or a session's): its globals, timers, modules and cached exports.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::time::Instant;

use rquickjs::{Context, Ctx, Function, Persistent, Runtime};

use super::{console_source, exposed, EngineState, JOBS_PER_TURN};
use crate::error::CallError;
use crate::js::console;
use crate::js::convert::ConvertCache;
use crate::js::error::js_error_of;
use crate::js::modules::{load_with, run_bootstrap, JsModuleError, LoadedModules};
use crate::js::strict::fresh::StrictIntrinsics;
use crate::js::timers::Timers;
use crate::js_limits::Permission;
use crate::registry::IdHasher;
use crate::table::Outcome;

/// An exported function and the name of its module.
pub(crate) type Export = (Persistent<Function<'static>>, Rc<str>);

/// A context and what the engine keeps of it.
pub(crate) struct JsContext {
    /// The value conversions' caches (key atoms, shapes) for this context.
    /// Before `ctx`: dropped while the context lives.
    pub convert: RefCell<ConvertCache>,
    pub ctx: Context,
    pub timers: Timers,
    /// The modules' namespaces (the worker's own context only).
    pub modules: Option<LoadedModules>,
    /// Exported functions already looked up, by JS target id (with the
    /// module's name, for the console).
    pub functions: RefCell<HashMap<u64, Export, BuildHasherDefault<IdHasher>>>,
}

impl JsContext {
    /// A context with console, timers and the host functions installed,
    /// the bootstrap script run, and (for the worker's own, `main`) the
    /// modules loaded.
    pub(crate) fn new(
        rt: &Runtime,
        state: &Rc<EngineState>,
        main: bool,
    ) -> Result<JsContext, JsModuleError> {
        let ctx = match state.setup.permission {
            Permission::Unsafe => Context::full(rt),
            // Without the Eval intrinsic: no `eval`, no function constructors.
            Permission::Strict => Context::custom::<StrictIntrinsics>(rt),
        };
        let ctx = ctx.map_err(|e| JsModuleError::Engine(e.to_string()))?;
        let timers = Timers::default();
        let compiled = state.setup.compiled.clone();
        let convert = ctx.with(|ctx| RefCell::new(ConvertCache::new(&ctx)));
        let modules = ctx.with(|ctx| -> Result<Option<LoadedModules>, JsModuleError> {
            let engine = |e: rquickjs::Error| JsModuleError::Engine(e.to_string());
            console::install(&ctx, &console_source(state)).map_err(engine)?;
            timers.install(&ctx).map_err(engine)?;
            exposed::install(&ctx, state, None).map_err(engine)?;
            // A module's top-level `await` on a timer: sleep until it is due.
            let mut idle = |ctx: &Ctx<'_>| match timers.next_deadline() {
                Some(at) => {
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    drop(timers.fire_due(ctx, Instant::now()));
                    true
                }
                None => false,
            };
            if main {
                return load_with(&ctx, &compiled, &mut idle).map(Some);
            }
            // A session gets the bootstrap's globals, not the modules
            // (`import()` of a registered module still works in it).
            if let Some(script) = compiled.bootstrap() {
                run_bootstrap(&ctx, script)?;
            }
            Ok(None)
        });
        let modules = match modules {
            Ok(m) => m,
            Err(e) => {
                timers.clear_all();
                drop(convert);
                return Err(e);
            }
        };
        Ok(JsContext {
            convert,
            ctx,
            timers,
            modules,
            functions: RefCell::new(HashMap::default()),
        })
    }

    /// Runs the timers due by `now`; a callback that throws fails the call
    /// that set the timer (if it is still pending).
    pub(crate) fn fire_timers(&self, state: &EngineState, now: Instant) {
        if self.timers.next_deadline().is_none_or(|at| at > now) {
            return;
        }
        self.ctx.with(|ctx| {
            // Jobs left from before belong to no known call.
            run_jobs_in(&ctx, JOBS_PER_TURN);
            // A timer's callback runs as the call that set it (if that call
            // still waits), and so do the jobs it queues (the continuation
            // of an `await` on the timer, typically): the interrupt handler
            // and the console then know the call.
            let mut around = |owner: Option<u64>, before: bool| {
                if before {
                    let waiting = owner.filter(|c| state.pending.borrow().contains_key(c));
                    state.current.set(waiting);
                } else {
                    run_jobs_in(&ctx, JOBS_PER_TURN);
                    state.current.set(None);
                }
            };
            for failure in self.timers.fire_due_with(&ctx, now, &mut around) {
                let error = js_error_of(&ctx, failure.thrown);
                match failure.owner {
                    Some(call) => {
                        state.settle(call, Outcome::Failed(CallError::Js(Box::new(error))))
                    }
                    None => tracing::warn!(
                        target: console::TARGET,
                        lane = state.lane,
                        error = %error,
                        "a timer callback threw"
                    ),
                }
            }
        });
    }

    /// Runs up to `max` queued promise jobs (of any context of the runtime).
    pub(crate) fn run_jobs(&self, max: usize) {
        self.ctx.with(|ctx| run_jobs_in(&ctx, max));
    }

    /// Drops what holds engine values, before the context goes.
    pub(crate) fn close(self) {
        self.timers.clear_all();
        self.functions.borrow_mut().clear();
        drop(self.modules);
        drop(self.convert);
        drop(self.ctx);
    }
}

/// Runs up to `max` queued promise jobs (of any context of the runtime).
fn run_jobs_in(ctx: &Ctx<'_>, max: usize) {
    for _ in 0..max {
        if !ctx.execute_pending_job() {
            break;
        }
    }
}
