//! Why the JS modules or the bootstrap script could not be set up (outside `js/`, so that `PoolError` can name it without the pool's errors depending on the JS host).

use std::io;
use std::path::PathBuf;

/// Why the JS modules (or the bootstrap script) could not be read, compiled or
/// loaded. `create_pool` reports it as `PoolError::JsModule`.
///
/// ```
/// use knit::js::JsModuleError;
/// let e = JsModuleError::Import { module: "tasks".into(), specifier: "./nope.js".into() };
/// assert_eq!(
///     e.to_string(),
///     "JS module tasks imports \"./nope.js\", which is not a registered module"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsModuleError {
    /// A module file could not be read.
    #[error("cannot read JS module {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A module's name cannot name a module (empty, a NUL byte, a leading
    /// `.`, or a file path without a UTF-8 stem).
    #[error("invalid JS module name {name:?}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two registered modules have the same name.
    #[error("two JS modules are named {name:?}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A module does not parse. Lines and columns count from 1.
    #[error("syntax error in JS module {module} at {line}:{column}: {message}")]
    Syntax {
        /// The module's name.
        module: String,
        /// The line of the error.
        line: u32,
        /// The column of the error.
        column: u32,
        /// The engine's message.
        message: String,
    },
    /// A module imports something that is not a registered module.
    #[error("JS module {module} imports {specifier:?}, which is not a registered module")]
    Import {
        /// The importing module.
        module: String,
        /// The specifier as written in the import.
        specifier: String,
    },
    /// The bootstrap script does not parse, or threw on a worker.
    #[error("the JS bootstrap script failed{}: {message}", at(*line, *column))]
    Bootstrap {
        /// The line of the error, when the engine gave one.
        line: Option<u32>,
        /// The column of the error, when the engine gave one.
        column: Option<u32>,
        /// The engine's message.
        message: String,
    },
    /// A module's top-level code threw (or its top-level await rejected), or
    /// linking it failed (an imported name that the other module does not export).
    #[error("JS module {module} failed when it was evaluated{}: {message}", at(*line, *column))]
    Evaluate {
        /// The module's name.
        module: String,
        /// The line of the error, when the engine gave one.
        line: Option<u32>,
        /// The column of the error, when the engine gave one.
        column: Option<u32>,
        /// The thrown error's message (or the thrown value as text).
        message: String,
    },
    /// A module's top-level await waits for something that nothing will settle
    /// (no pending job, no timer), or it ran more jobs than the bound allows.
    #[error("JS module {module}'s top-level await did not settle")]
    Unsettled {
        /// The module's name.
        module: String,
    },
    /// The engine failed outside any module's code (out of memory, a runtime
    /// that could not be created).
    #[error("the JS engine failed: {0}")]
    Engine(String),
}

fn at(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at {l}:{c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}
