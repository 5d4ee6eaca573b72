//! What every worker's engine is built from, made once by `create_pool`: the compiled modules and the exposed host functions.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::JsEngine;
use crate::table::CallTable;

use crate::error::PoolError;
use crate::js::modules::{compile, CompiledModules, JsModule, JsModuleError, JsOptions};
use crate::js::strict::ScriptStore;
use crate::js_limits::Permission;
use crate::registry::{Registry, TaskEntry};

/// The name JS imports host functions from.
pub(crate) const HOST_MODULE: &str = "knit:host";

/// The global symbol (`Symbol.for(HOST_KEY)`) the generated `knit:host`
/// module reads the native functions from, installed before modules load.
pub(crate) const HOST_KEY: &str = "knit.host";

/// A host function: the JS name and the task it runs.
pub(crate) struct Exposed {
    pub name: String,
    pub entry: &'static TaskEntry,
    pub run: crate::registry::RunFn,
}

/// Everything a worker needs to build its engine (`Send + Sync`; shared by
/// the pool's workers, replacements included).
pub(crate) struct JsSetup {
    pub compiled: Arc<CompiledModules>,
    pub exposed: Vec<Exposed>,
    /// The most bytes a result (or a host function's argument) may take.
    pub max_payload: usize,
    /// The workers' stack size (strict calls' stack budgets must fit in it).
    pub stack_size: usize,
    /// What the modules may do.
    pub permission: Permission,
    /// The registered modules untrusted scripts may import.
    pub untrusted_imports: Arc<[String]>,
    /// The untrusted scripts compiled for this pool.
    pub scripts: ScriptStore,
    /// How the workers' engines started (for `create_pool` to wait on).
    started: Mutex<Vec<Option<JsModuleError>>>,
    started_cv: Condvar,
}

impl JsSetup {
    /// Resolves `expose` against the registry and compiles the modules
    /// (with a generated `knit:host` module when anything is exposed).
    pub(crate) fn new(
        options: &JsOptions,
        registry: &Registry,
        max_payload: usize,
        stack_size: usize,
    ) -> Result<JsSetup, PoolError> {
        if options.permission == Permission::Strict && options.bootstrap.is_some() {
            return Err(PoolError::JsModule(JsModuleError::Engine(
                "a bootstrap script is evaluated source, which Permission::Strict forbids".into(),
            )));
        }
        for name in &options.untrusted_imports {
            if !options.modules.iter().any(|m| m.name() == name) {
                return Err(PoolError::JsModule(JsModuleError::Engine(format!(
                    "JsOptions::untrusted_imports names {name:?}, which is no module here"
                ))));
            }
        }
        let mut exposed: Vec<Exposed> = Vec::new();
        for path in &options.expose {
            let entry = registry.find(path).map_err(|e| {
                PoolError::JsModule(JsModuleError::Engine(format!(
                    "JsOptions::expose names {path:?}, which is no task here: {e}"
                )))
            })?;
            let Some(run) = entry.run_wire else {
                return Err(PoolError::JsModule(JsModuleError::Engine(format!(
                    "task {} has no JS runner",
                    entry.path()
                ))));
            };
            let name = entry.name.to_owned();
            if let Some(other) = exposed.iter().find(|e| e.name == name) {
                return Err(PoolError::JsModule(JsModuleError::Engine(format!(
                    "JsOptions::expose names two tasks JS would both call `{name}`: {} and {}",
                    other.entry.path(),
                    entry.path()
                ))));
            }
            exposed.push(Exposed { name, entry, run });
        }
        let mut options = options.clone();
        if options.modules.iter().any(|m| m.name() == HOST_MODULE) {
            return Err(PoolError::JsModule(JsModuleError::BadName {
                name: HOST_MODULE.into(),
                reason: "the name is knit's own (the host functions' module)",
            }));
        }
        options
            .modules
            .push(JsModule::source(HOST_MODULE, host_module_source(&exposed)));
        let compiled = compile(&options)?;
        Ok(JsSetup {
            compiled: Arc::new(compiled),
            exposed,
            max_payload,
            stack_size,
            permission: options.permission,
            untrusted_imports: options.untrusted_imports.clone().into(),
            scripts: ScriptStore::default(),
            started: Mutex::new(Vec::new()),
            started_cv: Condvar::new(),
        })
    }

    /// Builds the engine of the worker of lane `lane` (on that worker's
    /// thread) and reports how that went. A worker whose engine failed
    /// still serves Rust calls; its JS calls fail.
    pub(crate) fn start_engine(
        self: &Arc<Self>,
        table: &Arc<CallTable>,
        lane: usize,
    ) -> Option<JsEngine> {
        let (engine, report) = match JsEngine::new(self, table, lane) {
            Ok(engine) => (Some(engine), None),
            Err(e) => {
                tracing::error!(lane, error = %e, "knit: a worker's JS engine failed to start");
                (None, Some(e))
            }
        };
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(report);
        self.started_cv.notify_all();
        engine
    }

    /// Waits until `workers` engines have reported; the first failure, if
    /// any. `alive` says whether waiting still makes sense (a worker that
    /// died before reporting never will).
    pub(crate) fn wait_started(
        &self,
        workers: usize,
        alive: impl Fn() -> bool,
    ) -> Result<(), JsModuleError> {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        while started.len() < workers {
            if !alive() {
                return Err(JsModuleError::Engine(
                    "a worker ended before its JS engine started".into(),
                ));
            }
            started = self
                .started_cv
                .wait_timeout(started, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        started
            .iter_mut()
            .find_map(Option::take)
            .map_or(Ok(()), Err)
    }
}

/// The source of `knit:host`: one named export per host function, read
/// from the native object the engine installs.
fn host_module_source(exposed: &[Exposed]) -> String {
    let mut source = format!("const host = globalThis[Symbol.for({HOST_KEY:?})];\n");
    for (i, e) in exposed.iter().enumerate() {
        // Exported under `as`, which takes any identifier name (a task may
        // be called `new` or `delete`, which JS reserves).
        source.push_str(&format!(
            "const f{i} = host[{0:?}];\nexport {{ f{i} as {0} }};\n",
            e.name
        ));
    }
    source
}
