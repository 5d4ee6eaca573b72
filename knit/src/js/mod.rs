//! The JS host: a QuickJS engine (rquickjs, quickjs-ng) on every worker,
//! behind the default `js` feature. Being built: see the project's JS issue.

pub(crate) mod modules;

pub use modules::{JsModule, JsModuleError, JsOptions};
