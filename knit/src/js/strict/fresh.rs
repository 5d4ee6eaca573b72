//! A pristine engine for one strict call: a new runtime, a context without `eval`, the console, timers, the error hook and the host functions, and the loader that only allows what untrusted code may import.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::context::intrinsic::{
    Date, Json, MapSet, Promise, Proxy, RegExp, RegExpCompiler, TypedArrays, WeakRef,
};
use rquickjs::loader::{ImportAttributes, Resolver};
use rquickjs::{Context, Ctx, Runtime};

use super::guard::{install_error_hook, HookCells};
use crate::js::console::{self, ConsoleSource};
use crate::js::host::exposed::{self, Granted};
use crate::js::host::{EngineState, JsSetup};
use crate::js::modules::{resolve, resolver_and_loader, CompiledModules};
use crate::js::timers::Timers;

/// The intrinsics of a strict context: every standard one but `Eval`
/// (which `eval`, `new Function` and the other function constructors
/// need) and `Performance` (a high-resolution clock is a timing side
/// channel; `Date.now()` is there).
pub(crate) type StrictIntrinsics = (
    Date,
    RegExpCompiler,
    RegExp,
    Json,
    Proxy,
    MapSet,
    TypedArrays,
    Promise,
    WeakRef,
);

/// The most timers one strict call may have set at once.
const MAX_TIMERS: usize = 1024;

/// The most console lines one strict call may write.
pub(crate) const MAX_CONSOLE_LINES: u32 = 100;

/// The prefix of every untrusted script's module name.
pub(crate) const SCRIPT_PREFIX: &str = "script:";

/// A runtime no script has run in yet.
pub(crate) struct Fresh {
    pub timers: Timers,
    /// Which host functions the call may use (set when it begins).
    pub grants: Rc<Granted>,
    pub hook: Rc<HookCells>,
    /// The console's view of the call: its id, its script, its lines left.
    pub console_call: Rc<Cell<Option<u64>>>,
    pub console_module: Rc<RefCell<Option<Rc<str>>>>,
    pub console_quota: Rc<Cell<u32>>,
    pub ctx: Context,
    /// Dropped last: everything above holds values of it.
    pub rt: Runtime,
}

impl Fresh {
    /// Builds one for the engine of `state` (its pool's setup, its lane):
    /// the console, the timers, the error hook and the host functions
    /// (none granted yet) are in place.
    pub(crate) fn new(state: &Rc<EngineState>) -> rquickjs::Result<Fresh> {
        let setup = &state.setup;
        let rt = Runtime::new()?;
        set_strict_loader(&rt, setup);
        let ctx = Context::custom::<StrictIntrinsics>(&rt)?;
        let hook = Rc::new(HookCells::default());
        let fresh = Fresh {
            timers: Timers::with_limit(MAX_TIMERS),
            // Host functions stop once the budget the hook and the
            // interrupt handler share is exceeded.
            grants: Rc::new(Granted {
                indexes: RefCell::new(Vec::new()),
                over: hook.hit.clone(),
            }),
            hook,
            console_call: Rc::new(Cell::new(None)),
            console_module: Rc::new(RefCell::new(None)),
            console_quota: Rc::new(Cell::new(MAX_CONSOLE_LINES)),
            ctx,
            rt,
        };
        let source = ConsoleSource {
            lane: state.lane,
            call: fresh.console_call.clone(),
            module: fresh.console_module.clone(),
            quota: Some(fresh.console_quota.clone()),
        };
        let installed = fresh.ctx.with(|ctx| {
            console::install(&ctx, &source)?;
            fresh.timers.install(&ctx)?;
            install_error_hook(&ctx, fresh.hook.clone())?;
            exposed::install(&ctx, state, Some(&fresh.grants))
        });
        match installed {
            Ok(()) => Ok(fresh),
            Err(e) => {
                fresh.close();
                Err(e)
            }
        }
    }

    /// Drops what holds engine values, then the context and the runtime.
    pub(crate) fn close(self) {
        self.timers.clear_all();
        drop(self.ctx);
        drop(self.rt);
    }
}

/// Sets `rt`'s loader to what untrusted code may import.
pub(crate) fn set_strict_loader(rt: &Runtime, setup: &JsSetup) {
    let (_, loader) = resolver_and_loader(&setup.compiled);
    rt.set_loader(
        StrictResolver {
            compiled: setup.compiled.clone(),
            allowed: setup.untrusted_imports.clone(),
        },
        loader,
    );
}

/// Resolves imports in a strict runtime: from an untrusted script, only
/// the modules named in `JsOptions::untrusted_imports` and `knit:host`
/// (whose functions are the call's grants); from a registered module,
/// any registered module (its own imports).
struct StrictResolver {
    compiled: Arc<CompiledModules>,
    allowed: Arc<[String]>,
}

impl Resolver for StrictResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let names = self.compiled.names();
        let refuse = |why: &str| rquickjs::Error::new_resolving_message(base, name, why);
        let Some(i) = resolve(names, name) else {
            return Err(refuse("not a registered module"));
        };
        let found = &names[i];
        let from_script = base.starts_with(SCRIPT_PREFIX) || !names.iter().any(|n| n == base);
        let host = found == crate::js::host::HOST_MODULE;
        if from_script && !host && !self.allowed.iter().any(|a| a == found) {
            return Err(refuse("not a module untrusted scripts may import"));
        }
        Ok(found.clone())
    }
}
