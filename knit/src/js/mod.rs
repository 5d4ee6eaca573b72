//! The JS host: a QuickJS engine (rquickjs, quickjs-ng) on every worker,
//! behind the default `js` feature. Being built: see the project's JS issue.
//!
//! # Modules
//!
//! [`JsOptions`] names the ES modules every worker loads ([`JsModule`]):
//! they are compiled to bytecode once, on the thread that creates the pool,
//! in dependency order, and each worker loads that bytecode (see
//! `modules`' docs for resolution and the bytecode cache's trust model).
//!
//! # Values
//!
//! A JS task's argument and result cross the ring in knit's JS wire form
//! ([`wire`](self::to_wire)): the Rust side writes and reads it with serde
//! ([`to_wire`], [`from_wire`], into any type or a dynamic [`JsValue`]); the
//! worker turns the bytes straight into engine values ([`to_js`]) and the
//! JS result straight back into bytes ([`from_js`]). A thrown exception
//! becomes a [`JsError`] ([`caught_error`]).

mod bigint;
mod console;
mod convert;
mod error;
pub(crate) mod host;
pub(crate) mod modules;
pub(crate) mod targets;
mod timers;
mod value;
pub(crate) mod wire;

pub use crate::js_error::JsError;
pub use bigint::JsBigInt;
pub use convert::{from_js, to_js};
pub use error::{caught_error, js_error_from, js_error_of};
pub use modules::{JsModule, JsModuleError, JsOptions};
pub use value::JsValue;
pub use wire::{from_wire, to_wire, WireDeserializer, WireError, WireLimits, WireSerializer};
