//! The JS host: a QuickJS engine (rquickjs, quickjs-ng) on every worker,
//! behind the default `js` feature.
//!
//! With [`PoolOptions::js`](crate::PoolOptions) set, every worker makes a
//! QuickJS runtime on its own thread (it never moves), runs the bootstrap
//! script, loads the modules, and serves JS calls beside Rust ones:
//! `pool.js(module, export)` ([`JsTask`](crate::JsTask): `.apply(args)`,
//! `.call(arg)`), `pool.eval(source)` and `pool.session()`
//! ([`JsSession`](crate::JsSession)). They travel like any call (same rings,
//! balancers, budgets, cancel, stats) but never take the inline lane.
//!
//! # Async and the event loop
//!
//! A JS call that returns a promise stays pending on its worker while the
//! worker serves other calls; promise jobs, `setTimeout`/`setInterval`
//! (`timers`) and `queueMicrotask` are driven by the worker's loop, which
//! parks until the next timer when idle (no polling). A call's budget ends a
//! promise that never settles; an expired or cancelled call's running JS is
//! stopped by the runtime's interrupt handler (see `host`'s docs for exactly
//! which code an interrupt stops).
//!
//! # Host functions, console
//!
//! Tasks named in `JsOptions::expose` are JS functions in the module
//! `knit:host`; `console.*` goes to `tracing` (target `knit::js`).
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
//! JS result straight back into bytes ([`from_js`]); a [`Converter`] does
//! both for many conversions in one context, keeping key atoms and object
//! shapes from one to the next. A thrown exception
//! becomes a [`JsError`] ([`caught_error`]).

mod bigint;
mod console;
mod convert;
mod error;
pub(crate) mod host;
pub(crate) mod modules;
pub(crate) mod strict;
pub(crate) mod targets;
mod timers;
mod value;
pub(crate) mod wire;

pub use crate::error::LimitKind;
pub use crate::js_error::JsError;
pub use crate::js_limits::{Limits, Permission};
pub use crate::script_error::ScriptError;
pub use bigint::JsBigInt;
pub use convert::{from_js, to_js, Converter};
pub use error::{caught_error, js_error_from, js_error_of};
pub use modules::{JsModule, JsModuleError, JsOptions};
pub use value::JsValue;
pub use wire::{from_wire, to_wire, WireDeserializer, WireError, WireLimits, WireSerializer};
