//! The wire form of JS payloads: a small self-describing tagged binary format.
//!
//! knit's Rust codec (wincode) is not self-describing, so it cannot tell a JS
//! engine what a payload holds. JS payloads use this format instead. The Rust
//! side writes it with [`to_wire`] from any `T: Serialize` and reads it with
//! [`from_wire`] into any `T: Deserialize`; the worker turns it straight into
//! engine values and back (`js::to_js`, `js::from_js`) without a tree in
//! between.
//!
//! # Layout
//!
//! A value is one tag byte and its payload. `varint` is unsigned LEB128 (at
//! most 10 bytes; padded forms are accepted, so lengths can be patched in
//! place); every length counts what follows it.
//!
//! | tag | value | payload |
//! |---|---|---|
//! | `0x00` | `undefined` | – |
//! | `0x01` | `null` | – |
//! | `0x02` / `0x03` | `false` / `true` | – |
//! | `0x04` | integer Number, \|n\| ≤ 2^53 | zigzag varint |
//! | `0x05` | Number | f64, 8 bytes little-endian (NaN, ±Infinity, -0 kept) |
//! | `0x06` | BigInt | sign byte (0 or 1), varint n, n bytes of magnitude, little-endian |
//! | `0x07` | string | varint n, n bytes of UTF-8 |
//! | `0x08` | bytes (`Uint8Array`) | varint n, n bytes |
//! | `0x09` | array | varint n, n values |
//! | `0x0a` | plain object | varint n, n × (varint k, k bytes of UTF-8 key, value) |
//! | `0x0b` | `Date` | f64 ms since the epoch, 8 bytes little-endian |
//! | `0x0c` | `Error` | as an object; `name`, `message`, `stack` and any other entries |
//!
//! # Mapping from serde
//!
//! Following serde_json where JS has no better form: a struct is an object
//! (fields in declaration order), a map an object (keys must be strings, or
//! integers, chars, bools or unit variants, written as their string form), a
//! sequence or tuple an array, `None` and unit structs `null`, `()`
//! `undefined`, a unit variant its name as a string, other variants
//! `{"Variant": value}`. Integers with \|n\| ≤ 2^53 are Numbers, larger ones
//! BigInts; `serde_bytes` values are bytes; `char` is a string.
//!
//! Reading: an integer field accepts an integer Number, a Number without a
//! fractional part, or a BigInt that fits it; a fractional Number is an error.
//! An `Option` is `None` for both `null` and `undefined`. A float field takes
//! a Number, an integer or a Date (its ms).
//!
//! # Limits
//!
//! Nesting (arrays, objects, and on the serde side also `Some`, newtypes and
//! variants) is limited to [`crate::MAX_DEPTH`] levels both ways. The decoder
//! takes untrusted bytes: every length is checked against the bytes left
//! before anything is allocated, so lying lengths fail fast.

mod de;
mod ser;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::error::PayloadError;

pub use de::{from_wire, WireDeserializer};
pub use ser::{to_wire, WireSerializer};

/// Counts one more level of nesting in `depth`: past `crate::MAX_DEPTH` it
/// is `WireError::TooDeep` (`decoding` says which way the value was going).
/// Shared by the serde halves and the engine walk, which count alike.
#[inline]
pub(crate) fn one_level_deeper(depth: &mut usize, decoding: bool) -> Result<(), WireError> {
    *depth += 1;
    if *depth > crate::MAX_DEPTH {
        return Err(WireError::TooDeep {
            max: crate::MAX_DEPTH,
            decoding,
        });
    }
    Ok(())
}

pub(crate) const UNDEFINED: u8 = 0x00;
pub(crate) const NULL: u8 = 0x01;
pub(crate) const FALSE: u8 = 0x02;
pub(crate) const TRUE: u8 = 0x03;
pub(crate) const INT: u8 = 0x04;
pub(crate) const F64: u8 = 0x05;
pub(crate) const BIGINT: u8 = 0x06;
pub(crate) const STRING: u8 = 0x07;
pub(crate) const BYTES: u8 = 0x08;
pub(crate) const ARRAY: u8 = 0x09;
pub(crate) const OBJECT: u8 = 0x0a;
pub(crate) const DATE: u8 = 0x0b;
pub(crate) const ERROR: u8 = 0x0c;

/// The largest integer a JS Number holds exactly (2^53); beyond it, integers
/// travel as BigInts.
pub(crate) const MAX_SAFE: i128 = 1 << 53;

/// The serde names by which `JsValue`'s impls reach this format's own
/// forms; other formats see plain newtypes.
pub(crate) const MAGIC_JSVALUE: &str = "$knit::js::JsValue";
pub(crate) const MAGIC_DATE: &str = "$knit::js::Date";
pub(crate) const MAGIC_BIGINT: &str = "$knit::js::BigInt";
pub(crate) const MAGIC_ERROR: &str = "$knit::js::Error";

/// Limits on a value converted from the engine to the wire.
///
/// ```
/// let l = knit::js::WireLimits::default();
/// assert_eq!(l.max_depth, knit::MAX_DEPTH);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// The most bytes the encoded value may take.
    pub max_bytes: usize,
    /// The most levels of arrays and objects one in another.
    pub max_depth: usize,
}

impl Default for WireLimits {
    /// 16 MiB (the pool's default `max_payload_bytes`) and [`crate::MAX_DEPTH`].
    fn default() -> Self {
        WireLimits {
            max_bytes: 16 * 1024 * 1024,
            max_depth: crate::MAX_DEPTH,
        }
    }
}

/// Why a value could not be written to or read from the wire form, or
/// converted to or from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes end in the middle of a value.
    Truncated,
    /// An unknown tag byte at this offset.
    BadTag {
        /// The tag.
        tag: u8,
        /// Its offset in the payload.
        offset: usize,
    },
    /// The bytes are not in the wire form (a bad varint, a length larger
    /// than the bytes left, an integer out of range, invalid UTF-8, …).
    Malformed(String),
    /// Bytes are left after the value.
    TrailingBytes(usize),
    /// Nesting deeper than the limit.
    TooDeep {
        /// The limit.
        max: usize,
        /// Whether this was found reading (wire to Rust or engine) rather than writing.
        decoding: bool,
    },
    /// The encoded value would exceed the byte limit.
    TooLarge {
        /// At least this many bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A JS value that has no wire form: a function, a symbol, a Map or Set,
    /// a class instance, a Proxy, a typed array other than `Uint8Array`, …
    Unsupported(String),
    /// A JS object that contains itself (the wire form is a tree).
    Cycle,
    /// The engine threw while converting (a getter threw, memory ran out).
    Engine(String),
    /// serde's message: a Rust value that cannot be written (a map with
    /// non-string keys, …).
    Serialize(String),
    /// serde's message: the wire value does not fit the Rust type.
    Deserialize(String),
}

impl WireError {
    /// Whether this error was found reading a payload (so it is a
    /// [`PayloadError::Decode`]) rather than writing one.
    pub fn is_decoding(&self) -> bool {
        match self {
            WireError::Truncated
            | WireError::BadTag { .. }
            | WireError::Malformed(_)
            | WireError::TrailingBytes(_)
            | WireError::Deserialize(_) => true,
            WireError::TooDeep { decoding, .. } => *decoding,
            _ => false,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("JS payload ends in the middle of a value"),
            WireError::BadTag { tag, offset } => {
                write!(
                    f,
                    "JS payload has an unknown tag {tag:#04x} at byte {offset}"
                )
            }
            WireError::Malformed(m) => write!(f, "malformed JS payload: {m}"),
            WireError::TrailingBytes(n) => write!(f, "JS payload has {n} bytes after its value"),
            WireError::TooDeep { max, .. } => write!(f, "nested deeper than {max} levels"),
            WireError::TooLarge { len, max } => {
                write!(
                    f,
                    "JS payload of at least {len} bytes exceeds the {max}-byte limit"
                )
            }
            WireError::Unsupported(what) => write!(f, "cannot pass {what} between Rust and JS"),
            WireError::Cycle => f.write_str("cannot pass a value that contains itself (a cycle)"),
            WireError::Engine(m) => write!(f, "the JS engine failed converting a value: {m}"),
            WireError::Serialize(m) | WireError::Deserialize(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for WireError {}

impl From<WireError> for PayloadError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::TooLarge { len, max } => PayloadError::TooLarge { len, max },
            e if e.is_decoding() => PayloadError::Decode(e.to_string()),
            e => PayloadError::Encode(e.to_string()),
        }
    }
}

impl From<WireError> for crate::CallError {
    fn from(e: WireError) -> Self {
        crate::CallError::Payload(e.into())
    }
}

impl serde::ser::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError::Serialize(msg.to_string())
    }
}

impl serde::de::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError::Deserialize(msg.to_string())
    }
}

/// Appends `v` as unsigned LEB128.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag: small magnitudes of either sign take few bytes.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over untrusted payload bytes: every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    #[inline]
    pub(crate) fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    #[inline]
    pub(crate) fn peek(&self) -> Result<u8, WireError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(WireError::Truncated)
    }

    #[inline]
    pub(crate) fn byte(&mut self) -> Result<u8, WireError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.left() {
            return Err(WireError::Truncated);
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        // One byte (lengths, small counts and ints): the common case.
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_long(),
        }
    }

    #[cold]
    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return Err(WireError::Malformed("varint overflows 64 bits".into()));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Malformed("varint longer than 10 bytes".into()))
    }

    /// A length of items each taking at least `min_item` bytes: larger than
    /// the bytes left can hold is malformed (so nothing is allocated for it).
    #[inline]
    pub(crate) fn len(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_item) <= self.left() => Ok(n),
            _ => Err(self.too_long(n)),
        }
    }

    #[cold]
    #[inline(never)]
    fn too_long(&self, n: u64) -> WireError {
        WireError::Malformed(format!("length {n} exceeds the {} bytes left", self.left()))
    }

    #[inline]
    pub(crate) fn f64(&mut self) -> Result<f64, WireError> {
        let b = self.take(8)?;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// An INT payload: in ±2^53, or malformed.
    #[inline]
    pub(crate) fn int(&mut self) -> Result<i64, WireError> {
        let v = unzigzag(self.varint()?);
        if i128::from(v).abs() > MAX_SAFE {
            return Err(WireError::Malformed(format!(
                "integer {v} beyond 2^53 (it must be a BigInt)"
            )));
        }
        Ok(v)
    }

    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str, WireError> {
        let n = self.len(1)?;
        let b = self.take(n)?;
        if b.is_ascii() {
            // SAFETY: ASCII is UTF-8 (checked word by word, cheaper than
            // full validation for the short keys and strings common here).
            return Ok(unsafe { std::str::from_utf8_unchecked(b) });
        }
        std::str::from_utf8(b).map_err(|_| WireError::Malformed("string is not UTF-8".into()))
    }

    /// A BIGINT payload: (negative, little-endian magnitude).
    pub(crate) fn bigint(&mut self) -> Result<(bool, &'a [u8]), WireError> {
        let sign = self.byte()?;
        if sign > 1 {
            return Err(WireError::Malformed(format!("BigInt sign byte {sign}")));
        }
        let n = self.len(1)?;
        Ok((sign == 1, self.take(n)?))
    }
}

/// A little-endian magnitude as a u128, if it fits.
pub(crate) fn magnitude_u128(mag: &[u8]) -> Option<u128> {
    let significant = mag.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if significant > 16 {
        return None;
    }
    let mut buf = [0u8; 16];
    buf[..significant].copy_from_slice(&mag[..significant]);
    Some(u128::from_le_bytes(buf))
}

/// A signed BigInt as an i128, if it fits.
pub(crate) fn bigint_i128(negative: bool, mag: &[u8]) -> Option<i128> {
    let m = magnitude_u128(mag)?;
    if negative {
        0i128.checked_sub_unsigned(m)
    } else {
        i128::try_from(m).ok()
    }
}
