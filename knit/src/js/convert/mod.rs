//! Wire bytes straight to engine values and back, with no tree in between.
//!
//! Both walks use quickjs-ng's C API directly (through `rquickjs::qjs`):
//! the safe wrappers clone the context handle per value and go through
//! generic property setters, which costs more than the conversion itself.
//! Every raw value created is owned by exactly one place at a time (a local,
//! the builder's stack, or the engine once handed over), so an error part
//! way frees everything made so far.

mod from_js;
mod to_js;

pub use from_js::from_js;
pub use to_js::to_js;

use rquickjs::{qjs, Ctx};

use crate::js::wire::WireError;

/// The pending exception (a getter threw, memory ran out) as an error,
/// leaving the context without one.
fn engine_error(ctx: &Ctx<'_>) -> WireError {
    WireError::Engine(crate::js::caught_error(ctx).to_string())
}

/// The raw context pointer the C API takes.
#[inline]
fn raw(ctx: &Ctx<'_>) -> *mut qjs::JSContext {
    ctx.as_raw().as_ptr()
}

#[cfg(test)]
mod tests;
