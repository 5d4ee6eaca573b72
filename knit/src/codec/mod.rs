//! Payload encoding: any serde type, in bincode's wire format, via wincode.
//!
//! wincode is maintained and writes the same bytes as bincode 1 (fixed-width
//! little-endian integers, u64 length prefixes); `serde-wincode` bridges serde
//! types to it. Encoding goes straight into the destination slice (the ring or
//! a result buffer), so a payload is written once.
//!
//! serde hands a `Vec<u8>` over one byte at a time (only `serde_bytes` types
//! ask for a block). A payload that *is* a `Vec<u8>` (a task's whole argument
//! or result) is therefore written and read here as one block copy, in the
//! same bytes serde would produce: a `u64` length, then the bytes. A
//! `Vec<u8>` nested in another type still goes through serde.
//!
//! # Nesting limit
//!
//! serde encodes and decodes a value by recursion, one stack frame or more
//! per level, so a deep enough value (`enum Nest { Leaf, Node(Box<Nest>) }`
//! 20,000 deep) would overflow the thread's stack and abort the process. A
//! payload may therefore nest at most [`MAX_DEPTH`] levels: a deeper argument
//! or result fails with [`PayloadError::Encode`] when sized or written, and
//! deeper bytes fail with [`PayloadError::Decode`], each saying "nested deeper
//! than 128 levels", before the stack is at risk. One level is one of: a
//! sequence (`Vec`, slice, set), a tuple, a tuple struct, a struct, a map, a
//! `Some`, a newtype struct, or an enum variant with data (newtype, tuple or
//! struct variant). Scalars, strings, bytes, `()`, unit structs, `None` and
//! unit variants are no level; `Box`, `Rc` and references are transparent. A
//! value's depth is the most levels nested one in another: `5u64` is 0,
//! `(1, 2)` 1, `vec![Some(1)]` 2, and a `Nest` of n `Node`s n. The encoder
//! and the decoder count alike, so whatever encodes also decodes.
//! ([`depth_ser`] and [`depth_de`] hold the counting adapters.) A type can
//! only recurse through newtype variants, newtype structs and `Option`
//! anyway: serde-wincode's compound serializers and accesses reborrow their
//! writer or reader, so recursion through a sequence, tuple, struct or map
//! makes an infinitely deep type and fails to compile.

mod depth_de;
mod depth_ser;

use std::cell::Cell;
use std::fmt;
use std::mem::ManuallyDrop;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_wincode::SerdeCompat;

use crate::error::PayloadError;
use depth_de::Limited;
use depth_ser::Depth;

/// How deeply an argument or result may nest: a value nested deeper fails
/// with `PayloadError::Encode` (at the sender) or `PayloadError::Decode` (at
/// the receiver) instead of overflowing a thread's stack.
///
/// A level is one sequence, tuple, struct, map, `Some`, newtype struct or
/// enum variant with data; scalars, strings, bytes, `None` and unit variants
/// add none, and `Box`/`Rc`/references are transparent. 128 is serde_json's
/// default recursion limit: deep enough for data, and it bounds the stack a
/// payload takes (about 100 bytes a level in a release build; 20,000 levels
/// overflowed a 2 MiB stack before this limit existed).
///
/// ```
/// assert_eq!(knit::MAX_DEPTH, 128);
/// ```
pub const MAX_DEPTH: usize = 128;

/// The error of a value nested deeper than [`MAX_DEPTH`] levels.
struct TooDeep;

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value nested deeper than {MAX_DEPTH} levels")
    }
}

/// An encoding error: wincode keeps only "serde error" of a serializer's own
/// message, so the depth limit says so through `exceeded`. (Cold and out of
/// line, as is [`decode_error`]: the formatting stays out of the hot path.)
#[cold]
#[inline(never)]
fn encode_error(e: wincode::error::WriteError, exceeded: &Cell<bool>) -> PayloadError {
    PayloadError::Encode(if exceeded.get() {
        TooDeep.to_string()
    } else {
        e.to_string()
    })
}

/// How much a decoder may reserve before reading, per length prefix. The bytes
/// themselves are bounded by the payload cap; this only stops a hostile length
/// prefix from reserving more than any accepted payload could hold.
const PREALLOCATION_LIMIT: usize = 1 << 30;

fn config() -> impl wincode::config::Config {
    wincode::config::Configuration::default().with_preallocation_size_limit::<PREALLOCATION_LIMIT>()
}

/// Bytes of a `u64` length prefix.
const LEN_PREFIX: usize = 8;

/// `value` itself, if `T` is `Vec<u8>`.
#[inline(always)]
fn as_byte_vec<T>(value: &T) -> Option<&Vec<u8>> {
    if !is_byte_vec::<T>() {
        return None;
    }
    // SAFETY: `T` is `Vec<u8>` (checked just above), so this is the same
    // reference at the same type.
    Some(unsafe { &*(value as *const T).cast::<Vec<u8>>() })
}

/// `bytes` as a `T`; `T` must be `Vec<u8>` (checked by the caller with
/// [`is_byte_vec`]).
#[inline(always)]
fn from_byte_vec<T>(bytes: Vec<u8>) -> T {
    assert!(is_byte_vec::<T>());
    let bytes = ManuallyDrop::new(bytes);
    // SAFETY: `T` is `Vec<u8>` (asserted), and `bytes` will not be dropped,
    // so ownership of its buffer moves to the value read here.
    unsafe { std::ptr::read((&*bytes as *const Vec<u8>).cast::<T>()) }
}

/// Whether `T` is `Vec<u8>`. (`typeid::of` erases lifetimes; `Vec<u8>` has
/// none, so no other type shares its id.) The test is on types only, so it
/// folds away in every other instantiation.
#[inline(always)]
fn is_byte_vec<T>() -> bool {
    typeid::of::<T>() == typeid::of::<Vec<u8>>()
}

/// Exact encoded size of `value`.
pub(crate) fn encoded_len<T: Serialize>(value: &T) -> Result<usize, PayloadError> {
    if let Some(bytes) = as_byte_vec(value) {
        return Ok(LEN_PREFIX + bytes.len());
    }
    let exceeded = Cell::new(false);
    let value = Depth::new(value, MAX_DEPTH, &exceeded);
    <SerdeCompat<Depth<'_, T>> as wincode::config::Serialize<_>>::serialized_size(&value, config())
        .map(|n| n as usize)
        .map_err(|e| encode_error(e, &exceeded))
}

/// Encodes `value` into `dst`, which must be exactly `encoded_len(value)` long.
pub(crate) fn encode_into<T: Serialize>(value: &T, dst: &mut [u8]) -> Result<(), PayloadError> {
    if let Some(bytes) = as_byte_vec(value) {
        if dst.len() != LEN_PREFIX + bytes.len() {
            return Err(PayloadError::Encode(
                "destination is not the announced size".into(),
            ));
        }
        let (prefix, body) = dst.split_at_mut(LEN_PREFIX);
        prefix.copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        body.copy_from_slice(bytes);
        return Ok(());
    }
    let mut w: &mut [u8] = dst;
    let exceeded = Cell::new(false);
    let value = Depth::new(value, MAX_DEPTH, &exceeded);
    <SerdeCompat<Depth<'_, T>> as wincode::config::Serialize<_>>::serialize_into(
        &mut w,
        &value,
        config(),
    )
    .map_err(|e| encode_error(e, &exceeded))?;
    if !w.is_empty() {
        return Err(PayloadError::Encode(
            "encoder wrote fewer bytes than it announced".into(),
        ));
    }
    Ok(())
}

/// Encodes `value` into `out` (replacing its contents), refusing more than `max` bytes.
pub(crate) fn encode_to_vec<T: Serialize>(
    value: &T,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), PayloadError> {
    let len = encoded_len(value)?;
    if len > max {
        return Err(PayloadError::TooLarge { len, max });
    }
    out.clear();
    out.resize(len, 0);
    encode_into(value, out)
}

/// Decodes a `T` that must use every byte of `src`.
pub(crate) fn decode<T: DeserializeOwned>(src: &[u8]) -> Result<T, PayloadError> {
    if is_byte_vec::<T>() {
        return decode_byte_vec(src).map(from_byte_vec);
    }
    decode_with(src, config())
}

/// A whole payload that is a `Vec<u8>`: its length prefix must account for
/// every byte after it (checked before anything is allocated).
fn decode_byte_vec(src: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let Some((prefix, body)) = src.split_first_chunk::<LEN_PREFIX>() else {
        return Err(PayloadError::Decode(format!(
            "a byte vector needs an {LEN_PREFIX}-byte length, got {} bytes",
            src.len()
        )));
    };
    let len = u64::from_le_bytes(*prefix);
    match usize::try_from(len) {
        Ok(len) if len == body.len() => Ok(body.to_vec()),
        Ok(len) if len < body.len() => Err(PayloadError::Decode(format!(
            "{} trailing bytes",
            body.len() - len
        ))),
        _ => Err(PayloadError::Decode(format!(
            "a byte vector of {len} bytes, but only {} follow",
            body.len()
        ))),
    }
}

/// What `SerdeCompat::<T>::get` does, with the deserializer wrapped in the
/// depth limit (and the deserializer's own error, whose text says what went
/// wrong, where wincode's would say only "serde error").
fn decode_with<T: DeserializeOwned, C: wincode::config::Config>(
    src: &[u8],
    _config: C,
) -> Result<T, PayloadError> {
    let mut r: &[u8] = src;
    let de = serde_wincode::Deserializer::<_, C>::new(&mut r);
    let value = T::deserialize(Limited::new(de, MAX_DEPTH)).map_err(decode_error)?;
    if !r.is_empty() {
        return Err(PayloadError::Decode(format!("{} trailing bytes", r.len())));
    }
    Ok(value)
}

/// A decoding error, in the decoder's own words.
#[cold]
#[inline(never)]
fn decode_error(e: impl fmt::Display) -> PayloadError {
    PayloadError::Decode(e.to_string())
}

#[cfg(test)]
mod depth_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_bincode_layout() {
        let value = (1i64, -1i64);
        let len = encoded_len(&value).unwrap();
        assert_eq!(len, 16);
        let mut buf = vec![0u8; len];
        encode_into(&value, &mut buf).unwrap();
        assert_eq!(
            buf,
            [1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(decode::<(i64, i64)>(&buf).unwrap(), value);
    }

    #[test]
    fn trailing_bytes_and_truncation_are_errors() {
        let mut buf = vec![0u8; 9];
        encode_into(&7u64, &mut buf[..8]).unwrap();
        assert!(matches!(decode::<u64>(&buf), Err(PayloadError::Decode(_))));
        assert!(matches!(
            decode::<u64>(&buf[..4]),
            Err(PayloadError::Decode(_))
        ));
    }

    #[test]
    fn a_hostile_length_prefix_does_not_allocate() {
        let mut buf = (u64::MAX / 2).to_le_bytes().to_vec();
        buf.extend_from_slice(b"abc");
        // The block path for a whole `Vec<u8>`, and serde's for other types.
        assert!(matches!(
            decode::<Vec<u8>>(&buf),
            Err(PayloadError::Decode(_))
        ));
        assert!(matches!(
            decode::<Box<[u8]>>(&buf),
            Err(PayloadError::Decode(_))
        ));
        assert!(matches!(
            decode::<String>(&buf),
            Err(PayloadError::Decode(_))
        ));
    }

    /// The block path writes and reads exactly what serde's element-by-element
    /// path does (`&[u8]` and `Box<[u8]>` take serde's path).
    #[test]
    fn a_byte_vector_payload_has_serdes_layout() {
        for len in [0usize, 1, 7, 8, 511, 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let n = encoded_len(&bytes).unwrap();
            assert_eq!(n, encoded_len(&bytes.as_slice()).unwrap());
            let mut fast = vec![0xAA; n];
            encode_into(&bytes, &mut fast).unwrap();
            let mut serde = vec![0x55; n];
            encode_into(&bytes.as_slice(), &mut serde).unwrap();
            assert_eq!(fast, serde, "len {len}");
            assert_eq!(decode::<Vec<u8>>(&serde).unwrap(), bytes);
            assert_eq!(*decode::<Box<[u8]>>(&fast).unwrap(), *bytes);
        }
    }

    #[test]
    fn a_byte_vector_payload_with_a_wrong_length_is_an_error() {
        let mut buf = vec![0u8; 8 + 3];
        encode_into(&vec![1u8, 2, 3], &mut buf).unwrap();
        // Truncated in the prefix, truncated in the body, one byte too many.
        for bad in [&buf[..5], &buf[..10]] {
            assert!(matches!(
                decode::<Vec<u8>>(bad),
                Err(PayloadError::Decode(_))
            ));
        }
        buf.push(0);
        assert_eq!(
            decode::<Vec<u8>>(&buf),
            Err(PayloadError::Decode("1 trailing bytes".into()))
        );
        // A destination of the wrong size is refused, not overrun.
        let mut short = vec![0u8; 10];
        assert!(matches!(
            encode_into(&vec![1u8, 2, 3], &mut short),
            Err(PayloadError::Encode(_))
        ));
    }

    #[test]
    fn the_cap_is_checked_before_encoding() {
        let mut out = Vec::new();
        let big = vec![0u8; 100];
        assert!(matches!(
            encode_to_vec(&big, &mut out, 50),
            Err(PayloadError::TooLarge { len: 108, max: 50 })
        ));
    }
}
