//! `JsValue`: a dynamic JS value on the Rust side, with serde impls.

use std::fmt;
use std::ops::Index;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use crate::js::bigint::{to_decimal, JsBigInt};
use crate::js::wire::{MAGIC_BIGINT, MAGIC_DATE, MAGIC_ERROR, MAGIC_JSVALUE, MAX_SAFE};

/// Any value a JS task takes or returns, for callers that do not want a
/// typed struct: `let v: JsValue = call.wait()?` reads whatever came back.
///
/// Through knit's JS wire form every variant survives both ways. Through
/// other serde formats (serde_json, …) it maps onto their data model:
/// `Undefined` and `Null` become null/unit, `Date` its ms, `BigInt` an
/// `i128` (or a decimal string when larger), `Error` a struct of
/// `name`, `message`, `stack`.
///
/// ```
/// use knit::js::{from_wire, to_wire, JsValue};
/// let v = JsValue::Object(vec![
///     ("id".into(), JsValue::Number(7.0)),
///     ("when".into(), JsValue::Date(1.7e12)),
///     ("big".into(), JsValue::BigInt((1u64 << 60).into())),
/// ]);
/// let mut wire = Vec::new();
/// to_wire(&v, &mut wire)?;
/// assert_eq!(from_wire::<JsValue>(&wire)?, v);
/// assert_eq!(v["id"], JsValue::Number(7.0));
/// assert_eq!(v["missing"], JsValue::Undefined);
/// # Ok::<(), knit::js::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JsValue {
    /// `undefined` (also what `()` becomes).
    #[default]
    Undefined,
    /// `null` (also what `None` becomes).
    Null,
    /// A boolean.
    Bool(bool),
    /// A Number: NaN, ±Infinity and -0 are kept.
    Number(f64),
    /// A BigInt of any size.
    BigInt(JsBigInt),
    /// A string (lone surrogates from JS arrive as U+FFFD).
    String(String),
    /// An array (holes arrive as `Undefined`).
    Array(Vec<JsValue>),
    /// A plain object: its own enumerable string-keyed properties, in JS's
    /// own order (integer-like keys ascending first, then insertion order).
    Object(Vec<(String, JsValue)>),
    /// A `Uint8Array` or `ArrayBuffer` (arrives in JS as a `Uint8Array`).
    Bytes(Vec<u8>),
    /// A `Date`: ms since the epoch (NaN for an invalid date).
    Date(f64),
    /// An `Error` (or subclass).
    Error {
        /// Its `name` (`"TypeError"`, …).
        name: String,
        /// Its `message`.
        message: String,
        /// Its `stack`, when it has one.
        stack: Option<String>,
    },
}

static UNDEFINED: JsValue = JsValue::Undefined;

impl JsValue {
    /// The value of `key` if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&JsValue> {
        match self {
            JsValue::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            JsValue::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// `value["key"]`: the property, or `Undefined` (as in JS).
impl Index<&str> for JsValue {
    type Output = JsValue;
    fn index(&self, key: &str) -> &JsValue {
        self.get(key).unwrap_or(&UNDEFINED)
    }
}

/// `value[i]`: the array item, or `Undefined` (as in JS).
impl Index<usize> for JsValue {
    type Output = JsValue;
    fn index(&self, i: usize) -> &JsValue {
        match self {
            JsValue::Array(items) => items.get(i).unwrap_or(&UNDEFINED),
            _ => &UNDEFINED,
        }
    }
}

impl From<&str> for JsValue {
    fn from(s: &str) -> Self {
        JsValue::String(s.into())
    }
}

impl From<String> for JsValue {
    fn from(s: String) -> Self {
        JsValue::String(s)
    }
}

impl From<f64> for JsValue {
    fn from(n: f64) -> Self {
        JsValue::Number(n)
    }
}

impl From<bool> for JsValue {
    fn from(b: bool) -> Self {
        JsValue::Bool(b)
    }
}

impl From<Vec<JsValue>> for JsValue {
    fn from(items: Vec<JsValue>) -> Self {
        JsValue::Array(items)
    }
}

/// An `i128` when it fits, else its decimal text (the wire form reads both
/// back as a BigInt because of the magic newtype around it).
struct BigIntRepr<'a>(&'a JsBigInt);

impl Serialize for BigIntRepr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.to_i128() {
            Some(v) => s.serialize_i128(v),
            None => s.serialize_str(&to_decimal(self.0.is_negative(), self.0.magnitude())),
        }
    }
}

struct ErrorRepr<'a> {
    name: &'a str,
    message: &'a str,
    stack: &'a Option<String>,
}

impl Serialize for ErrorRepr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Error", 2 + usize::from(self.stack.is_some()))?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("message", self.message)?;
        if let Some(stack) = self.stack {
            st.serialize_field("stack", stack)?;
        }
        st.end()
    }
}

impl Serialize for JsValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JsValue::Undefined => s.serialize_unit(),
            JsValue::Null => s.serialize_none(),
            JsValue::Bool(b) => s.serialize_bool(*b),
            JsValue::Number(n) => s.serialize_f64(*n),
            JsValue::BigInt(b) => s.serialize_newtype_struct(MAGIC_BIGINT, &BigIntRepr(b)),
            JsValue::String(v) => s.serialize_str(v),
            JsValue::Array(items) => s.collect_seq(items),
            JsValue::Object(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            JsValue::Bytes(b) => s.serialize_bytes(b),
            JsValue::Date(ms) => s.serialize_newtype_struct(MAGIC_DATE, ms),
            JsValue::Error {
                name,
                message,
                stack,
            } => s.serialize_newtype_struct(
                MAGIC_ERROR,
                &ErrorRepr {
                    name,
                    message,
                    stack,
                },
            ),
        }
    }
}

impl<'de> Deserialize<'de> for JsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The magic name tells knit's wire form to hand over undefined,
        // Date, BigInt and Error as enums; other formats see a newtype.
        d.deserialize_newtype_struct(MAGIC_JSVALUE, JsValueVisitor)
    }
}

struct JsValueVisitor;

fn int(v: i128) -> JsValue {
    if v.unsigned_abs() <= MAX_SAFE as u128 {
        JsValue::Number(v as f64)
    } else {
        JsValue::BigInt(v.into())
    }
}

/// The JS-only forms knit's wire form hands over as enum variants.
enum Special {
    Undefined,
    Date,
    BigInt,
    NegBigInt,
    Error,
}

impl<'de> Deserialize<'de> for Special {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Special;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JS value kind")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Special, E> {
                Ok(match v {
                    "Undefined" => Special::Undefined,
                    "Date" => Special::Date,
                    "BigInt" => Special::BigInt,
                    "NegBigInt" => Special::NegBigInt,
                    "Error" => Special::Error,
                    _ => return Err(E::unknown_variant(v, &["Undefined", "Date", "BigInt"])),
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A BigInt's magnitude, read as bytes.
struct Magnitude(Vec<u8>);

impl<'de> Deserialize<'de> for Magnitude {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Magnitude;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("BigInt magnitude bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Magnitude, E> {
                Ok(Magnitude(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

fn text(v: &JsValue) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl<'de> Visitor<'de> for JsValueVisitor {
    type Value = JsValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JS value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsValue, E> {
        Ok(JsValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<JsValue, E> {
        Ok(int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<JsValue, E> {
        Ok(match i128::try_from(v) {
            Ok(v) => int(v),
            Err(_) => JsValue::BigInt(v.into()),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsValue, E> {
        Ok(JsValue::String(v.into()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<JsValue, E> {
        Ok(JsValue::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<JsValue, E> {
        Ok(JsValue::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<JsValue, E> {
        Ok(JsValue::Bytes(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<JsValue, D::Error> {
        JsValue::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<JsValue, D::Error> {
        d.deserialize_any(JsValueVisitor)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<JsValue, A::Error> {
        // Capped: the hint comes from the bytes.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(JsValue::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<JsValue, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(entry) = map.next_entry::<String, JsValue>()? {
            entries.push(entry);
        }
        Ok(JsValue::Object(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<JsValue, A::Error> {
        use de::VariantAccess;
        let (kind, v) = data.variant::<Special>()?;
        Ok(match kind {
            Special::Undefined => {
                v.unit_variant()?;
                JsValue::Undefined
            }
            Special::Date => JsValue::Date(v.newtype_variant()?),
            Special::BigInt | Special::NegBigInt => {
                let Magnitude(m) = v.newtype_variant()?;
                JsValue::BigInt(JsBigInt::from_parts(matches!(kind, Special::NegBigInt), &m))
            }
            Special::Error => {
                let body: JsValue = v.newtype_variant()?;
                JsValue::Error {
                    name: text(&body["name"]).unwrap_or_else(|| "Error".into()),
                    message: text(&body["message"]).unwrap_or_default(),
                    stack: text(&body["stack"]),
                }
            }
        })
    }
}
