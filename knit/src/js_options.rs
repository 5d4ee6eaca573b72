//! What the application gives the JS host: its modules and options (plain data, outside `js/` so that `PoolOptions` can hold it without the pool's options depending on the JS host).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::js_module_error::JsModuleError;

/// One ES module for the JS host: a name to import it by and its source.
///
/// ```
/// use knit::js::JsModule;
/// let math = JsModule::source("math", "export const add = (a, b) => a + b;");
/// assert_eq!(math.name(), "math");
/// assert!(math.path().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsModule {
    name: String,
    // Shared: the options are cloned into every pool that uses them.
    source: Arc<str>,
    path: Option<PathBuf>,
}

impl JsModule {
    /// Reads a module from a file; its name is the file's stem
    /// (`examples/tasks.js` is the module `tasks`).
    ///
    /// ```
    /// use knit::js::{JsModule, JsModuleError};
    /// let dir = std::env::temp_dir().join(format!("knit-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// std::fs::write(dir.join("tasks.js"), "export default () => 42;")?;
    /// let tasks = JsModule::file(dir.join("tasks.js"))?;
    /// assert_eq!(tasks.name(), "tasks");
    /// assert!(matches!(JsModule::file(dir.join("nope.js")), Err(JsModuleError::Read { .. })));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(path: impl AsRef<Path>) -> Result<JsModule, JsModuleError> {
        let path = path.as_ref();
        let name = match path.file_stem().map(|s| s.to_str()) {
            Some(Some(stem)) => stem.to_owned(),
            _ => {
                return Err(JsModuleError::BadName {
                    name: path.display().to_string(),
                    reason: "the file name has no UTF-8 stem to name the module by",
                })
            }
        };
        let source = fs::read_to_string(path).map_err(|source| JsModuleError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(JsModule {
            name,
            source: source.into(),
            path: Some(path.to_owned()),
        })
    }

    /// A module from source text. The name is checked when the pool compiles
    /// the modules (it must be non-empty, without NUL bytes, and not start with `.`).
    pub fn source(name: impl Into<String>, source: impl Into<String>) -> JsModule {
        JsModule {
            name: name.into(),
            source: source.into().into(),
            path: None,
        }
    }

    /// The name other modules import this one by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The module's source text.
    pub fn text(&self) -> &str {
        &self.source
    }

    /// The source, shared (for the compiler, which keeps it while it works).
    pub(crate) fn shared_source(&self) -> Arc<str> {
        self.source.clone()
    }

    /// The file it was read from, for [`JsModule::file`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// What every worker's JS engine runs: ES modules (every exported function is
/// a task; `"default"` names the default export), a bootstrap script, and the
/// host functions JS may call.
///
/// Build it with struct syntax and `..Default::default()`. It is deliberately
/// not `#[non_exhaustive]` (that would forbid the struct syntax outside knit);
/// fields are only ever added, each with a default that keeps the old behaviour.
///
/// ```
/// use knit::js::{JsModule, JsOptions};
/// let options = JsOptions {
///     modules: vec![
///         JsModule::source("math", "export const add = (a, b) => a + b;"),
///         JsModule::source("tasks", "import { add } from './math.js';\nexport default (n) => add(n, 1);"),
///     ],
///     bootstrap: Some("globalThis.twice = (x) => 2 * x;".into()),
///     ..Default::default()
/// };
/// assert_eq!(options.modules.len(), 2);
/// assert!(options.cache_dir.is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct JsOptions {
    /// The ES modules. Each is compiled once, when the pool is created; a
    /// syntax error or an import of an unregistered module fails `create_pool`.
    pub modules: Vec<JsModule>,
    /// A global (non-module) script every worker runs in its context before
    /// the modules load: globals it defines are visible to the modules. A
    /// syntax error or an exception fails `create_pool`.
    pub bootstrap: Option<String>,
    /// Host functions to expose to JS, by task path (`"app::lookup"`).
    pub expose: Vec<String>,
    /// A directory for an on-disk bytecode cache, keyed by each module's source
    /// and the engine's version. Files that are stale, corrupt or not written
    /// under this directory's key are ignored and rewritten; a directory that
    /// cannot be used only costs the compile (a `tracing` warning says why).
    pub cache_dir: Option<PathBuf>,
    /// Leave line numbers out of the bytecode: it loads somewhat faster, but
    /// errors thrown by module code then carry no line or column.
    pub strip_debug: bool,
    /// What the modules may do: [`Permission::Unsafe`] (the default, trusted
    /// code) or [`Permission::Strict`] (no `eval`, no function constructors,
    /// no `Pool::eval` or sessions).
    pub permission: crate::js_limits::Permission,
    /// The registered modules untrusted scripts (`Pool::untrusted`) may
    /// import, by name; none by default. What those modules import in turn
    /// loads as usual, but a script cannot import it directly.
    pub untrusted_imports: Vec<String>,
}
