//! Out-of-memory and stack overflow in a strict call, seen even when the script catches the engine's error.
//!
//! QuickJS reports both as ordinary exceptions (an `InternalError` "out of
//! memory", or `null` when even that could not be made; a `RangeError`
//! "Maximum call stack size exceeded"), which `try`/`catch`, `finally` and
//! promise handlers can swallow. Two mechanisms see them anyway:
//!
//! - **The error hook.** Every error QuickJS makes passes through the
//!   context's `Error.prepareStackTrace` function before any handler can see
//!   it (when the error is made in native code, or when it first leaves a
//!   bytecode frame: both come before the search for a `catch`). Strict
//!   contexts set it to a native hook and then replace the property with a
//!   read-only `undefined` (the native setter that stored it is gone, so no
//!   script can swap the hook out). The hook writes the stack text as
//!   QuickJS would, and when the error is the engine's out-of-memory error
//!   (or a `null` thrown while the heap is within 256 KiB of its limit)
//!   or its stack-overflow error, it records the budget as exceeded and
//!   marks the error uncatchable, as the interrupt is.
//! - **The stack band.** A stack overflow happens at the deepest frame, where
//!   calling the hook would overflow again, so the hook cannot see it. Each
//!   slice instead moves the runtime's stack top to where it starts, sets the
//!   engine's limit [`BAND`] bytes below the call's `stack_bytes`, and paints
//!   those [`BAND`] bytes with a pattern drawn for the slice. Frames grow the
//!   stack contiguously and initialise what they take (bytecode frames set
//!   every local), and no frame the engine accepts reaches below the band: a
//!   call whose JS went deeper than `stack_bytes` overwrote part of the
//!   pattern, which the slice checks when it ends. What it cannot see: a
//!   single frame larger than the band that the engine refused whole (a
//!   function with over 2,000 locals), which used no stack beyond the budget;
//!   the script gets a `RangeError` it may catch.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::function::Rest;
use rquickjs::object::Property;
use rquickjs::{qjs, Ctx, Function, Object, Value};

use crate::error::LimitKind;

/// The painted band below a strict call's stack budget.
pub(crate) const BAND: usize = 32 << 10;

/// The band is painted and checked this many bytes (eight words) per turn.
const LINE: usize = 64;
const _: () = assert!(BAND.is_multiple_of(LINE));

/// Below how many bytes from its limit a heap counts as exhausted when a
/// bare `null` is thrown (the engine throws one when it cannot even make
/// its out-of-memory error).
const NULL_OOM_MARGIN: i64 = 256 << 10;

/// The stack pointer, near enough (the address of a local).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The painted band of one slice.
pub(crate) struct Band {
    lo: usize,
    hi: usize,
    seed: u64,
}

impl Band {
    /// Makes the stack position of the caller the runtime's stack top and
    /// paints the band under `stack_bytes` below it. `None` if the band
    /// would reach below `floor` (the lowest address known to be this
    /// thread's stack): the call cannot have its stack here.
    #[inline(never)]
    pub(crate) fn paint(
        ctx: &Ctx<'_>,
        stack_bytes: usize,
        floor: usize,
        seed: u64,
    ) -> Option<Band> {
        // SAFETY: `ctx` is a live context; its runtime pointer is valid for
        // as long as it is, and JS_UpdateStackTop only reads the stack
        // pointer and recomputes the runtime's limit from it.
        unsafe { qjs::JS_UpdateStackTop(qjs::JS_GetRuntime(ctx.as_raw().as_ptr())) };
        let top = stack_pointer();
        let hi = top.checked_sub(stack_bytes)? & !7;
        let lo = hi.checked_sub(BAND)?;
        if lo < floor {
            return None;
        }
        // Eight words per turn (`hi` is word-aligned and `BAND` a multiple
        // of `LINE`), with no loop test between them.
        for line in (lo..hi).step_by(LINE) {
            for i in 0..LINE / 8 {
                let addr = line + 8 * i;
                // SAFETY: `[lo, hi)` lies inside this thread's stack (above
                // `floor`) and at least `stack_bytes` below this frame, so no
                // live frame, red zone or signal frame of ours is there now:
                // it is memory the next frames will overwrite anyway.
                unsafe {
                    std::ptr::write_volatile(
                        std::ptr::with_exposed_provenance_mut::<u64>(addr),
                        seed ^ addr as u64,
                    )
                };
            }
        }
        Some(Band { lo, hi, seed })
    }

    /// Whether anything wrote into the band since it was painted. Reads
    /// every word (an untouched band, the usual case, is read whole
    /// anyway), a line per turn with no branch per word: about twice as
    /// fast as stopping at the first changed word.
    #[inline(never)]
    pub(crate) fn touched(&self) -> bool {
        let mut changed = 0u64;
        for line in (self.lo..self.hi).step_by(LINE) {
            for i in 0..LINE / 8 {
                let addr = line + 8 * i;
                // SAFETY: as in `paint`; this frame is above the band again.
                let word = unsafe {
                    std::ptr::read_volatile(std::ptr::with_exposed_provenance::<u64>(addr))
                };
                changed |= word ^ (self.seed ^ addr as u64);
            }
        }
        changed != 0
    }
}

/// A new seed for a band's pattern (xorshift over the previous one).
pub(crate) fn next_seed(seed: &Cell<u64>) -> u64 {
    let mut x = seed.get();
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    seed.set(x);
    x
}

/// What the error hook reports to: the budget found exceeded, and the
/// call's heap limit.
#[derive(Default)]
pub(crate) struct HookCells {
    pub hit: Rc<Cell<Option<LimitKind>>>,
    pub memory_limit: Cell<usize>,
    /// The interrupt handler said "stop": every error made from now on is
    /// made uncatchable too. (The hook's own call polls the handler, and
    /// `build_backtrace` throws away an interrupt that lands there: a loop
    /// that makes and catches an error each turn could have every poll
    /// land there, for ever; with the error it catches uncatchable, it
    /// ends.)
    pub stopping: Cell<bool>,
}

/// Installs the error hook on `ctx` (see the module docs).
pub(crate) fn install_error_hook<'js>(
    ctx: &Ctx<'js>,
    cells: Rc<HookCells>,
) -> rquickjs::Result<()> {
    let protos = EngineProtos {
        internal: prototype_of(ctx, "InternalError")?,
        range: prototype_of(ctx, "RangeError")?,
        // Interned now: turning the engine's message into its atom later
        // then finds it and allocates nothing (the hook runs when memory
        // is out, and must not need any). Atoms, not `Value`s: a value
        // would keep the context alive from inside its own hook.
        out_of_memory: atom(ctx, c"out of memory"),
        overflow: atom(ctx, c"Maximum call stack size exceeded"),
        message: atom(ctx, c"message"),
    };
    let hook = move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> Value<'js> {
        let mut args = args.0.into_iter();
        let error = args
            .next()
            .unwrap_or_else(|| Value::new_undefined(ctx.clone()));
        let sites = args.next();
        let failure = engine_failure(&ctx, &error, &cells, &protos);
        if let Some(kind) = failure {
            if cells.hit.get().is_none() {
                cells.hit.set(Some(kind));
            }
        }
        if (failure.is_some() || cells.stopping.get()) && error.is_object() {
            // SAFETY: `error` is a live object value of `ctx`; the call
            // only sets a flag bit on it.
            unsafe { qjs::JS_SetUncatchableError(ctx.as_raw().as_ptr(), error.as_raw()) };
        }
        stack_text(&ctx, sites)
    };
    let error: Object = ctx.globals().get("Error")?;
    // The native setter keeps the hook in the context; the data property
    // that replaces the accessor then leaves scripts no way to change it.
    error.set("prepareStackTrace", Function::new(ctx.clone(), hook)?)?;
    error.prop(
        "prepareStackTrace",
        Property::from(Value::new_undefined(ctx.clone())),
    )?;
    // `Error.stackTraceLimit` is read with ToNumber as each error is made,
    // with the pending exception saved and restored around it: a `valueOf`
    // there would run with its interrupt thrown away. The accessor goes the
    // same way; the engine keeps its limit of 10.
    error.prop("stackTraceLimit", Property::from(10))
}

/// The addresses of the prototypes of the engine's out-of-memory error
/// (`InternalError.prototype`) and stack-overflow error
/// (`RangeError.prototype`), as the pristine context has them: compared
/// with an error's prototype, never read (the context holds them as long
/// as it lives).
struct EngineProtos {
    internal: usize,
    range: usize,
    /// The engine's two messages, and `message`, as atoms (freed with the
    /// runtime, which frees every atom).
    out_of_memory: qjs::JSAtom,
    overflow: qjs::JSAtom,
    message: qjs::JSAtom,
}

/// `text` as an atom of `ctx`'s runtime (`JS_ATOM_NULL` if it could not be
/// made: the hook then recognises nothing by it).
fn atom(ctx: &Ctx<'_>, text: &std::ffi::CStr) -> qjs::JSAtom {
    // SAFETY: `ctx` is live and `text` a NUL-terminated string.
    let atom = unsafe { qjs::JS_NewAtom(ctx.as_raw().as_ptr(), text.as_ptr()) };
    if atom == qjs::JS_ATOM_NULL {
        let _ = ctx.catch();
    }
    atom
}

/// The address of `globalThis[name].prototype`.
fn prototype_of(ctx: &Ctx<'_>, name: &str) -> rquickjs::Result<usize> {
    let constructor: Object = ctx.globals().get(name)?;
    let prototype: Object = constructor.get("prototype")?;
    Ok(address(&prototype))
}

fn address(object: &Object<'_>) -> usize {
    // SAFETY: `object` is an object value: its payload is its pointer.
    unsafe { qjs::JS_VALUE_GET_PTR(object.as_raw()) as usize }
}

/// Whether `error` is the engine's out-of-memory or stack-overflow error.
///
/// It runs no script code: the hook is called inside `build_backtrace`,
/// which throws away what the hook's call threw (the interrupt included)
/// and builds no stack trace meanwhile (so an out-of-memory there would
/// pass unseen). So no gets through the prototype chain, where a script
/// may have put getters, or renamed the errors: an error object (an
/// ordinary object, whose prototype and own properties are read without
/// running code) with the engine's prototype and the engine's message as
/// its own data property.
fn engine_failure<'js>(
    ctx: &Ctx<'js>,
    error: &Value<'js>,
    cells: &HookCells,
    protos: &EngineProtos,
) -> Option<LimitKind> {
    if error.is_null() {
        return near_memory_limit(ctx, cells.memory_limit.get()).then_some(LimitKind::Memory);
    }
    if !error.is_error() {
        return None;
    }
    let object = error.as_object()?;
    let prototype = address(&object.get_prototype()?);
    let (kind, expected) = if prototype == protos.internal {
        (LimitKind::Memory, protos.out_of_memory)
    } else if prototype == protos.range {
        (LimitKind::Stack, protos.overflow)
    } else {
        return None;
    };
    let message = own_data_value(ctx, object, protos.message)?;
    if !message.is_string() || expected == qjs::JS_ATOM_NULL {
        return None;
    }
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `message` is a live string of `ctx`. Its atom is looked up in
    // the runtime's table (the engine's own message is there already, so
    // nothing is allocated for it); the atom got is freed here.
    let same = unsafe {
        let got = qjs::JS_ValueToAtom(raw, message.as_raw());
        if got == qjs::JS_ATOM_NULL {
            // Even interning failed: memory is out.
            let _ = ctx.catch();
            return (kind == LimitKind::Memory).then_some(kind);
        }
        let same = got == expected;
        qjs::JS_FreeAtom(raw, got);
        same
    };
    same.then_some(kind)
}

/// `object`'s own data property `key` (no getter runs, nothing allocated).
fn own_data_value<'js>(
    ctx: &Ctx<'js>,
    object: &Object<'js>,
    atom: qjs::JSAtom,
) -> Option<Value<'js>> {
    if atom == qjs::JS_ATOM_NULL {
        return None;
    }
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context of `object`, `atom` a live atom of
    // its runtime; the descriptor's three values, all set when the property
    // is found, are owned here and freed as `Value`s.
    unsafe {
        let mut desc = std::mem::MaybeUninit::<qjs::JSPropertyDescriptor>::zeroed();
        let found = qjs::JS_GetOwnProperty(raw, desc.as_mut_ptr(), object.as_raw(), atom);
        if found < 0 {
            let _ = ctx.catch();
        }
        if found <= 0 {
            return None;
        }
        let desc = desc.assume_init();
        let value = Value::from_raw(ctx.clone(), desc.value);
        drop(Value::from_raw(ctx.clone(), desc.getter));
        drop(Value::from_raw(ctx.clone(), desc.setter));
        if desc.flags & qjs::JS_PROP_GETSET as i32 != 0 {
            return None;
        }
        Some(value)
    }
}

/// Whether the heap of `ctx`'s runtime is within [`NULL_OOM_MARGIN`] of `limit`.
fn near_memory_limit(ctx: &Ctx<'_>, limit: usize) -> bool {
    // SAFETY: `ctx` is live, so its runtime is; JSMemoryUsage is plain
    // data the call fills in, read only after it returns.
    let used = unsafe {
        let mut usage = std::mem::zeroed::<qjs::JSMemoryUsage>();
        qjs::JS_ComputeMemoryUsage(qjs::JS_GetRuntime(ctx.as_raw().as_ptr()), &mut usage);
        usage.malloc_size
    };
    used + NULL_OOM_MARGIN >= limit as i64
}

/// The stack text QuickJS writes itself: one `    at name (file:line:col)`
/// line per call site.
fn stack_text<'js>(ctx: &Ctx<'js>, sites: Option<Value<'js>>) -> Value<'js> {
    let undefined = || Value::new_undefined(ctx.clone());
    let Some(sites) = sites.and_then(|s| s.into_array()) else {
        return undefined();
    };
    let mut text = String::new();
    for site in sites.iter::<Object>() {
        let Ok(site) = site else { break };
        let call = |method: &str| -> Option<Value<'js>> {
            let f: Function = site.get(method).ok()?;
            f.call((rquickjs::function::This(site.clone()),)).ok()
        };
        let name = call("getFunctionName")
            .and_then(|v| v.as_string().and_then(|s| s.to_string().ok()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "<anonymous>".into());
        let file = call("getFileName").and_then(|v| v.as_string().and_then(|s| s.to_string().ok()));
        let line = call("getLineNumber").and_then(|v| v.as_int());
        let column = call("getColumnNumber").and_then(|v| v.as_int());
        text.push_str("    at ");
        text.push_str(&name);
        match (file, line, column) {
            (Some(file), Some(line), Some(column)) if line >= 0 => {
                text.push_str(&format!(" ({file}:{line}:{column})"));
            }
            (Some(file), _, _) => text.push_str(&format!(" ({file})")),
            _ => text.push_str(" (native)"),
        }
        text.push('\n');
    }
    rquickjs::String::from_str(ctx.clone(), &text)
        .map(|s| s.into_value())
        .unwrap_or_else(|_| undefined())
}

/// Forgets the context's saved backtrace. QuickJS passes an error that is
/// not an `Error` object (the bare `null` of an out-of-memory that could
/// not even make its error) through the error hook only while none is
/// saved, and an error a builtin caught in C (a Promise executor's throw)
/// leaves one saved. Each slice's start and each interrupt poll forget it,
/// so only an out-of-memory within one poll interval of such an error can
/// still slip past the hook (docs/js.md says so).
///
/// # Safety
///
/// `ctx` must be a live context, on the thread running its runtime.
pub(crate) unsafe fn forget_back_trace(ctx: *mut qjs::JSContext) {
    let mut saved = std::mem::MaybeUninit::<qjs::JSValue>::uninit();
    // SAFETY: command 2 of js_std_cmd ("ErrorBackTrace") takes `ctx`'s
    // saved backtrace into `saved` (always writing it) and leaves
    // `undefined` in its place; the value is then ours to free.
    unsafe {
        qjs::js_std_cmd(2, ctx, saved.as_mut_ptr());
        qjs::JS_FreeValue(ctx, saved.assume_init());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rquickjs::{Context, Runtime};

    #[test]
    fn the_band_sees_a_write_to_any_of_its_words_and_none_outside() {
        let rt = Runtime::new().expect("a runtime");
        let context = Context::base(&rt).expect("a context");
        context.with(|ctx| {
            let stack = 64 << 10;
            let floor = stack_pointer() - (512 << 10);
            let seed = Cell::new(0x9e37_79b9_7f4a_7c15);
            for offset in [0, 8, 56, 64, 72, BAND / 2, BAND - 64, BAND - 8] {
                let band = Band::paint(&ctx, stack, floor, next_seed(&seed)).expect("it fits");
                assert!(!band.touched(), "untouched, offset {offset}");
                assert_eq!(band.hi - band.lo, BAND);
                // Just outside the band on either side: not its business.
                for outside in [band.lo - 8, band.hi] {
                    // SAFETY: at least `stack` bytes below this frame, in
                    // this thread's stack (above `floor`): no live frame.
                    unsafe {
                        std::ptr::write_volatile(
                            std::ptr::with_exposed_provenance_mut::<u64>(outside),
                            0,
                        )
                    };
                }
                assert!(!band.touched(), "a write outside, offset {offset}");
                // SAFETY: as above; inside the band.
                unsafe {
                    std::ptr::write_volatile(
                        std::ptr::with_exposed_provenance_mut::<u64>(band.lo + offset),
                        0,
                    )
                };
                assert!(band.touched(), "a write at offset {offset}");
            }
        });
    }
}
