//! The JS host's ES modules: what the application registers, and the steps that compile, cache and load them.
//!
//! The application lists its modules in [`JsOptions`]. The pool compiles every
//! module to QuickJS bytecode once, on the thread that creates the pool
//! (`compile`), and every worker loads that bytecode into its own context
//! (`load`). Compiling is where mistakes show up: a syntax error (with the
//! module's name, line and column) or an import of something that is not a
//! registered module fails pool creation, before any worker starts.
//!
//! # Names and imports
//!
//! A module's name is what other modules import it by: `import { add } from
//! "math"`, `"./math"`, `"./math.js"`, `"math.js"` and `"./math.mjs"` all name
//! the module `math`. Registered modules form one flat namespace: a relative
//! specifier means a sibling (`"../math.js"` names nothing). Import cycles are
//! allowed, as in any ES module graph. `import()` of a registered module works
//! at run time too; anything else rejects.
//!
//! # Trust
//!
//! QuickJS trusts bytecode completely: loading crafted bytecode corrupts
//! memory. Workers only ever load bytecode that `compile` produced, which is
//! either written by this process's engine from the application's source, or
//! read from the optional on-disk cache after its keyed hash verified (see the
//! `cache` module for the file format and exactly what that trusts).

mod cache;
mod compile;
mod load;
mod resolve;
#[cfg(test)]
mod tests;

pub use crate::js_module_error::JsModuleError;
pub use crate::js_options::{JsModule, JsOptions};
pub(crate) use compile::describe;
#[allow(unused_imports)] // The worker integration is their first user outside the tests.
pub(crate) use compile::{compile, CompiledModule, CompiledModules};
#[allow(unused_imports)] // The worker integration is their first user outside the tests.
pub(crate) use load::{
    install_loader, load, load_with, resolver_and_loader, run_bootstrap, unknown_export,
    LoadedModules,
};
pub(crate) use resolve::resolve;
