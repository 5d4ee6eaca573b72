//! Encoding with a nesting limit: a `Serialize` wrapper that counts levels.
//!
//! serde-wincode's size-counting serializer is private, so the limit cannot
//! wrap the serializer from outside. It wraps the *value* instead: [`Depth`]
//! hands whatever serializer it is given (the size pass's or the write pass's)
//! a proxy that forwards every call unchanged, and wraps each nested element,
//! field, key, variant content or `Some` content in a `Depth` one level down.
//! Scalars, strings and bytes pass straight through with no check: only a
//! compound can nest, so only entering one is counted.

use std::cell::Cell;
use std::fmt::Display;

use serde::ser::{self, Serialize, Serializer};

use super::TooDeep;

/// `value`, serialized with at most `remaining` more levels of nesting.
///
/// `exceeded` is set when the limit is hit: the size pass's errors reach the
/// codec only as wincode's `Custom("serde error")`, which has lost the text.
pub(super) struct Depth<'a, T: ?Sized> {
    value: &'a T,
    remaining: usize,
    exceeded: &'a Cell<bool>,
}

impl<'a, T: ?Sized> Depth<'a, T> {
    #[inline(always)]
    pub(super) fn new(value: &'a T, remaining: usize, exceeded: &'a Cell<bool>) -> Self {
        Depth {
            value,
            remaining,
            exceeded,
        }
    }
}

impl<T: Serialize + ?Sized> Serialize for Depth<'_, T> {
    #[inline(always)]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Proxy {
            inner: serializer,
            remaining: self.remaining,
            exceeded: self.exceeded,
        })
    }
}

/// The serializer a [`Depth`] value sees: `inner`, with a level budget.
struct Proxy<'a, S> {
    inner: S,
    remaining: usize,
    exceeded: &'a Cell<bool>,
}

/// The limit was hit: out of line, so the counting on the hot path is one
/// compare and a decrement.
#[cold]
#[inline(never)]
fn too_deep<E: ser::Error>(exceeded: &Cell<bool>) -> E {
    exceeded.set(true);
    E::custom(TooDeep)
}

impl<'a, S> Proxy<'a, S> {
    /// The budget for what a compound entered here holds, or the error if
    /// there is none left.
    #[inline(always)]
    fn enter<E: ser::Error>(&self) -> Result<usize, E> {
        match self.remaining.checked_sub(1) {
            Some(inner) => Ok(inner),
            None => Err(too_deep(self.exceeded)),
        }
    }
}

/// Scalar calls forward as they are: they cannot nest.
macro_rules! forward_scalars {
    ($($method:ident($ty:ty);)*) => {$(
        #[inline(always)]
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.inner.$method(v)
        }
    )*};
}

/// Entering a compound is one level: its elements get what is left.
macro_rules! forward_compounds {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $compound:ident;)*) => {$(
        #[inline(always)]
        fn $method(self, $($arg: $ty),*) -> Result<Self::$compound, S::Error> {
            let (remaining, exceeded) = (self.enter()?, self.exceeded);
            let inner = self.inner.$method($($arg),*)?;
            Ok(Compound::new(inner, remaining, exceeded))
        }
    )*};
}

impl<'a, S: Serializer> Serializer for Proxy<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq>;
    type SerializeTuple = Compound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'a, S::SerializeMap>;
    type SerializeStruct = Compound<'a, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant>;

    forward_scalars! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
    }

    /// serde-wincode's writer has no 128-bit integers (serde's default
    /// refuses them) although its sizer and reader have: written here as
    /// two little-endian `u64`s, low half first, which are the same 16 bytes.
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.serialize_u128(v as u128)
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut halves = self.inner.serialize_tuple(2)?;
        halves.serialize_element(&(v as u64))?;
        halves.serialize_element(&((v >> 64) as u64))?;
        halves.end()
    }

    #[inline(always)]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }

    #[inline(always)]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let remaining = self.enter()?;
        let value = Depth::new(value, remaining, self.exceeded);
        self.inner.serialize_some(&value)
    }

    #[inline(always)]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }

    #[inline(always)]
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }

    /// A unit variant holds nothing, so it is no level.
    #[inline(always)]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }

    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let remaining = self.enter()?;
        let value = Depth::new(value, remaining, self.exceeded);
        self.inner.serialize_newtype_struct(name, &value)
    }

    #[inline(always)]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let remaining = self.enter()?;
        let value = Depth::new(value, remaining, self.exceeded);
        self.inner
            .serialize_newtype_variant(name, index, variant, &value)
    }

    // A tuple or struct variant is one level (the variant and its fields), as
    // it is when decoding.
    forward_compounds! {
        serialize_seq(len: Option<usize>) -> SerializeSeq;
        serialize_tuple(len: usize) -> SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> SerializeTupleStruct;
        serialize_tuple_variant(
            name: &'static str, index: u32, variant: &'static str, len: usize
        ) -> SerializeTupleVariant;
        serialize_map(len: Option<usize>) -> SerializeMap;
        serialize_struct(name: &'static str, len: usize) -> SerializeStruct;
        serialize_struct_variant(
            name: &'static str, index: u32, variant: &'static str, len: usize
        ) -> SerializeStructVariant;
    }

    // `collect_seq` and `collect_map` keep serde's defaults, which go through
    // `serialize_seq`/`serialize_map` above and so count; forwarding them
    // would hand the elements to `inner` uncounted. serde-wincode keeps the
    // defaults too, so the bytes are the same.

    #[inline(always)]
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    #[inline(always)]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A compound `inner` whose elements each get `remaining` levels.
pub(super) struct Compound<'a, C> {
    inner: C,
    remaining: usize,
    exceeded: &'a Cell<bool>,
}

impl<'a, C> Compound<'a, C> {
    #[inline(always)]
    fn new(inner: C, remaining: usize, exceeded: &'a Cell<bool>) -> Self {
        Compound {
            inner,
            remaining,
            exceeded,
        }
    }
}

/// One compound trait whose element method takes `($($arg),* value)`.
macro_rules! compound {
    ($trait:ident, $method:ident $(, $arg:ident: $ty:ty)*) => {
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            #[inline(always)]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($arg: $ty,)*
                value: &T,
            ) -> Result<(), C::Error> {
                let value = Depth::new(value, self.remaining, self.exceeded);
                self.inner.$method($($arg,)* &value)
            }

            compound!(@extra $trait);

            #[inline(always)]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
    (@extra SerializeStruct) => { compound!(@skip); };
    (@extra SerializeStructVariant) => { compound!(@skip); };
    (@extra $trait:ident) => {};
    (@skip) => {
        #[inline(always)]
        fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
            self.inner.skip_field(key)
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, key: &'static str);
compound!(SerializeStructVariant, serialize_field, key: &'static str);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[inline(always)]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        let key = Depth::new(key, self.remaining, self.exceeded);
        self.inner.serialize_key(&key)
    }

    #[inline(always)]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = Depth::new(value, self.remaining, self.exceeded);
        self.inner.serialize_value(&value)
    }

    #[inline(always)]
    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), C::Error>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let key = Depth::new(key, self.remaining, self.exceeded);
        let value = Depth::new(value, self.remaining, self.exceeded);
        self.inner.serialize_entry(&key, &value)
    }

    #[inline(always)]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}
