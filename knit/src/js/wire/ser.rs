//! The serde Serializer that writes any `T: Serialize` in the wire form.

use serde::ser::{self, Impossible, Serialize};

use super::*;
use crate::js::bigint;

/// Appends `value` to `out` in the wire form.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Item { id: u64, name: String }
/// let mut out = Vec::new();
/// knit::js::to_wire(&Item { id: 7, name: "pen".into() }, &mut out)?;
/// let back: knit::js::JsValue = knit::js::from_wire(&out)?;
/// assert_eq!(back["name"], knit::js::JsValue::from("pen"));
/// # Ok::<(), knit::js::WireError>(())
/// ```
pub fn to_wire<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    let r = value.serialize(&mut WireSerializer::new(out));
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// What the next value is, when `JsValue`'s impls said so (see `MAGIC_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    None,
    Date,
    BigInt,
    Error,
}

/// A serde `Serializer` appending the wire form to a `Vec<u8>`; most code
/// wants [`to_wire`].
#[derive(Debug)]
pub struct WireSerializer<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    magic: Magic,
}

impl<'a> WireSerializer<'a> {
    /// A serializer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        WireSerializer {
            out,
            depth: 0,
            magic: Magic::None,
        }
    }

    #[inline]
    fn magic(&mut self) -> Magic {
        std::mem::replace(&mut self.magic, Magic::None)
    }

    #[inline]
    fn enter(&mut self) -> Result<(), WireError> {
        one_level_deeper(&mut self.depth, false)
    }

    #[inline]
    fn int(&mut self, v: i128) -> Result<(), WireError> {
        if self.magic() != Magic::BigInt && v.unsigned_abs() <= MAX_SAFE as u128 {
            self.out.push(INT);
            put_varint(self.out, zigzag(v as i64));
        } else {
            let mag = v.unsigned_abs().to_le_bytes();
            let n = mag.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            self.bigint(v < 0, &mag[..n]);
        }
        Ok(())
    }

    fn bigint(&mut self, negative: bool, mag: &[u8]) {
        self.out.push(BIGINT);
        self.out.push(u8::from(negative && !mag.is_empty()));
        put_varint(self.out, mag.len() as u64);
        self.out.extend_from_slice(mag);
    }

    #[inline]
    fn str_body(&mut self, s: &str) {
        put_varint(self.out, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Starts an array or object of `len` items (`None`: counted and
    /// patched in at the end).
    fn compound(&mut self, tag: u8, len: Option<usize>) -> Result<Compound<'_, 'a>, WireError> {
        self.enter()?;
        self.out.push(tag);
        let at = self.out.len();
        let claimed = len.unwrap_or(0);
        let width = match len {
            Some(n) => {
                put_varint(self.out, n as u64);
                self.out.len() - at
            }
            None => {
                // Room for 2^35 items, patched with a padded varint.
                self.out.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
                5
            }
        };
        Ok(Compound {
            ser: self,
            at,
            width,
            claimed,
            count: 0,
            wrapped: false,
        })
    }

    /// `{"Variant": …}`: the outer object of a variant with data.
    fn variant_key(&mut self, variant: &str) -> Result<(), WireError> {
        self.enter()?;
        self.out.extend_from_slice(&[OBJECT, 1]);
        self.str_body(variant);
        Ok(())
    }
}

/// An array or object being written.
#[derive(Debug)]
pub struct Compound<'s, 'a> {
    ser: &'s mut WireSerializer<'a>,
    at: usize,
    width: usize,
    claimed: usize,
    count: usize,
    /// Inside a variant's `{"Variant": …}`, which closes too.
    wrapped: bool,
}

impl Compound<'_, '_> {
    fn finish(self) -> Result<(), WireError> {
        if self.count != self.claimed || self.width == 5 {
            let fits = self.width >= 10 || (self.count as u64) < 1u64 << (7 * self.width);
            if !fits {
                return Err(WireError::Serialize(format!(
                    "a sequence said it had {} items and had {}",
                    self.claimed, self.count
                )));
            }
            let v = self.count as u64;
            for i in 0..self.width {
                let more = if i + 1 < self.width { 0x80 } else { 0 };
                self.ser.out[self.at + i] = ((v >> (7 * i)) & 0x7f) as u8 | more;
            }
        }
        self.ser.depth -= 1 + usize::from(self.wrapped);
        Ok(())
    }
}

impl<'s, 'a> ser::Serializer for &'s mut WireSerializer<'a> {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), WireError> {
        self.magic();
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<(), WireError> {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), WireError> {
        self.int(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<(), WireError> {
        match i128::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => {
                self.magic();
                let mag = v.to_le_bytes();
                self.bigint(false, &mag);
                Ok(())
            }
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), WireError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), WireError> {
        let tag = if self.magic() == Magic::Date {
            DATE
        } else {
            F64
        };
        self.out.push(tag);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), WireError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), WireError> {
        if self.magic() == Magic::BigInt {
            let (negative, mag) = bigint::parse_decimal(v)
                .ok_or_else(|| WireError::Serialize(format!("{v:?} is not a decimal BigInt")))?;
            self.bigint(negative, &mag);
            return Ok(());
        }
        self.out.push(STRING);
        self.str_body(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), WireError> {
        self.magic();
        self.out.push(BYTES);
        put_varint(self.out, v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), WireError> {
        self.magic();
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), WireError> {
        self.magic();
        self.enter()?;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), WireError> {
        self.magic();
        self.out.push(UNDEFINED);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), WireError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), WireError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), WireError> {
        self.magic = match name {
            MAGIC_DATE => Magic::Date,
            MAGIC_BIGINT => Magic::BigInt,
            MAGIC_ERROR => Magic::Error,
            MAGIC_JSVALUE => return value.serialize(self),
            _ => Magic::None,
        };
        self.enter()?;
        value.serialize(&mut *self)?;
        self.magic = Magic::None;
        self.depth -= 1;
        Ok(())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), WireError> {
        self.magic();
        self.variant_key(variant)?;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'s, 'a>, WireError> {
        self.magic();
        self.compound(ARRAY, len)
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'a>, WireError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, WireError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, WireError> {
        self.magic();
        self.variant_key(variant)?;
        let mut c = self.compound(ARRAY, Some(len))?;
        c.wrapped = true;
        Ok(c)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'s, 'a>, WireError> {
        self.magic();
        self.compound(OBJECT, len)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, WireError> {
        let tag = if self.magic() == Magic::Error {
            ERROR
        } else {
            OBJECT
        };
        self.compound(tag, Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, WireError> {
        self.magic();
        self.variant_key(variant)?;
        let mut c = self.compound(OBJECT, Some(len))?;
        c.wrapped = true;
        Ok(c)
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        self.count += 1;
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WireError> {
        self.count += 1;
        key.serialize(KeySerializer(self.ser.out))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WireError> {
        self.count += 1;
        self.ser.str_body(key);
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WireError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

/// Writes a map key as an object key (no tag): strings as they are, and
/// like serde_json, integers, chars, bools and unit variants as their text.
struct KeySerializer<'o>(&'o mut Vec<u8>);

fn key_error() -> WireError {
    WireError::Serialize(
        "a map key must be a string, an integer, a char, a bool or a unit variant".into(),
    )
}

impl KeySerializer<'_> {
    fn text(self, s: &str) -> Result<(), WireError> {
        put_varint(self.0, s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

macro_rules! key_as_text {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), WireError> {
            self.text(&v.to_string())
        }
    )*};
}

macro_rules! key_refused {
    ($($f:ident$(: $t:ty)?),*) => {$(
        fn $f(self $(, _: $t)?) -> Result<(), WireError> {
            Err(key_error())
        }
    )*};
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = Impossible<(), WireError>;
    type SerializeTuple = Impossible<(), WireError>;
    type SerializeTupleStruct = Impossible<(), WireError>;
    type SerializeTupleVariant = Impossible<(), WireError>;
    type SerializeMap = Impossible<(), WireError>;
    type SerializeStruct = Impossible<(), WireError>;
    type SerializeStructVariant = Impossible<(), WireError>;

    key_as_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char);
    key_refused!(serialize_f32: f32, serialize_f64: f64, serialize_bytes: &[u8],
        serialize_none, serialize_unit);

    fn serialize_str(self, v: &str) -> Result<(), WireError> {
        self.text(v)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), WireError> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), WireError> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), WireError> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), WireError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), WireError> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, WireError> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, WireError> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, WireError> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, WireError> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, WireError> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, WireError> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, WireError> {
        Err(key_error())
    }
}
