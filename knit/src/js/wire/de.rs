//! The serde Deserializer that reads the wire form into any `T: Deserialize`.

use serde::de::value::{BorrowedBytesDeserializer, BorrowedStrDeserializer, F64Deserializer};
use serde::de::{self, DeserializeSeed, Deserializer as _, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::*;

/// Reads one value in the wire form from `bytes` (all of them).
///
/// ```
/// let mut out = Vec::new();
/// knit::js::to_wire(&(1u8, "two", [3.5]), &mut out)?;
/// let back: (u8, String, Vec<f64>) = knit::js::from_wire(&out)?;
/// assert_eq!(back, (1, "two".to_string(), vec![3.5]));
/// assert!(knit::js::from_wire::<u8>(&out).is_err());
/// # Ok::<(), knit::js::WireError>(())
/// ```
pub fn from_wire<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, WireError> {
    let mut d = WireDeserializer::new(bytes);
    let v = T::deserialize(&mut d)?;
    match d.r.left() {
        0 => Ok(v),
        n => Err(WireError::TrailingBytes(n)),
    }
}

/// A serde `Deserializer` over wire bytes; most code wants [`from_wire`].
#[derive(Debug)]
pub struct WireDeserializer<'de> {
    r: Reader<'de>,
    depth: usize,
    /// The next value is read for `JsValue`, which wants the JS-only forms
    /// (undefined, Date, BigInt, Error) told apart: they come as enums.
    js: bool,
}

impl<'de> WireDeserializer<'de> {
    /// A deserializer reading from the start of `bytes`.
    pub fn new(bytes: &'de [u8]) -> Self {
        WireDeserializer {
            r: Reader::new(bytes),
            depth: 0,
            js: false,
        }
    }

    fn enter(&mut self) -> Result<(), WireError> {
        one_level_deeper(&mut self.depth, true)
    }

    fn seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, WireError> {
        self.enter()?;
        let left = self.r.len(1)?;
        let mut access = Items { de: self, left };
        let v = visitor.visit_seq(&mut access)?;
        if access.left != 0 {
            return Err(WireError::Deserialize(format!(
                "the array has {} more items than expected",
                access.left
            )));
        }
        self.depth -= 1;
        Ok(v)
    }

    fn map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, WireError> {
        self.enter()?;
        let left = self.r.len(2)?;
        let mut access = Items { de: self, left };
        let v = visitor.visit_map(&mut access)?;
        if access.left != 0 {
            return Err(WireError::Deserialize(format!(
                "the object has {} more entries than expected",
                access.left
            )));
        }
        self.depth -= 1;
        Ok(v)
    }

    /// An integer field: an integer Number, an integral Number, or a BigInt.
    fn integer<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.r.peek()? {
            INT => {
                self.r.pos += 1;
                visitor.visit_i64(self.r.int()?)
            }
            F64 => {
                self.r.pos += 1;
                let f = self.r.f64()?;
                if !f.is_finite() || f.fract() != 0.0 {
                    return Err(WireError::Deserialize(format!(
                        "the number {f} is not an integer"
                    )));
                }
                // Exact: an integral f64 below 2^63 (or 2^64, 2^127) in
                // magnitude converts without loss.
                if f.abs() < 2f64.powi(63) {
                    visitor.visit_i64(f as i64)
                } else if (0.0..2f64.powi(64)).contains(&f) {
                    visitor.visit_u64(f as u64)
                } else if f.abs() < 2f64.powi(127) {
                    visitor.visit_i128(f as i128)
                } else {
                    Err(WireError::Deserialize(format!(
                        "the number {f} is too large for an integer"
                    )))
                }
            }
            _ => self.deserialize_any(visitor),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut WireDeserializer<'de> {
    type Error = WireError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        let js = std::mem::take(&mut self.js);
        let at = self.r.pos;
        match self.r.byte()? {
            UNDEFINED if js => visitor.visit_enum(Special::Undefined),
            UNDEFINED | NULL => visitor.visit_unit(),
            FALSE => visitor.visit_bool(false),
            TRUE => visitor.visit_bool(true),
            INT => visitor.visit_i64(self.r.int()?),
            F64 => visitor.visit_f64(self.r.f64()?),
            BIGINT => {
                let (negative, mag) = self.r.bigint()?;
                if js {
                    return visitor.visit_enum(Special::BigInt(negative, mag));
                }
                // The narrowest visit that holds it: serde's own visitors
                // take only their width and narrower.
                match bigint_i128(negative, mag) {
                    Some(v) => match (i64::try_from(v), u64::try_from(v)) {
                        (Ok(v), _) => visitor.visit_i64(v),
                        (_, Ok(v)) => visitor.visit_u64(v),
                        _ => visitor.visit_i128(v),
                    },
                    None => match magnitude_u128(mag) {
                        Some(v) if !negative => visitor.visit_u128(v),
                        _ => Err(WireError::Deserialize(format!(
                            "a BigInt of {} bytes does not fit a Rust integer",
                            mag.len()
                        ))),
                    },
                }
            }
            STRING => visitor.visit_borrowed_str(self.r.str()?),
            BYTES => {
                let n = self.r.len(1)?;
                visitor.visit_borrowed_bytes(self.r.take(n)?)
            }
            ARRAY => self.seq(visitor),
            OBJECT => self.map(visitor),
            DATE if js => visitor.visit_enum(Special::Date(self.r.f64()?)),
            DATE => visitor.visit_f64(self.r.f64()?),
            ERROR if js => visitor.visit_enum(Special::Error(self)),
            ERROR => self.map(visitor),
            tag => Err(WireError::BadTag { tag, offset: at }),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.integer(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        match self.r.peek()? {
            INT => {
                self.r.pos += 1;
                visitor.visit_f64(self.r.int()? as f64)
            }
            F64 | DATE => {
                self.r.pos += 1;
                visitor.visit_f64(self.r.f64()?)
            }
            _ => self.deserialize_any(visitor),
        }
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        match self.r.peek()? {
            NULL | UNDEFINED => {
                self.r.pos += 1;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, WireError> {
        if name == MAGIC_JSVALUE {
            self.js = true;
            return self.deserialize_any(visitor);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WireError> {
        match self.r.peek()? {
            STRING => {
                self.r.pos += 1;
                visitor.visit_enum(self.r.str()?.into_deserializer())
            }
            OBJECT => {
                self.r.pos += 1;
                if self.r.varint()? != 1 {
                    return Err(WireError::Deserialize(
                        "an enum variant with data must be an object with one key".into(),
                    ));
                }
                self.enter()?;
                let v = visitor.visit_enum(Variant(&mut *self))?;
                self.depth -= 1;
                Ok(v)
            }
            _ => Err(WireError::Deserialize(
                "an enum must be a string (a unit variant) or an object with one key".into(),
            )),
        }
    }

    /// `()` takes any value and ignores it, so a call whose result does not
    /// matter can be read as `()` whatever the script left (an eval's
    /// completion value, say).
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        <de::IgnoredAny as de::Deserialize>::deserialize(&mut *self)?;
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool char str string bytes byte_buf unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

/// The items of an array (values) or an object (key, value pairs).
struct Items<'a, 'de> {
    de: &'a mut WireDeserializer<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = WireError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, WireError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = WireError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, WireError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(Key(self.de.r.str()?)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, WireError> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// `{"Variant": value}`, the key and tag already read.
struct Variant<'a, 'de>(&'a mut WireDeserializer<'de>);

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = WireError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), WireError> {
        let key = self.0.r.str()?;
        Ok((seed.deserialize(Key(key))?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = WireError;
    fn unit_variant(self) -> Result<(), WireError> {
        de::Deserialize::deserialize(&mut *self.0)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, WireError> {
        seed.deserialize(&mut *self.0)
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, WireError> {
        de::Deserializer::deserialize_any(&mut *self.0, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WireError> {
        de::Deserializer::deserialize_any(&mut *self.0, visitor)
    }
}

/// The JS-only forms, handed to `JsValue`'s visitor as enum variants (no
/// other format produces these, so a plain object never becomes one).
enum Special<'a, 'de> {
    Undefined,
    Date(f64),
    BigInt(bool, &'de [u8]),
    Error(&'a mut WireDeserializer<'de>),
}

impl<'de> de::EnumAccess<'de> for Special<'_, 'de> {
    type Error = WireError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), WireError> {
        let name = match self {
            Special::Undefined => "Undefined",
            Special::Date(_) => "Date",
            Special::BigInt(false, _) => "BigInt",
            Special::BigInt(true, _) => "NegBigInt",
            Special::Error(_) => "Error",
        };
        let v = seed.deserialize(BorrowedStrDeserializer::<WireError>::new(name))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Special<'_, 'de> {
    type Error = WireError;
    fn unit_variant(self) -> Result<(), WireError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, WireError> {
        match self {
            Special::Undefined => Err(WireError::Deserialize("undefined has no value".into())),
            Special::Date(ms) => seed.deserialize(F64Deserializer::new(ms)),
            Special::BigInt(_, mag) => seed.deserialize(BorrowedBytesDeserializer::new(mag)),
            Special::Error(de) => seed.deserialize(ErrorBody(de)),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, WireError> {
        Err(WireError::Deserialize("not a tuple variant".into()))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, WireError> {
        Err(WireError::Deserialize("not a struct variant".into()))
    }
}

/// An Error's entries (its tag already read), as a map.
struct ErrorBody<'a, 'de>(&'a mut WireDeserializer<'de>);

impl<'de> de::Deserializer<'de> for ErrorBody<'_, 'de> {
    type Error = WireError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.0.map(visitor)
    }
    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// An object key: a string, which integer, bool and unit-variant keys are
/// parsed from (serde_json's rules).
struct Key<'de>(&'de str);

impl Key<'_> {
    fn parse<T: std::str::FromStr>(&self) -> Result<T, WireError> {
        self.0.parse().map_err(|_| {
            WireError::Deserialize(format!(
                "the key {:?} is not a {}",
                self.0,
                std::any::type_name::<T>()
            ))
        })
    }
}

macro_rules! parsed_key {
    ($($f:ident: $t:ty => $visit:ident),*) => {$(
        fn $f<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
            visitor.$visit(self.parse::<$t>()?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = WireError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        visitor.visit_borrowed_str(self.0)
    }
    parsed_key!(deserialize_bool: bool => visit_bool, deserialize_i8: i8 => visit_i8,
        deserialize_i16: i16 => visit_i16, deserialize_i32: i32 => visit_i32,
        deserialize_i64: i64 => visit_i64, deserialize_i128: i128 => visit_i128,
        deserialize_u8: u8 => visit_u8, deserialize_u16: u16 => visit_u16,
        deserialize_u32: u32 => visit_u32, deserialize_u64: u64 => visit_u64,
        deserialize_u128: u128 => visit_u128);
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        visitor.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, WireError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WireError> {
        visitor.visit_enum(self.0.into_deserializer())
    }
    forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}
