//! Decoding with a nesting limit: serde adapters that count levels.
//!
//! [`Limited`] wraps whichever serde role it is given (the deserializer, a
//! visitor, a seed, a sequence, map, enum or variant access) and forwards
//! every call unchanged, wrapping whatever it hands back in turn. Every path
//! from the decoder back into a type's `Deserialize` code so passes through a
//! wrapper, and a level is counted where the decoder hands over something that
//! can hold a further value: a sequence (also tuples and structs), a map, a
//! `Some`, a newtype struct or a newtype variant's content. (A tuple or struct
//! variant's fields arrive as a sequence, so that variant counts once.)
//! Scalars, strings and bytes pass straight through with no check (and with
//! their visitor unwrapped: see `forward_deserialize`).

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::TooDeep;

/// `inner`, in whatever serde role it plays, with `remaining` more levels of
/// nesting allowed below it.
pub(super) struct Limited<X> {
    inner: X,
    remaining: usize,
}

impl<X> Limited<X> {
    #[inline(always)]
    pub(super) fn new(inner: X, remaining: usize) -> Self {
        Limited { inner, remaining }
    }

    /// `other` at this level.
    #[inline(always)]
    fn same<Y>(&self, other: Y) -> Limited<Y> {
        Limited::new(other, self.remaining)
    }

    /// `other` one level down, or the error if there is no level left.
    #[inline(always)]
    fn deeper<Y, E: de::Error>(&self, other: Y) -> Result<Limited<Y>, E> {
        match self.remaining.checked_sub(1) {
            Some(remaining) => Ok(Limited::new(other, remaining)),
            None => Err(too_deep()),
        }
    }
}

/// The limit was hit: out of line, so the counting on the hot path is one
/// compare and a decrement.
#[cold]
#[inline(never)]
fn too_deep<E: de::Error>() -> E {
    E::custom(TooDeep)
}

/// `deserialize_*` methods forward with their visitor `wrapped` at this level
/// where the inner deserializer may hand it something that nests, and `bare`
/// where it can only hand it a scalar. bincode's format is not self-describing:
/// serde-wincode reads the type asked for, so a request for a number, string,
/// bytes or unit gets just that `visit_*`. (Wrapping those visitors too cost
/// 6 ns in 40 on decoding a struct with a `String` and a `Vec<u32>`: the
/// string visitor wrapped inlines worse.)
macro_rules! forward_deserialize {
    ($how:ident: $($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[inline(always)]
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = forward_deserialize!(@$how self, visitor);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
    (@wrapped $self:ident, $visitor:ident) => { $self.same($visitor) };
    (@bare $self:ident, $visitor:ident) => { $visitor };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<D> {
    type Error = D::Error;

    forward_deserialize! { bare:
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
    }

    forward_deserialize! { wrapped:
        deserialize_any();
        deserialize_option();
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    #[inline(always)]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Visits of values that cannot nest forward as they are.
macro_rules! forward_visit {
    ($($method:ident($($v:ident: $ty:ty)?);)*) => {$(
        #[inline(always)]
        fn $method<E: de::Error>(self, $($v: $ty)?) -> Result<V::Value, E> {
            self.inner.$method($($v)?)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Limited<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(v: bool);
        visit_i8(v: i8);
        visit_i16(v: i16);
        visit_i32(v: i32);
        visit_i64(v: i64);
        visit_i128(v: i128);
        visit_u8(v: u8);
        visit_u16(v: u16);
        visit_u32(v: u32);
        visit_u64(v: u64);
        visit_u128(v: u128);
        visit_f32(v: f32);
        visit_f64(v: f64);
        visit_char(v: char);
        visit_str(v: &str);
        visit_borrowed_str(v: &'de str);
        visit_string(v: String);
        visit_bytes(v: &[u8]);
        visit_borrowed_bytes(v: &'de [u8]);
        visit_byte_buf(v: Vec<u8>);
        visit_none();
        visit_unit();
    }

    #[inline(always)]
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let deserializer = self.deeper(deserializer)?;
        self.inner.visit_some(deserializer)
    }

    #[inline(always)]
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let deserializer = self.deeper(deserializer)?;
        self.inner.visit_newtype_struct(deserializer)
    }

    #[inline(always)]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.deeper(seq)?;
        self.inner.visit_seq(seq)
    }

    #[inline(always)]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.deeper(map)?;
        self.inner.visit_map(map)
    }

    /// No level yet: the variant's content is counted by what it turns out to
    /// be (nothing for a unit variant).
    #[inline(always)]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.same(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Limited<T> {
    type Value = T::Value;

    #[inline(always)]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        let deserializer = self.same(deserializer);
        self.inner.deserialize(deserializer)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Limited<A> {
    type Error = A::Error;

    #[inline(always)]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.same(seed);
        self.inner.next_element_seed(seed)
    }

    #[inline(always)]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Limited<A> {
    type Error = A::Error;

    #[inline(always)]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.same(seed);
        self.inner.next_key_seed(seed)
    }

    #[inline(always)]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.same(seed);
        self.inner.next_value_seed(seed)
    }

    #[inline(always)]
    fn next_entry_seed<K, T>(
        &mut self,
        key: K,
        value: T,
    ) -> Result<Option<(K::Value, T::Value)>, A::Error>
    where
        K: DeserializeSeed<'de>,
        T: DeserializeSeed<'de>,
    {
        let (key, value) = (self.same(key), self.same(value));
        self.inner.next_entry_seed(key, value)
    }

    #[inline(always)]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Limited<A> {
    type Error = A::Error;
    type Variant = Limited<A::Variant>;

    #[inline(always)]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let remaining = self.remaining;
        let (tag, variant) = self.inner.variant_seed(Limited::new(seed, remaining))?;
        Ok((tag, Limited::new(variant, remaining)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Limited<A> {
    type Error = A::Error;

    #[inline(always)]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    /// The content of a newtype variant comes to no visitor callback (the
    /// seed reads it directly), so it is counted here.
    #[inline(always)]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.deeper(seed)?;
        self.inner.newtype_variant_seed(seed)
    }

    /// The fields come to the visitor as a sequence, which counts the level.
    #[inline(always)]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.same(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    /// The fields come to the visitor as a sequence (or map), which counts the
    /// level.
    #[inline(always)]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.same(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}
