//! Compiling the registered modules to bytecode, once, on the thread that creates the pool.
//!
//! QuickJS resolves a module's static imports while it compiles it, so the
//! modules compile in one context whose loader compiles (or loads from the
//! cache) each imported module on demand: every module is compiled after the
//! modules it imports, and an import cycle finds its first module already
//! declared. The loader only knows the registered modules, so a wrong import
//! fails here, naming the importing module and the specifier.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::CString;
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Context, Ctx, Module, Runtime, Value};

use super::cache::{source_hash, BytecodeCache};
use super::resolve::{check_name, dependency_order, resolve};
use super::{JsModuleError, JsOptions};
use crate::error::PoolError;

/// One compiled module.
#[derive(Debug)]
pub(crate) struct CompiledModule {
    name: String,
    bytecode: Box<[u8]>,
    // Read by the tests (which check resolution and the cache).
    #[cfg_attr(not(test), allow(dead_code))]
    specifiers: Vec<String>,
    #[cfg_attr(not(test), allow(dead_code))]
    imports: Vec<String>,
    #[cfg_attr(not(test), allow(dead_code))]
    from_cache: bool,
}

impl CompiledModule {
    /// The module's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its bytecode, as this process's engine wrote it (or read from the cache
    /// after its MAC verified).
    pub(crate) fn bytecode(&self) -> &[u8] {
        &self.bytecode
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// The names of the registered modules it imports statically.
    pub(crate) fn imports(&self) -> &[String] {
        &self.imports
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// Its import specifiers as written (`"./math.js"`).
    pub(crate) fn specifiers(&self) -> &[String] {
        &self.specifiers
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// Whether the bytecode came from the on-disk cache (no compile).
    pub(crate) fn cached(&self) -> bool {
        self.from_cache
    }
}

/// Every registered module's bytecode, in dependency order (each module after
/// the modules it imports, except inside an import cycle), and the bootstrap
/// script. Built only by [`compile`]; `Send + Sync`, shared with the workers
/// through an `Arc`.
#[derive(Debug)]
pub(crate) struct CompiledModules {
    modules: Vec<CompiledModule>,
    // The same names in the same order, for the workers' resolvers.
    names: Arc<[String]>,
    bootstrap: Option<String>,
}

impl CompiledModules {
    /// The modules, in dependency order.
    pub(crate) fn modules(&self) -> &[CompiledModule] {
        &self.modules
    }

    /// The module named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&CompiledModule> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The module names, in dependency order.
    pub(crate) fn names(&self) -> &Arc<[String]> {
        &self.names
    }

    /// The bootstrap script (checked to parse).
    pub(crate) fn bootstrap(&self) -> Option<&str> {
        self.bootstrap.as_deref()
    }
}

// The pool compiles on its creating thread and shares the result with every
// worker through an `Arc`.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<CompiledModules>();
};

/// Compiles `options`' modules (and checks that its bootstrap script parses).
/// Pure apart from the cache directory: call it on the thread creating the pool.
pub(crate) fn compile(options: &JsOptions) -> Result<CompiledModules, PoolError> {
    compile_modules(options).map_err(PoolError::from)
}

/// A module being compiled.
struct Unit {
    name: String,
    source: Arc<str>,
    hash: [u8; 32],
    out: Option<Output>,
}

struct Output {
    bytecode: Vec<u8>,
    specifiers: Vec<String>,
    from_cache: bool,
}

/// What the compile context's resolver and loader share with the driver.
struct State {
    units: Vec<Unit>,
    names: Vec<String>,
    // Specifiers the resolver saw, per importing module.
    seen: Vec<Vec<String>>,
    // The first error: a failing import fails every module above it, and the
    // innermost failure is the one to report.
    error: Option<JsModuleError>,
    strip_debug: bool,
}

type Shared = Rc<RefCell<State>>;

/// [`compile`], with the module error itself.
pub(crate) fn compile_modules(options: &JsOptions) -> Result<CompiledModules, JsModuleError> {
    let mut names = HashSet::new();
    for m in &options.modules {
        check_name(m.name())?;
        if !names.insert(m.name()) {
            return Err(JsModuleError::DuplicateName {
                name: m.name().to_owned(),
            });
        }
    }
    let cache = options.cache_dir.as_deref().and_then(BytecodeCache::open);
    let units: Vec<Unit> = options
        .modules
        .iter()
        .map(|m| {
            let hash = source_hash(m.name(), m.text(), options.strip_debug);
            let out = cache
                .as_ref()
                .and_then(|c| c.read(m.name(), &hash).ok())
                .map(|e| Output {
                    bytecode: e.bytecode,
                    specifiers: e.specifiers,
                    from_cache: true,
                });
            Unit {
                name: m.name().to_owned(),
                source: m.shared_source(),
                hash,
                out,
            }
        })
        .collect();
    let units = if units.iter().any(|u| u.out.is_none()) || options.bootstrap.is_some() {
        compile_units(units, options)?
    } else {
        units
    };
    finish(units, cache.as_ref(), options.bootstrap.clone())
}

/// Compiles every unit that the cache did not supply.
fn compile_units(units: Vec<Unit>, options: &JsOptions) -> Result<Vec<Unit>, JsModuleError> {
    let engine = |e: rquickjs::Error| JsModuleError::Engine(e.to_string());
    let rt = Runtime::new().map_err(engine)?;
    let context = Context::full(&rt).map_err(engine)?;
    let n = units.len();
    let shared: Shared = Rc::new(RefCell::new(State {
        names: units.iter().map(|u| u.name.clone()).collect(),
        units,
        seen: vec![Vec::new(); n],
        error: None,
        strip_debug: options.strip_debug,
    }));
    rt.set_loader(
        CompileResolver(shared.clone()),
        CompileLoader(shared.clone()),
    );
    context.with(|ctx| {
        if let Some(script) = &options.bootstrap {
            check_bootstrap(&ctx, script)?;
        }
        for i in 0..n {
            let pending = shared.borrow().units[i].out.is_none();
            if pending && compile_unit(&ctx, &shared, i).is_err() {
                let mut state = shared.borrow_mut();
                let name = state.names[i].clone();
                return Err(state.error.take().unwrap_or_else(|| {
                    JsModuleError::Engine(format!("JS module {name} did not compile"))
                }));
            }
        }
        Ok(())
    })?;
    let units = std::mem::take(&mut shared.borrow_mut().units);
    Ok(units)
}

/// Resolves every unit's imports, orders the units, writes the cache.
fn finish(
    units: Vec<Unit>,
    cache: Option<&BytecodeCache>,
    bootstrap: Option<String>,
) -> Result<CompiledModules, JsModuleError> {
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let mut edges = Vec::with_capacity(units.len());
    for u in &units {
        let out = u.out.as_ref().ok_or_else(|| {
            JsModuleError::Engine(format!("JS module {} was not compiled", u.name))
        })?;
        let mut deps = Vec::new();
        // A cached entry's imports are checked against today's modules too.
        for spec in &out.specifiers {
            let dep = resolve(&names, spec).ok_or_else(|| JsModuleError::Import {
                module: u.name.clone(),
                specifier: spec.clone(),
            })?;
            if !deps.contains(&dep) {
                deps.push(dep);
            }
        }
        edges.push(deps);
    }
    if let Some(cache) = cache {
        for u in &units {
            if let Some(out) = u.out.as_ref().filter(|o| !o.from_cache) {
                cache.write(&u.name, &u.hash, &out.specifiers, &out.bytecode);
            }
        }
    }
    let order = dependency_order(&edges);
    let mut slots: Vec<Option<Unit>> = units.into_iter().map(Some).collect();
    let all_names: Vec<String> = slots.iter().flatten().map(|u| u.name.clone()).collect();
    let modules: Vec<CompiledModule> = order
        .iter()
        .filter_map(|&i| {
            let unit = slots[i].take()?;
            let out = unit.out?;
            Some(CompiledModule {
                imports: edges[i].iter().map(|&d| all_names[d].clone()).collect(),
                name: unit.name,
                bytecode: out.bytecode.into_boxed_slice(),
                specifiers: out.specifiers,
                from_cache: out.from_cache,
            })
        })
        .collect();
    let names = modules.iter().map(|m| m.name.clone()).collect();
    Ok(CompiledModules {
        modules,
        names,
        bootstrap,
    })
}

/// Compiles unit `i` from source and keeps its bytecode.
fn compile_unit<'js>(
    ctx: &Ctx<'js>,
    shared: &Shared,
    i: usize,
) -> rquickjs::Result<Module<'js, Declared>> {
    let (name, source, strip_debug) = {
        let state = shared.borrow();
        (
            state.names[i].clone(),
            state.units[i].source.clone(),
            state.strip_debug,
        )
    };
    // No borrow is held here: compiling calls the resolver and the loader.
    let compiled = Module::declare(ctx.clone(), name.as_str(), source.as_bytes()).and_then(|m| {
        let bytecode = m.write(WriteOptions {
            strip_debug,
            // The source text only serves Function.prototype.toString.
            strip_source: true,
            ..Default::default()
        })?;
        Ok((m, bytecode))
    });
    match compiled {
        Ok((module, bytecode)) => {
            let mut state = shared.borrow_mut();
            let specifiers = std::mem::take(&mut state.seen[i]);
            state.units[i].out = Some(Output {
                bytecode,
                specifiers,
                from_cache: false,
            });
            Ok(module)
        }
        Err(e) => {
            let failure = describe(ctx, e);
            let mut state = shared.borrow_mut();
            if state.error.is_none() {
                state.error = Some(match (failure.line, failure.column) {
                    (Some(line), Some(column)) => JsModuleError::Syntax {
                        module: name.clone(),
                        line,
                        column,
                        message: failure.message,
                    },
                    _ => JsModuleError::Engine(format!(
                        "JS module {name} did not compile: {}",
                        failure.message
                    )),
                });
            }
            Err(rquickjs::Error::new_loading_message(
                name,
                "it does not compile",
            ))
        }
    }
}

/// Checks that the bootstrap script parses (it runs on the workers, where the
/// host functions it may use exist).
fn check_bootstrap(ctx: &Ctx<'_>, script: &str) -> Result<(), JsModuleError> {
    let source = CString::new(script).map_err(|_| JsModuleError::Bootstrap {
        line: None,
        column: None,
        message: "the script contains a NUL byte".into(),
    })?;
    let flags = rquickjs::qjs::JS_EVAL_TYPE_GLOBAL | rquickjs::qjs::JS_EVAL_FLAG_COMPILE_ONLY;
    // SAFETY: `ctx` is this thread's live context (we are inside `with`);
    // `source` is NUL-terminated, as JS_Eval requires of its input, and the
    // length passed excludes the NUL; the file name is a static C string.
    let raw = unsafe {
        rquickjs::qjs::JS_Eval(
            ctx.as_raw().as_ptr(),
            source.as_ptr(),
            source.as_bytes().len() as _,
            c"bootstrap".as_ptr(),
            flags as i32,
        )
    };
    // SAFETY: reading a JSValue's tag only inspects the value.
    let failed = unsafe { rquickjs::qjs::JS_VALUE_GET_TAG(raw) } == rquickjs::qjs::JS_TAG_EXCEPTION;
    if !failed {
        // SAFETY: JS_Eval returned an owned value of this context (the
        // compiled function); `Value` frees it once, on drop.
        drop(unsafe { Value::from_raw(ctx.clone(), raw) });
        return Ok(());
    }
    let failure = describe(ctx, rquickjs::Error::Exception);
    Err(JsModuleError::Bootstrap {
        line: failure.line,
        column: failure.column,
        message: failure.message,
    })
}

/// What an engine error says, with the place the stack names first.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
}

/// Describes `error`, taking the pending exception out of `ctx` if it is one.
pub(crate) fn describe(ctx: &Ctx<'_>, error: rquickjs::Error) -> Failure {
    if !matches!(error, rquickjs::Error::Exception) {
        return Failure {
            message: error.to_string(),
            line: None,
            column: None,
        };
    }
    describe_value(ctx.catch())
}

/// Describes a thrown value.
pub(crate) fn describe_value(thrown: Value<'_>) -> Failure {
    if let Some(e) = thrown.as_exception() {
        let place = e.stack().as_deref().and_then(first_frame);
        return Failure {
            message: e.message().unwrap_or_default(),
            line: place.map(|p| p.0),
            column: place.map(|p| p.1),
        };
    }
    let message = thrown
        .get::<rquickjs::convert::Coerced<String>>()
        .map(|c| c.0)
        .unwrap_or_else(|_| format!("a thrown {}", thrown.type_name()));
    Failure {
        message,
        line: None,
        column: None,
    }
}

/// The line and column of a QuickJS stack's first frame: `at tasks:2:5` or
/// `at f (tasks:3:11)`.
pub(crate) fn first_frame(stack: &str) -> Option<(u32, u32)> {
    let frame = stack.lines().next()?.trim().strip_prefix("at ")?;
    let place = match frame.strip_suffix(')') {
        Some(f) => &f[f.rfind('(')? + 1..],
        None => frame,
    };
    let mut parts = place.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((line, column))
}

/// The compile context's resolver: registered names only, recording what
/// each module imports.
struct CompileResolver(Shared);

impl Resolver for CompileResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let mut state = self.0.borrow_mut();
        let importer = state.names.iter().position(|n| n == base);
        match resolve(&state.names, name) {
            Some(i) => {
                let resolved = state.names[i].clone();
                if let Some(b) = importer {
                    if !state.seen[b].iter().any(|s| s == name) {
                        state.seen[b].push(name.to_owned());
                    }
                }
                Ok(resolved)
            }
            None => {
                if state.error.is_none() {
                    state.error = Some(JsModuleError::Import {
                        module: base.to_owned(),
                        specifier: name.to_owned(),
                    });
                }
                Err(rquickjs::Error::new_resolving_message(
                    base,
                    name,
                    "not a registered module",
                ))
            }
        }
    }
}

/// The compile context's loader: an imported module is compiled from source,
/// or loaded from its verified cached bytecode.
struct CompileLoader(Shared);

impl Loader for CompileLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let (index, cached) = {
            let state = self.0.borrow();
            let Some(i) = state.names.iter().position(|n| n == name) else {
                return Err(rquickjs::Error::new_loading_message(
                    name,
                    "not a registered module",
                ));
            };
            (i, state.units[i].out.as_ref().map(|o| o.bytecode.clone()))
        };
        match cached {
            // SAFETY: a unit's `out` holds either this engine's own
            // JS_WriteObject output (a module compiled here) or cache bytes
            // read only after their keyed MAC verified under the directory's
            // key with a header naming this engine version (see `cache`):
            // both are bytecode this engine wrote.
            Some(bytecode) => unsafe { Module::load(ctx.clone(), &bytecode) },
            None => compile_unit(ctx, &self.0, index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::first_frame;

    #[test]
    fn stack_frames_give_line_and_column() {
        assert_eq!(first_frame("    at tasks:2:5\n"), Some((2, 5)));
        assert_eq!(
            first_frame("    at <anonymous> (tasks:3:11)\n    at x (y:1:1)"),
            Some((3, 11))
        );
        assert_eq!(first_frame("    at lib:a:10:4\n"), Some((10, 4)));
        assert_eq!(first_frame(""), None);
        assert_eq!(first_frame("    at native\n"), None);
    }
}
