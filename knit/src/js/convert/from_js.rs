//! An engine value to wire bytes: a walk over JS values with cycle and depth checks.

use std::ffi::c_void;

use rquickjs::{qjs, Ctx, Function, Value};

use super::cache::{KeyCache, MAX_KEY};
use super::{engine_error, raw};
use crate::js::bigint::parse_hex;
use crate::js::wire::*;

/// Appends the wire form of the JS value `value` to `out`.
///
/// Plain objects (prototype `Object.prototype` or `null`) keep their own
/// enumerable string-keyed properties in JS's order (symbol keys are left
/// out, as `JSON.stringify` does; `undefined` values are kept). Arrays
/// keep their holes as `undefined`. `Uint8Array` and `ArrayBuffer` become
/// bytes, `Date` its time, an `Error` its name, message, stack and other
/// enumerable own properties. Strings with lone surrogates get U+FFFD in
/// their place (as `String.prototype.toWellFormed` does).
///
/// Functions, symbols, Map, Set, WeakMap, WeakSet, Promises, Proxies,
/// typed arrays other than `Uint8Array`, boxed primitives and class
/// instances are [`WireError::Unsupported`]; an object met again inside
/// itself is [`WireError::Cycle`], found as soon as it recurs (each object
/// on the path is remembered); nesting beyond `limits.max_depth` is
/// [`WireError::TooDeep`] and output beyond `limits.max_bytes`
/// [`WireError::TooLarge`]. A getter that throws gives
/// [`WireError::Engine`]. On error, `out` is as it was.
///
/// ```
/// # let rt = rquickjs::Runtime::new().unwrap();
/// # let ctx = rquickjs::Context::full(&rt).unwrap();
/// use knit::js::{from_js, from_wire, WireError, WireLimits};
/// ctx.with(|ctx| {
///     let v = ctx.eval("({ id: 7, tags: ['a', 'b'] })").unwrap();
///     let mut out = Vec::new();
///     from_js(&ctx, &v, &mut out, &WireLimits::default()).unwrap();
///     let (id, tags): (u32, Vec<String>) = {
///         #[derive(serde::Deserialize)]
///         struct T { id: u32, tags: Vec<String> }
///         let t: T = from_wire(&out).unwrap();
///         (t.id, t.tags)
///     };
///     assert_eq!((id, tags.len()), (7, 2));
///     let cyclic = ctx.eval("const o = {}; o.self = o; o").unwrap();
///     let e = from_js(&ctx, &cyclic, &mut out, &WireLimits::default());
///     assert_eq!(e, Err(WireError::Cycle));
/// });
/// ```
///
/// For many conversions in one context, a [`super::Converter`] does the
/// same with its keys cached.
pub fn from_js<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    out: &mut Vec<u8>,
    limits: &WireLimits,
) -> Result<(), WireError> {
    write(
        ctx,
        value,
        out,
        limits,
        &mut KeyCache::new(raw(ctx), false),
        &mut Vec::new(),
    )
}

/// [`from_js`] with `keys` for the key bytes and `path` (empty, left
/// empty) for the cycle check.
pub(super) fn write<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    out: &mut Vec<u8>,
    limits: &WireLimits,
    keys: &mut KeyCache,
    path: &mut Vec<*mut c_void>,
) -> Result<(), WireError> {
    path.clear();
    let start = out.len();
    let mut w = Writer {
        ctx,
        raw: raw(ctx),
        out,
        start,
        limits: *limits,
        path,
        object_proto: None,
        keys,
    };
    let r = w.value(value.as_raw());
    if r.is_err() {
        w.out.truncate(start);
    }
    r
}

struct Writer<'a, 'js> {
    ctx: &'a Ctx<'js>,
    raw: *mut qjs::JSContext,
    out: &'a mut Vec<u8>,
    start: usize,
    limits: WireLimits,
    /// The objects being written, outermost first: meeting one again is a cycle.
    path: &'a mut Vec<*mut c_void>,
    /// `Object.prototype`, found when the first object is met.
    object_proto: Option<*mut c_void>,
    keys: &'a mut KeyCache,
}

/// Frees an owned raw value when dropped (error paths included).
struct Owned(*mut qjs::JSContext, qjs::JSValue);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the value is owned by this guard alone, in this context.
        unsafe { qjs::JS_FreeValue(self.0, self.1) };
    }
}

/// A C string the engine made, freed when dropped.
struct CStr(*mut qjs::JSContext, *const std::ffi::c_char, usize);

impl CStr {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the engine returned `self.2` bytes at `self.1`, alive until freed.
        unsafe { std::slice::from_raw_parts(self.1.cast(), self.2) }
    }
}

impl Drop for CStr {
    fn drop(&mut self) {
        // SAFETY: the pointer came from JS_ToCStringLen2/JS_AtomToCStringLen, freed once.
        unsafe { qjs::JS_FreeCString(self.0, self.1) };
    }
}

/// The own enumerable string keys of an object, released when dropped.
struct Props(*mut qjs::JSContext, *mut qjs::JSPropertyEnum, u32);

impl Props {
    fn atoms(&self) -> impl Iterator<Item = qjs::JSAtom> + '_ {
        // SAFETY: the engine filled `self.2` entries at `self.1`.
        let tab = unsafe { std::slice::from_raw_parts(self.1, self.2 as usize) };
        tab.iter().map(|p| p.atom)
    }
}

impl Drop for Props {
    fn drop(&mut self) {
        // SAFETY: the table came from JS_GetOwnPropertyNames, freed once.
        unsafe { qjs::JS_FreePropertyEnum(self.0, self.1, self.2) };
    }
}

/// quickjs's class id of ordinary objects (`JS_CLASS_OBJECT`).
const JS_CLASS_OBJECT: qjs::JSClassID = 1;

/// Makes engine-made WTF-8 well-formed UTF-8 in place: a lone surrogate is
/// `ED A0..BF xx`, and `ED` starts nothing else a lone surrogate could hide
/// in (it is never a continuation byte), so a string without `ED` is
/// already UTF-8 (a quick memchr, cheaper than validating).
#[inline]
fn make_well_formed(bytes: &mut [u8]) {
    if bytes.contains(&0xed) {
        well_formed(bytes);
    }
}

/// Replaces the WTF-8 encodings of lone surrogates (`ED A0..BF xx`, which
/// the engine emits for them) with U+FFFD (`EF BF BD`, the same length).
fn well_formed(bytes: &mut [u8]) {
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == 0xed && (0xa0..=0xbf).contains(&bytes[i + 1]) {
            bytes[i..i + 3].copy_from_slice(&[0xef, 0xbf, 0xbd]);
            i += 3;
        } else {
            i += 1;
        }
    }
}

impl<'js> Writer<'_, 'js> {
    fn used(&self) -> usize {
        self.out.len() - self.start
    }

    /// An error if `more` bytes would go past the limit.
    #[inline]
    fn room(&self, more: usize) -> Result<(), WireError> {
        let len = self.used().saturating_add(more);
        if len > self.limits.max_bytes {
            return Err(WireError::TooLarge {
                len,
                max: self.limits.max_bytes,
            });
        }
        Ok(())
    }

    fn value(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        // SAFETY: `v` is a live value of this context (borrowed, not owned).
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(v) };
        match tag {
            qjs::JS_TAG_INT => {
                // SAFETY: the tag says it is an int.
                let i = unsafe { qjs::JS_VALUE_GET_INT(v) };
                self.out.push(INT);
                put_varint(self.out, zigzag(i.into()));
            }
            qjs::JS_TAG_FLOAT64 => {
                // SAFETY: the tag says it is a float.
                let f = unsafe { qjs::JS_VALUE_GET_FLOAT64(v) };
                self.out.push(F64);
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            // SAFETY (both): the tag says it is a bool.
            qjs::JS_TAG_BOOL => self.out.push(if unsafe { qjs::JS_VALUE_GET_INT(v) } != 0 {
                TRUE
            } else {
                FALSE
            }),
            qjs::JS_TAG_NULL => self.out.push(NULL),
            qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_UNINITIALIZED => self.out.push(UNDEFINED),
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => {
                self.out.push(STRING);
                self.string(v)?;
            }
            qjs::JS_TAG_SHORT_BIG_INT | qjs::JS_TAG_BIG_INT => self.bigint(v, tag)?,
            qjs::JS_TAG_SYMBOL => return Err(WireError::Unsupported("a symbol".into())),
            qjs::JS_TAG_OBJECT => self.object(v)?,
            other => {
                return Err(WireError::Unsupported(format!(
                    "an engine value of tag {other}"
                )))
            }
        }
        self.room(0)
    }

    /// A string's length and UTF-8 bytes (no tag).
    fn string(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        // A string too long for the limit fails before it is flattened and
        // encoded (its UTF-8 form is at least as long as its UTF-16 length).
        // SAFETY: `v` is a live value of this context.
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(v) };
        if tag == qjs::JS_TAG_STRING || tag == qjs::JS_TAG_STRING_ROPE {
            let mut units: i64 = 0;
            // SAFETY: a string's `length` is read without running JS and
            // cannot fail; `units` is written before the call returns.
            if unsafe { qjs::JS_GetLength(self.raw, v, &mut units) } == 0 {
                self.room(usize::try_from(units).unwrap_or(usize::MAX))?;
            }
        }
        let mut len: qjs::size_t = 0;
        // SAFETY: `v` is a live string (or any value: ToString is applied).
        let p = unsafe { qjs::JS_ToCStringLen2(self.raw, &mut len, v, false) };
        if p.is_null() {
            return Err(engine_error(self.ctx));
        }
        let s = CStr(self.raw, p, len as usize);
        self.room(len as usize + 10)?;
        put_varint(self.out, len as u64);
        let at = self.out.len();
        self.out.extend_from_slice(s.bytes());
        make_well_formed(&mut self.out[at..]);
        Ok(())
    }

    fn bigint(&mut self, v: qjs::JSValue, tag: i32) -> Result<(), WireError> {
        let (negative, mag) = if tag == qjs::JS_TAG_SHORT_BIG_INT {
            let mut i = 0i64;
            // SAFETY: `v` is a BigInt that fits 64 bits (a short one).
            if unsafe { qjs::JS_ToBigInt64(self.raw, &mut i, v) } < 0 {
                return Err(engine_error(self.ctx));
            }
            let m = i.unsigned_abs().to_le_bytes();
            let n = m.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            (i < 0, m[..n].to_vec())
        } else {
            // Larger: its hex digits (linear in the size).
            // SAFETY: a new reference to `v` for the safe API, dropped by it.
            let val = unsafe { Value::from_raw(self.ctx.clone(), qjs::JS_DupValue(self.raw, v)) };
            let hex: rquickjs::Result<String> = (|| {
                let proto: rquickjs::Object = self
                    .ctx
                    .globals()
                    .get::<_, rquickjs::Object>("BigInt")?
                    .get("prototype")?;
                let to_string: Function = proto.get("toString")?;
                to_string.call((rquickjs::function::This(val), 16))
            })();
            let hex = hex.map_err(|_| engine_error(self.ctx))?;
            parse_hex(&hex)
                .ok_or_else(|| WireError::Engine(format!("BigInt as hex gave {hex:?}")))?
        };
        self.room(mag.len() + 12)?;
        self.out.push(BIGINT);
        self.out.push(u8::from(negative));
        put_varint(self.out, mag.len() as u64);
        self.out.extend_from_slice(&mag);
        Ok(())
    }

    fn object(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        // SAFETY: the tag is OBJECT, so this is the object's pointer.
        let ptr = unsafe { qjs::JS_VALUE_GET_PTR(v) };
        if self.path.contains(&ptr) {
            return Err(WireError::Cycle);
        }
        if self.path.len() >= self.limits.max_depth {
            return Err(WireError::TooDeep {
                max: self.limits.max_depth,
                decoding: false,
            });
        }
        self.path.push(ptr);
        let r = self.object_kind(v);
        self.path.pop();
        r
    }

    fn object_kind(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        let unsupported = |what: &str| Err(WireError::Unsupported(what.into()));
        // SAFETY (this block): `v` is a live object of this context; these
        // predicates only read its class.
        unsafe {
            // The common kinds first: neither is a function or a Proxy.
            if qjs::JS_GetClassID(v) == JS_CLASS_OBJECT {
                // JS_CLASS_OBJECT: plain, or an instance of a JS class.
                return self.plain(v);
            }
            if qjs::JS_IsArray(v) {
                return self.array(v);
            }
            if qjs::JS_IsFunction(self.raw, v) {
                return unsupported("a function");
            }
            if qjs::JS_IsProxy(v) {
                return unsupported("a Proxy");
            }
            if qjs::JS_IsDate(v) {
                let mut ms = 0f64;
                if qjs::JS_ToFloat64(self.raw, &mut ms, v) < 0 {
                    return Err(engine_error(self.ctx));
                }
                self.out.push(DATE);
                self.out.extend_from_slice(&ms.to_le_bytes());
                return Ok(());
            }
            if qjs::JS_IsError(v) {
                return self.error(v);
            }
            let ta = qjs::JS_GetTypedArrayType(v);
            if ta >= 0 {
                if ta as u32 != qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT8
                    && ta as u32 != qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT8C
                {
                    return unsupported("a typed array other than Uint8Array");
                }
                let mut len: qjs::size_t = 0;
                let p = qjs::JS_GetUint8Array(self.raw, &mut len, v);
                return self.bytes(p, len as usize);
            }
            if qjs::JS_IsArrayBuffer(v) {
                let mut len: qjs::size_t = 0;
                let p = qjs::JS_GetArrayBuffer(self.raw, &mut len, v);
                return self.bytes(p, len as usize);
            }
            if qjs::JS_IsMap(v) || qjs::JS_IsWeakMap(v) {
                return unsupported("a Map (pass an object or an array of pairs)");
            }
            if qjs::JS_IsSet(v) || qjs::JS_IsWeakSet(v) {
                return unsupported("a Set (pass an array)");
            }
            if qjs::JS_IsPromise(v) {
                return unsupported("a Promise (await it first)");
            }
        }
        Err(WireError::Unsupported(format!(
            "an object of class {}",
            self.class_name(v)
        )))
    }

    /// Bytes the engine lent (`p` null: the buffer is detached or out of bounds).
    fn bytes(&mut self, p: *mut u8, len: usize) -> Result<(), WireError> {
        if p.is_null() {
            if self.ctx.has_exception() {
                return Err(engine_error(self.ctx));
            }
            if len != 0 {
                return Err(WireError::Unsupported("a detached buffer".into()));
            }
        }
        self.room(len + 11)?;
        self.out.push(BYTES);
        put_varint(self.out, len as u64);
        if len > 0 {
            // SAFETY: the engine says `len` bytes live at `p`; nothing runs
            // JS between getting them and this copy.
            self.out
                .extend_from_slice(unsafe { std::slice::from_raw_parts(p, len) });
        }
        Ok(())
    }

    fn array(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        let mut len = 0i64;
        // SAFETY: `v` is a live array.
        if unsafe { qjs::JS_GetLength(self.raw, v, &mut len) } < 0 {
            return Err(engine_error(self.ctx));
        }
        // Each item takes a byte at least: a huge (sparse) array fails here.
        let n = u32::try_from(len).unwrap_or(u32::MAX);
        self.room(n as usize + 6)?;
        self.out.push(ARRAY);
        put_varint(self.out, n.into());
        for i in 0..n {
            // SAFETY: `v` is live; the result is owned and freed by the guard.
            let item = Owned(self.raw, unsafe {
                qjs::JS_GetPropertyUint32(self.raw, v, i)
            });
            // SAFETY: reading the tag of a value.
            if unsafe { qjs::JS_IsException(item.1) } {
                return Err(engine_error(self.ctx));
            }
            self.value(item.1)?;
        }
        Ok(())
    }

    /// A JS_CLASS_OBJECT object: plain if its prototype is
    /// `Object.prototype` or null, else a class instance.
    fn plain(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        // SAFETY: `v` is a live, non-Proxy object; the prototype comes back
        // as a new reference, freed by the guard.
        let proto = Owned(self.raw, unsafe { qjs::JS_GetPrototype(self.raw, v) });
        // SAFETY: reading the tag / pointer of a value.
        let (tag, p) = unsafe {
            (
                qjs::JS_VALUE_GET_NORM_TAG(proto.1),
                qjs::JS_VALUE_GET_PTR(proto.1),
            )
        };
        if tag != qjs::JS_TAG_NULL && Some(p) != self.object_proto() {
            return Err(WireError::Unsupported(format!(
                "an instance of class {} (pass a plain object)",
                self.class_name(v)
            )));
        }
        self.out.push(OBJECT);
        self.props(v, &[])
    }

    /// `Object.prototype`'s pointer, read once per conversion.
    fn object_proto(&mut self) -> Option<*mut c_void> {
        if self.object_proto.is_none() {
            // SAFETY: the context is live; the class prototype comes back as a
            // new reference, freed by the guard (the context keeps its own, so
            // the pointer stays valid for the conversion).
            unsafe {
                let p = Owned(self.raw, qjs::JS_GetClassProto(self.raw, JS_CLASS_OBJECT));
                if qjs::JS_VALUE_GET_NORM_TAG(p.1) == qjs::JS_TAG_OBJECT {
                    self.object_proto = Some(qjs::JS_VALUE_GET_PTR(p.1));
                }
            }
        }
        self.object_proto
    }

    /// The own enumerable string-keyed properties of `v` (but `skip`), as
    /// an object body: count, then (key, value) pairs.
    fn props(&mut self, v: qjs::JSValue, skip: &[&str]) -> Result<(), WireError> {
        let mut tab = std::ptr::null_mut();
        let mut n = 0u32;
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
        // SAFETY: `v` is a live object; the table is freed by the guard.
        if unsafe { qjs::JS_GetOwnPropertyNames(self.raw, &mut tab, &mut n, v, flags) } < 0 {
            return Err(engine_error(self.ctx));
        }
        let props = Props(self.raw, tab, n);
        self.room(2 * n as usize + 5)?;
        // The count is patched in at the end (skipped keys are not counted).
        let at = self.out.len();
        self.out.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
        let mut count = 0u64;
        for atom in props.atoms() {
            if let Some(key) = self.keys.key(atom) {
                if skip.iter().any(|s| s.as_bytes() == key) {
                    continue;
                }
                self.room(key.len() + 10)?;
                const _: () = assert!(MAX_KEY < 0x80, "a cached key's length is one varint byte");
                self.out.push(key.len() as u8);
                self.out.extend_from_slice(key);
            } else {
                let mut len: qjs::size_t = 0;
                // SAFETY: `atom` is from the live table.
                let p = unsafe { qjs::JS_AtomToCStringLen(self.raw, &mut len, atom) };
                if p.is_null() {
                    return Err(engine_error(self.ctx));
                }
                let key = CStr(self.raw, p, len as usize);
                if skip.iter().any(|s| s.as_bytes() == key.bytes()) {
                    continue;
                }
                self.room(len as usize + 10)?;
                put_varint(self.out, len as u64);
                let k = self.out.len();
                self.out.extend_from_slice(key.bytes());
                drop(key);
                make_well_formed(&mut self.out[k..]);
                self.keys.put_key(atom, &self.out[k..]);
            }
            count += 1;
            // SAFETY: `v` is live (a getter may run); the result is owned by the guard.
            let item = Owned(self.raw, unsafe { qjs::JS_GetProperty(self.raw, v, atom) });
            // SAFETY: reading the tag of a value.
            if unsafe { qjs::JS_IsException(item.1) } {
                return Err(engine_error(self.ctx));
            }
            self.value(item.1)?;
        }
        for i in 0..5 {
            let more = if i < 4 { 0x80 } else { 0 };
            self.out[at + i] = ((count >> (7 * i)) & 0x7f) as u8 | more;
        }
        Ok(())
    }

    /// An Error: name, message, stack (when a string), then its other own
    /// enumerable properties.
    fn error(&mut self, v: qjs::JSValue) -> Result<(), WireError> {
        self.out.push(ERROR);
        let at = self.out.len();
        self.out.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
        let mut fixed = 0u64;
        for key in [c"name", c"message", c"stack"] {
            // SAFETY: `v` is live; the result is owned by the guard.
            let item = Owned(self.raw, unsafe {
                qjs::JS_GetPropertyStr(self.raw, v, key.as_ptr())
            });
            // SAFETY: reading the tag of a value.
            let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(item.1) };
            if tag == qjs::JS_TAG_EXCEPTION {
                return Err(engine_error(self.ctx));
            }
            if tag == qjs::JS_TAG_UNDEFINED || (key == c"stack" && tag != qjs::JS_TAG_STRING) {
                continue;
            }
            fixed += 1;
            let k = key.to_bytes();
            put_varint(self.out, k.len() as u64);
            self.out.extend_from_slice(k);
            self.out.push(STRING);
            self.string(item.1)?;
        }
        // Reuse the object writer for the rest, then merge the two counts.
        let body = self.out.len();
        self.props(v, &["name", "message", "stack"])?;
        let mut r = Reader::new(&self.out[body..]);
        let extra = r.varint().expect("written above");
        let count = fixed + extra;
        self.out.drain(body..body + 5);
        for i in 0..5 {
            let more = if i < 4 { 0x80 } else { 0 };
            self.out[at + i] = ((count >> (7 * i)) & 0x7f) as u8 | more;
        }
        Ok(())
    }

    /// `v.constructor.name` for messages, or `"(unknown)"`.
    fn class_name(&self, v: qjs::JSValue) -> String {
        // SAFETY: a new reference to `v` for the safe API, dropped by it.
        let val = unsafe { Value::from_raw(self.ctx.clone(), qjs::JS_DupValue(self.raw, v)) };
        let name = val
            .as_object()
            .and_then(|o| o.get::<_, rquickjs::Object>("constructor").ok())
            .and_then(|c| c.get::<_, String>("name").ok())
            .filter(|n| !n.is_empty());
        if self.ctx.has_exception() {
            let _ = self.ctx.catch();
        }
        name.unwrap_or_else(|| "(unknown)".into())
    }
}
