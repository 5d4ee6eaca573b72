//! Wire bytes to an engine value: a walk over untrusted bytes creating values.

use rquickjs::{qjs, Ctx, Function, Value};

use super::cache::{KeyCache, ShapeCache, MAX_SHAPE_KEYS};
use super::{engine_error, raw};
use crate::js::bigint::to_hex;
use crate::js::wire::*;

/// The JS value `bytes` (one value in the wire form, all of the bytes)
/// stands for, created in `ctx`.
///
/// The bytes are untrusted: malformed or hostile input (a bad tag, a
/// length beyond the bytes, invalid UTF-8, nesting beyond
/// [`crate::MAX_DEPTH`]) is an error, and nothing is allocated for a length
/// the bytes cannot hold. An object arrives with the prototype
/// `Object.prototype`; its keys are defined, never assigned, so a key
/// `__proto__` is an own property, not a prototype change.
///
/// ```
/// # let rt = rquickjs::Runtime::new().unwrap();
/// # let ctx = rquickjs::Context::full(&rt).unwrap();
/// ctx.with(|ctx| {
///     let mut wire = Vec::new();
///     knit::js::to_wire(&(1u64 << 60, "x"), &mut wire).unwrap();
///     let v = knit::js::to_js(&ctx, &wire).unwrap();
///     let check: rquickjs::Function = ctx.eval("v => typeof v[0] + ' ' + v[1]").unwrap();
///     assert_eq!(check.call::<_, String>((v,)).unwrap(), "bigint x");
/// });
/// ```
///
/// For many conversions in one context, a [`super::Converter`] does the
/// same with its key atoms cached.
pub fn to_js<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> Result<Value<'js>, WireError> {
    build(
        ctx,
        bytes,
        &mut KeyCache::new(raw(ctx), false),
        &mut ShapeCache::new(raw(ctx), false),
        &mut Vec::new(),
    )
}

/// [`to_js`] with `keys` for the key atoms, `shapes` for object shapes and
/// `stack` (empty, left empty) for array items.
pub(super) fn build<'js>(
    ctx: &Ctx<'js>,
    bytes: &[u8],
    keys: &mut KeyCache,
    shapes: &mut ShapeCache,
    stack: &mut Vec<qjs::JSValue>,
) -> Result<Value<'js>, WireError> {
    let mut b = Builder::new(ctx, bytes, keys, shapes, stack);
    let v = b.value()?;
    // SAFETY: `v` was just created in this context and nothing else owns it.
    let v = unsafe { Value::from_raw(ctx.clone(), v) };
    match b.r.left() {
        0 => Ok(v),
        n => Err(WireError::TrailingBytes(n)),
    }
}

/// Calls `f` with the items of the wire array `bytes` as its arguments,
/// built straight into an argument vector (no array object in between):
/// `Err` for bytes that are not one array, `Ok(Err(Exception))` when the
/// call threw (the exception is pending on `ctx`).
pub(super) fn call_spread<'js>(
    ctx: &Ctx<'js>,
    f: &Function<'js>,
    bytes: &[u8],
    keys: &mut KeyCache,
    shapes: &mut ShapeCache,
    stack: &mut Vec<qjs::JSValue>,
) -> Result<rquickjs::Result<Value<'js>>, WireError> {
    let mut b = Builder::new(ctx, bytes, keys, shapes, stack);
    if b.r.byte()? != ARRAY {
        return Err(WireError::Malformed(
            "a JS call's arguments must be a tuple, an array or a sequence".into(),
        ));
    }
    b.enter()?;
    let n = b.r.len(1)?;
    let argc = i32::try_from(n).map_err(|_| WireError::Malformed(format!("{n} arguments")))?;
    for _ in 0..n {
        match b.value() {
            Ok(v) => b.stack.push(v),
            Err(e) => {
                b.free_from(0);
                return Err(e);
            }
        }
    }
    if b.r.left() != 0 {
        let left = b.r.left();
        b.free_from(0);
        return Err(WireError::TrailingBytes(left));
    }
    // SAFETY: `f` is a live function of this context and `stack` holds
    // `argc` owned values; `JS_Call` borrows them (it takes no ownership),
    // so they are freed below whatever it returns.
    let ret = unsafe {
        qjs::JS_Call(
            b.raw,
            f.as_raw(),
            qjs::JS_UNDEFINED,
            argc,
            b.stack.as_mut_ptr(),
        )
    };
    b.free_from(0);
    // SAFETY: reading a value's tag has no preconditions beyond it being a value.
    if unsafe { qjs::JS_IsException(ret) } {
        return Ok(Err(rquickjs::Error::Exception));
    }
    // SAFETY: `ret` was just returned by the engine, owned by nobody else.
    Ok(Ok(unsafe { Value::from_raw(ctx.clone(), ret) }))
}

struct Builder<'a, 'js> {
    ctx: &'a Ctx<'js>,
    raw: *mut qjs::JSContext,
    r: Reader<'a>,
    depth: usize,
    /// Array items made so far (owned here until the array takes them).
    stack: &'a mut Vec<qjs::JSValue>,
    keys: &'a mut KeyCache,
    shapes: &'a mut ShapeCache,
}

/// The keys of the object being built, in order (for [`ShapeCache`]),
/// while there are few enough.
struct Seq {
    atoms: [qjs::JSAtom; MAX_SHAPE_KEYS],
    len: usize,
    on: bool,
}

impl Seq {
    fn new(on: bool) -> Self {
        Seq {
            atoms: [qjs::JS_ATOM_NULL; MAX_SHAPE_KEYS],
            len: 0,
            on,
        }
    }

    #[inline]
    fn push(&mut self, atom: qjs::JSAtom) {
        if self.on {
            match self.atoms.get_mut(self.len) {
                Some(a) => {
                    *a = atom;
                    self.len += 1;
                }
                None => self.on = false,
            }
        }
    }
}

impl<'a, 'js> Builder<'a, 'js> {
    /// A walk over `bytes` (`stack` empty, and left empty).
    fn new(
        ctx: &'a Ctx<'js>,
        bytes: &'a [u8],
        keys: &'a mut KeyCache,
        shapes: &'a mut ShapeCache,
        stack: &'a mut Vec<qjs::JSValue>,
    ) -> Self {
        debug_assert!(stack.is_empty());
        Builder {
            ctx,
            raw: raw(ctx),
            r: Reader::new(bytes),
            depth: 0,
            stack,
            keys,
            shapes,
        }
    }
}

impl<'js> Builder<'_, 'js> {
    /// An owned new value, or an error with nothing left allocated.
    fn value(&mut self) -> Result<qjs::JSValue, WireError> {
        let at = self.r.pos;
        let v = match self.r.byte()? {
            UNDEFINED => qjs::JS_UNDEFINED,
            NULL => qjs::JS_NULL,
            FALSE => qjs::JS_FALSE,
            TRUE => qjs::JS_TRUE,
            INT => {
                let n = self.r.int()?;
                match i32::try_from(n) {
                    Ok(i) => qjs::JS_MKVAL(qjs::JS_TAG_INT, i),
                    Err(_) => qjs::JS_NewFloat64(n as f64),
                }
            }
            // Makes an int when the value is one, but keeps -0 a float.
            F64 => qjs::JS_NewFloat64(self.r.f64()?),
            STRING => {
                let s = self.r.str()?;
                // SAFETY: `s` is valid UTF-8 of `s.len()` bytes; the context is live.
                self.check(unsafe {
                    qjs::JS_NewStringLen(self.raw, s.as_ptr().cast(), s.len() as qjs::size_t)
                })?
            }
            BYTES => {
                let n = self.r.len(1)?;
                let b = self.r.take(n)?;
                // SAFETY: `b` is `b.len()` readable bytes; the engine copies them.
                self.check(unsafe {
                    qjs::JS_NewUint8ArrayCopy(self.raw, b.as_ptr(), b.len() as qjs::size_t)
                })?
            }
            DATE => {
                let ms = self.r.f64()?;
                // SAFETY: the context is live; the date takes a plain number.
                self.check(unsafe { qjs::JS_NewDate(self.raw, ms) })?
            }
            BIGINT => {
                let (negative, mag) = self.r.bigint()?;
                self.bigint(negative, mag)?
            }
            ARRAY => self.array()?,
            OBJECT => self.object()?,
            ERROR => self.error()?,
            tag => return Err(WireError::BadTag { tag, offset: at }),
        };
        Ok(v)
    }

    /// `v`, or the engine's exception as an error.
    #[inline]
    fn check(&self, v: qjs::JSValue) -> Result<qjs::JSValue, WireError> {
        // SAFETY: reading a value's tag has no preconditions beyond it being a value.
        if unsafe { qjs::JS_IsException(v) } {
            return Err(engine_error(self.ctx));
        }
        Ok(v)
    }

    fn enter(&mut self) -> Result<(), WireError> {
        one_level_deeper(&mut self.depth, true)
    }

    fn free_from(&mut self, base: usize) {
        for v in self.stack.drain(base..) {
            // SAFETY: each stacked value is owned by the stack alone.
            unsafe { qjs::JS_FreeValue(self.raw, v) };
        }
    }

    fn array(&mut self) -> Result<qjs::JSValue, WireError> {
        self.enter()?;
        let n = self.r.len(1)?;
        let count =
            i32::try_from(n).map_err(|_| WireError::Malformed(format!("array of {n} items")))?;
        let base = self.stack.len();
        for _ in 0..n {
            match self.value() {
                Ok(v) => self.stack.push(v),
                Err(e) => {
                    self.free_from(base);
                    return Err(e);
                }
            }
        }
        // SAFETY: `stack[base..]` holds `count` owned values, which the call
        // takes over (and frees itself if it fails), so the stack forgets them.
        let arr = unsafe { qjs::JS_NewArrayFrom(self.raw, count, self.stack.as_ptr().add(base)) };
        // SAFETY: set_len only shrinks; the values now belong to the array.
        unsafe { self.stack.set_len(base) };
        self.depth -= 1;
        self.check(arr)
    }

    /// Reads `n` (key, value) entries onto `obj`, defining each key.
    fn entries(
        &mut self,
        obj: qjs::JSValue,
        n: usize,
        flags: i32,
        seq: &mut Seq,
    ) -> Result<(), WireError> {
        for _ in 0..n {
            let key = self.r.str()?;
            let v = self.value()?;
            // The atom is looked up only now: the value's own keys may have
            // evicted a cached one meanwhile.
            let Some((atom, owned)) = self.keys.atom(key) else {
                // SAFETY: `v` is owned here and released once.
                unsafe { qjs::JS_FreeValue(self.raw, v) };
                return Err(engine_error(self.ctx));
            };
            // SAFETY: `obj` is a live object; the call takes `v` over even if
            // it fails; the atom is live (cached, or ours to release).
            let r = unsafe {
                let r = qjs::JS_DefinePropertyValue(self.raw, obj, atom, v, flags);
                if owned {
                    qjs::JS_FreeAtom(self.raw, atom);
                }
                r
            };
            if r < 0 {
                return Err(engine_error(self.ctx));
            }
            seq.push(atom);
        }
        Ok(())
    }

    fn object(&mut self) -> Result<qjs::JSValue, WireError> {
        self.enter()?;
        let n = self.r.len(2)?;
        // SAFETY: the context is live.
        let obj = self.check(unsafe { qjs::JS_NewObject(self.raw) })?;
        let mut seq = Seq::new(self.shapes.on() && n <= MAX_SHAPE_KEYS);
        if let Err(e) = self.entries(obj, n, qjs::JS_PROP_C_W_E as i32, &mut seq) {
            // SAFETY: `obj` is owned here and released once.
            unsafe { qjs::JS_FreeValue(self.raw, obj) };
            return Err(e);
        }
        if seq.on {
            // `obj`'s shape holds these atoms, so they are live.
            self.shapes.met(&seq.atoms[..seq.len]);
        }
        self.depth -= 1;
        Ok(obj)
    }

    /// An Error: made by the global constructor of its name when that is a
    /// built-in error (so `instanceof TypeError` holds), else by `Error`;
    /// then every entry is defined on it (`message`, `stack`, `code`, …).
    fn error(&mut self) -> Result<qjs::JSValue, WireError> {
        // Peek the name first: the constructor depends on it.
        let name = {
            let mut probe = self.r.clone();
            find_name(&mut probe)
        };
        const BUILTIN: [&str; 9] = [
            "Error",
            "TypeError",
            "RangeError",
            "SyntaxError",
            "ReferenceError",
            "EvalError",
            "URIError",
            "InternalError",
            "AggregateError",
        ];
        let ctor = name.filter(|n| BUILTIN.contains(n)).unwrap_or("Error");
        let made: rquickjs::Result<Value<'js>> = (|| {
            let f: Function = self.ctx.globals().get(ctor)?;
            f.call::<_, Value>(())
        })();
        let err = made.map_err(|_| engine_error(self.ctx))?;
        // SAFETY: a new reference for the raw walk; `err` drops its own.
        let obj = unsafe { qjs::JS_DupValue(self.raw, err.as_raw()) };
        drop(err);
        self.enter()?;
        let n = self.r.len(2)?;
        // Non-enumerable, as the engine's own `message` and `stack` are.
        let flags = (qjs::JS_PROP_CONFIGURABLE | qjs::JS_PROP_WRITABLE) as i32;
        if let Err(e) = self.entries(obj, n, flags, &mut Seq::new(false)) {
            // SAFETY: `obj` is owned here and released once.
            unsafe { qjs::JS_FreeValue(self.raw, obj) };
            return Err(e);
        }
        self.depth -= 1;
        Ok(obj)
    }

    fn bigint(&mut self, negative: bool, mag: &[u8]) -> Result<qjs::JSValue, WireError> {
        if let Some(m) = magnitude_u128(mag).and_then(|m| u64::try_from(m).ok()) {
            // SAFETY: the context is live; these take plain integers.
            let v = unsafe {
                if !negative {
                    qjs::JS_NewBigUint64(self.raw, m)
                } else if m <= 1 << 63 {
                    qjs::JS_NewBigInt64(self.raw, 0i64.wrapping_sub_unsigned(m))
                } else {
                    qjs::JS_EXCEPTION
                }
            };
            if !negative || m <= 1 << 63 {
                return self.check(v);
            }
        }
        // Larger: through hex digits (linear, where decimal is quadratic).
        // JS has no negative hex literal, so a negative n of w bits is
        // `BigInt.asIntN(w + 1, 2^(w+1) - n)`.
        let made: rquickjs::Result<Value<'js>> = (|| {
            let f: Function = self.ctx.globals().get("BigInt")?;
            if !negative {
                return f.call((format!("0x{}", to_hex(mag)),));
            }
            let bits = bit_len(mag) + 1;
            let twos = twos_complement(mag, bits);
            let pos: Value = f.call((format!("0x{}", to_hex(&twos)),))?;
            let as_int_n: Function = f.get("asIntN")?;
            as_int_n.call((bits as f64, pos))
        })();
        let v = made.map_err(|_| engine_error(self.ctx))?;
        // SAFETY: a new reference for the raw walk; `v` drops its own.
        Ok(unsafe { qjs::JS_DupValue(self.raw, v.as_raw()) })
    }
}

/// The `name` entry of an Error body, if it is a string (read from a copy
/// of the reader, so nothing is consumed).
fn find_name<'a>(r: &mut Reader<'a>) -> Option<&'a str> {
    let n = r.len(2).ok()?;
    for _ in 0..n {
        let key = r.str().ok()?;
        if key == "name" {
            return match r.byte().ok()? {
                STRING => r.str().ok(),
                _ => None,
            };
        }
        skip(r, 0).ok()?;
    }
    None
}

/// Skips one value (for `find_name`), bounded by the depth limit.
fn skip(r: &mut Reader<'_>, depth: usize) -> Result<(), WireError> {
    if depth > crate::MAX_DEPTH {
        return Err(WireError::TooDeep {
            max: crate::MAX_DEPTH,
            decoding: true,
        });
    }
    let at = r.pos;
    match r.byte()? {
        UNDEFINED | NULL | FALSE | TRUE => {}
        INT => {
            r.int()?;
        }
        F64 | DATE => {
            r.f64()?;
        }
        BIGINT => {
            r.bigint()?;
        }
        STRING => {
            r.str()?;
        }
        BYTES => {
            let n = r.len(1)?;
            r.take(n)?;
        }
        ARRAY => {
            for _ in 0..r.len(1)? {
                skip(r, depth + 1)?;
            }
        }
        OBJECT | ERROR => {
            for _ in 0..r.len(2)? {
                r.str()?;
                skip(r, depth + 1)?;
            }
        }
        tag => return Err(WireError::BadTag { tag, offset: at }),
    }
    Ok(())
}

fn bit_len(mag: &[u8]) -> usize {
    match mag.iter().rposition(|&b| b != 0) {
        Some(i) => i * 8 + (8 - mag[i].leading_zeros() as usize),
        None => 0,
    }
}

/// `2^bits - mag` (mag below 2^(bits-1)), little-endian.
fn twos_complement(mag: &[u8], bits: usize) -> Vec<u8> {
    let n = bits.div_ceil(8);
    let mut out = vec![0u8; n];
    out[..mag.len().min(n)].copy_from_slice(&mag[..mag.len().min(n)]);
    let mut carry = 1u16;
    for b in out.iter_mut() {
        let v = u16::from(!*b) + carry;
        *b = v as u8;
        carry = v >> 8;
    }
    let top = bits - 8 * (n - 1);
    if top < 8 {
        out[n - 1] &= (1u8 << top) - 1;
    }
    out
}
