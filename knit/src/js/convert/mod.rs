//! Wire bytes straight to engine values and back, with no tree in between.
//!
//! Both walks use quickjs-ng's C API directly (through `rquickjs::qjs`):
//! the safe wrappers clone the context handle per value and go through
//! generic property setters, which costs more than the conversion itself.
//! Every raw value created is owned by exactly one place at a time (a local,
//! the builder's stack, or the engine once handed over), so an error part
//! way frees everything made so far.

mod cache;
mod from_js;
mod to_js;

pub use from_js::from_js;
pub use to_js::to_js;

use std::ffi::c_void;

use rquickjs::{qjs, Ctx, Value};

use crate::js::wire::{WireError, WireLimits};

/// [`to_js`] and [`from_js`] for many conversions in one context, with
/// what repeats between them kept:
///
/// - the atoms of object keys, both ways, so a struct's field names are
///   neither interned on the way in nor read back out of the engine on the
///   way out each time;
/// - the engine's shapes (key layouts) of objects whose keys come in the
///   same order conversion after conversion, so building another such
///   object does not allocate and grow its shape again (one template object
///   per prefix of the keys holds them alive);
/// - the walks' scratch buffers.
///
/// The results are the same as the free functions'. The caches are bounded
/// (a few hundred short keys each way, 64 key sequences of up to 16 keys;
/// an entry that collides evicts the one before, longer keys and larger
/// objects are not cached) and hold only atoms and template objects,
/// released when the converter drops; it borrows its context (`'js`), so it
/// cannot outlive it or its runtime. Keep one per context for as long as the
/// context is entered, e.g. for a worker's run of tasks.
///
/// ```
/// # let rt = rquickjs::Runtime::new().unwrap();
/// # let ctx = rquickjs::Context::full(&rt).unwrap();
/// use knit::js::{from_wire, to_wire, Converter, WireLimits};
/// ctx.with(|ctx| {
///     let mut conv = Converter::new(&ctx);
///     let (mut wire, mut back) = (Vec::new(), Vec::new());
///     for i in 0..3u32 {
///         wire.clear();
///         to_wire(&(i, "x"), &mut wire).unwrap();
///         let v = conv.to_js(&wire).unwrap();
///         back.clear();
///         conv.from_js(&v, &mut back, &WireLimits::default()).unwrap();
///         assert_eq!(from_wire::<(u32, String)>(&back).unwrap(), (i, "x".into()));
///     }
/// });
/// ```
pub struct Converter<'js> {
    // Dropped before `ctx` (declaration order): the cache frees its atoms
    // in the context.
    keys: cache::KeyCache,
    shapes: cache::ShapeCache,
    stack: Vec<qjs::JSValue>,
    path: Vec<*mut c_void>,
    ctx: Ctx<'js>,
}

impl<'js> Converter<'js> {
    /// A converter for `ctx`, its cache empty.
    pub fn new(ctx: &Ctx<'js>) -> Self {
        Converter {
            keys: cache::KeyCache::new(raw(ctx), true),
            shapes: cache::ShapeCache::new(raw(ctx), true),
            stack: Vec::new(),
            path: Vec::new(),
            ctx: ctx.clone(),
        }
    }

    /// [`to_js`] in this converter's context.
    pub fn to_js(&mut self, bytes: &[u8]) -> Result<Value<'js>, WireError> {
        to_js::build(
            &self.ctx,
            bytes,
            &mut self.keys,
            &mut self.shapes,
            &mut self.stack,
        )
    }

    /// [`from_js`] in this converter's context (`value` must belong to it).
    pub fn from_js(
        &mut self,
        value: &Value<'js>,
        out: &mut Vec<u8>,
        limits: &WireLimits,
    ) -> Result<(), WireError> {
        from_js::write(
            &self.ctx,
            value,
            out,
            limits,
            &mut self.keys,
            &mut self.path,
        )
    }

    /// How many keys the cache holds each way (to JS, from JS).
    #[cfg(test)]
    fn cached_keys(&self) -> (usize, usize) {
        self.keys.len()
    }

    /// How many key sequences have their shapes kept.
    #[cfg(test)]
    fn cached_shapes(&self) -> usize {
        self.shapes.len()
    }
}

/// A [`Converter`]'s caches without its context handle, for a context's
/// owner to keep between entries of the context (a worker keeps one per
/// context it runs calls in). Use it only with the context it was made
/// for, and drop it while that context is alive.
pub(crate) struct ConvertCache {
    keys: cache::KeyCache,
    shapes: cache::ShapeCache,
    stack: Vec<qjs::JSValue>,
    path: Vec<*mut c_void>,
    raw: *mut qjs::JSContext,
}

impl ConvertCache {
    pub(crate) fn new(ctx: &Ctx<'_>) -> Self {
        ConvertCache {
            keys: cache::KeyCache::new(raw(ctx), true),
            shapes: cache::ShapeCache::new(raw(ctx), true),
            stack: Vec::new(),
            path: Vec::new(),
            raw: raw(ctx),
        }
    }

    /// [`from_js`] with this cache (`ctx` must be the cache's context).
    pub(crate) fn write_wire<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        value: &Value<'js>,
        out: &mut Vec<u8>,
        limits: &WireLimits,
    ) -> Result<(), WireError> {
        assert_eq!(
            raw(ctx),
            self.raw,
            "a conversion cache used in another context"
        );
        from_js::write(ctx, value, out, limits, &mut self.keys, &mut self.path)
    }

    /// Calls `f` with the items of the wire array `args` spread as its
    /// arguments (see `to_js::call_spread`).
    pub(crate) fn call_spread<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        f: &rquickjs::Function<'js>,
        args: &[u8],
    ) -> Result<rquickjs::Result<Value<'js>>, WireError> {
        assert_eq!(
            raw(ctx),
            self.raw,
            "a conversion cache used in another context"
        );
        to_js::call_spread(
            ctx,
            f,
            args,
            &mut self.keys,
            &mut self.shapes,
            &mut self.stack,
        )
    }
}

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
