//! Loading the compiled modules into a worker's context: the loader, the bootstrap script, evaluation and the exports.
//!
//! Per worker: [`install_loader`] on the runtime (outside `Context::with`:
//! runtime methods panic inside it), then [`load`] inside `with`. Module
//! top-level code runs once per context, in dependency order, after the
//! bootstrap script.

use std::sync::Arc;

use rquickjs::context::EvalOptions;
use rquickjs::loader::{ImportAttributes, Loader};
use rquickjs::module::Declared;
use rquickjs::promise::PromiseState;
use rquickjs::{Ctx, Function, Module, Object, Persistent, Promise, Runtime, Value};

use super::compile::{describe, CompiledModules, Failure};
use super::resolve::RegisteredResolver;
use super::JsModuleError;
use crate::error::CallError;

/// The most promise jobs (plus idle rounds) one module's evaluation may take
/// before it counts as unsettled: a top-level `for (;;) await 0;` must not
/// hold a worker's start for ever.
const MAX_JOBS: u64 = 1 << 22;

/// The loader a worker's runtime uses: the compiled bytecode of the
/// registered modules, nothing else (so `import()` at run time works for
/// them too).
pub(crate) struct RegisteredLoader {
    compiled: Arc<CompiledModules>,
}

impl Loader for RegisteredLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let Some(module) = self.compiled.get(name) else {
            return Err(rquickjs::Error::new_loading_message(
                name,
                "not a registered module",
            ));
        };
        // SAFETY: `CompiledModules` is only built by `compile`, and holds
        // bytecode this process's engine wrote (JS_WriteObject) or cache bytes
        // whose keyed MAC verified under the cache directory's key with a
        // header naming this engine version: bytecode this engine wrote.
        unsafe { Module::load(ctx.clone(), module.bytecode()) }
    }
}

/// The resolver and loader for `compiled`, to combine with others (rquickjs
/// tries a tuple's members in turn).
pub(crate) fn resolver_and_loader(
    compiled: &Arc<CompiledModules>,
) -> (RegisteredResolver, RegisteredLoader) {
    (
        RegisteredResolver::new(compiled.names().clone()),
        RegisteredLoader {
            compiled: compiled.clone(),
        },
    )
}

/// Sets `rt`'s module loader to the registered modules only. Call it before
/// [`load`], outside `Context::with`.
pub(crate) fn install_loader(rt: &Runtime, compiled: &Arc<CompiledModules>) {
    let (resolver, loader) = resolver_and_loader(compiled);
    rt.set_loader(resolver, loader);
}

/// The evaluated modules of one context: each module's namespace.
///
/// Holds engine values: drop it before the context's runtime.
pub(crate) struct LoadedModules {
    modules: Vec<(String, Persistent<Object<'static>>)>,
}

impl LoadedModules {
    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// The namespace object of `module`.
    pub(crate) fn namespace<'js>(&self, ctx: &Ctx<'js>, module: &str) -> Option<Object<'js>> {
        let (_, ns) = self.modules.iter().find(|(n, _)| n == module)?;
        ns.clone().restore(ctx).ok()
    }

    /// The exported function `name` of `module` (`"default"` for the default
    /// export); `None` if there is no such module, export, or the export is
    /// not a function.
    pub(crate) fn export<'js>(
        &self,
        ctx: &Ctx<'js>,
        module: &str,
        name: &str,
    ) -> Option<Function<'js>> {
        let value: Value<'js> = match self.namespace(ctx, module)?.get(name) {
            Ok(v) => v,
            Err(_) => {
                // An export still in its temporal dead zone throws; leave
                // the context without a pending exception.
                let _ = ctx.catch();
                return None;
            }
        };
        value.into_function()
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// [`LoadedModules::export`], with a missing one as the call error it is.
    pub(crate) fn export_task<'js>(
        &self,
        ctx: &Ctx<'js>,
        module: &str,
        name: &str,
    ) -> Result<Function<'js>, CallError> {
        self.export(ctx, module, name)
            .ok_or_else(|| unknown_export(module, name))
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// The names `module` exports, in the engine's order.
    pub(crate) fn export_names(&self, ctx: &Ctx<'_>, module: &str) -> Option<Vec<String>> {
        self.namespace(ctx, module)?
            .keys::<String>()
            .collect::<rquickjs::Result<_>>()
            .ok()
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// The loaded modules' names, in the order they were evaluated.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(|(n, _)| n.as_str())
    }
}

/// The call error for a module or export that does not exist (or is not a
/// function): `UnknownTask("module::name")`.
pub(crate) fn unknown_export(module: &str, name: &str) -> CallError {
    CallError::UnknownTask(format!("{module}::{name}"))
}

#[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
/// Runs the bootstrap script, then evaluates every module, in `ctx` (whose
/// runtime has [`install_loader`]'s loader). A top-level await that waits for
/// something no promise job settles fails as [`JsModuleError::Unsettled`];
/// [`load_with`] can drive timers meanwhile.
pub(crate) fn load<'js>(
    ctx: &Ctx<'js>,
    compiled: &CompiledModules,
) -> Result<LoadedModules, JsModuleError> {
    load_with(ctx, compiled, &mut |_| false)
}

/// [`load`], calling `idle` whenever a module's evaluation is pending and no
/// promise job is: it returns whether it made progress (fired a due timer,
/// say, after sleeping until one was due); `false` gives up.
pub(crate) fn load_with<'js>(
    ctx: &Ctx<'js>,
    compiled: &CompiledModules,
    idle: &mut dyn FnMut(&Ctx<'js>) -> bool,
) -> Result<LoadedModules, JsModuleError> {
    if let Some(script) = compiled.bootstrap() {
        run_bootstrap(ctx, script)?;
    }
    let mut modules = Vec::with_capacity(compiled.modules().len());
    for m in compiled.modules() {
        let name = m.name();
        let evaluated =
            Module::import(ctx, name).map_err(|e| evaluate_error(name, describe(ctx, e)))?;
        let namespace = match settle(ctx, &evaluated, idle) {
            None => {
                return Err(JsModuleError::Unsettled {
                    module: name.to_owned(),
                })
            }
            Some(Err(e)) => return Err(evaluate_error(name, describe(ctx, e))),
            Some(Ok(ns)) => ns,
        };
        let Some(namespace) = namespace.into_object() else {
            return Err(JsModuleError::Engine(format!(
                "JS module {name} has no namespace object"
            )));
        };
        modules.push((name.to_owned(), Persistent::save(ctx, namespace)));
    }
    Ok(LoadedModules { modules })
}

fn evaluate_error(module: &str, failure: Failure) -> JsModuleError {
    JsModuleError::Evaluate {
        module: module.to_owned(),
        line: failure.line,
        column: failure.column,
        message: failure.message,
    }
}

/// Runs the bootstrap as a global, sloppy-mode script named `bootstrap`.
pub(crate) fn run_bootstrap(ctx: &Ctx<'_>, script: &str) -> Result<(), JsModuleError> {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some("bootstrap".into());
    match ctx.eval_with_options::<Value, _>(script, options) {
        Ok(_) => Ok(()),
        Err(e) => {
            let failure = describe(ctx, e);
            Err(JsModuleError::Bootstrap {
                line: failure.line,
                column: failure.column,
                message: failure.message,
            })
        }
    }
}

/// Runs jobs until `promise` settles: `None` if it does not (no job and no
/// idle progress, or past [`MAX_JOBS`]).
fn settle<'js>(
    ctx: &Ctx<'js>,
    promise: &Promise<'js>,
    idle: &mut dyn FnMut(&Ctx<'js>) -> bool,
) -> Option<rquickjs::Result<Value<'js>>> {
    for _ in 0..MAX_JOBS {
        if promise.state() != PromiseState::Pending {
            return promise.result();
        }
        if !ctx.execute_pending_job() && !idle(ctx) {
            return None;
        }
    }
    None
}
