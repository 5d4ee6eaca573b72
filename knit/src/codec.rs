//! Payload encoding: any serde type, in bincode's wire format, via wincode.
//!
//! wincode is maintained and writes the same bytes as bincode 1 (fixed-width
//! little-endian integers, u64 length prefixes); `serde-wincode` bridges serde
//! types to it. Encoding goes straight into the destination slice (the ring or
//! a result buffer), so a payload is written once.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_wincode::SerdeCompat;

use crate::error::PayloadError;

/// How much a decoder may reserve before reading, per length prefix. The bytes
/// themselves are bounded by the payload cap; this only stops a hostile length
/// prefix from reserving more than any accepted payload could hold.
const PREALLOCATION_LIMIT: usize = 1 << 30;

fn config() -> impl wincode::config::Config {
    wincode::config::Configuration::default().with_preallocation_size_limit::<PREALLOCATION_LIMIT>()
}

/// Exact encoded size of `value`.
pub(crate) fn encoded_len<T: Serialize>(value: &T) -> Result<usize, PayloadError> {
    <SerdeCompat<T> as wincode::config::Serialize<_>>::serialized_size(value, config())
        .map(|n| n as usize)
        .map_err(|e| PayloadError::Encode(e.to_string()))
}

/// Encodes `value` into `dst`, which must be exactly `encoded_len(value)` long.
pub(crate) fn encode_into<T: Serialize>(value: &T, dst: &mut [u8]) -> Result<(), PayloadError> {
    let mut w: &mut [u8] = dst;
    <SerdeCompat<T> as wincode::config::Serialize<_>>::serialize_into(&mut w, value, config())
        .map_err(|e| PayloadError::Encode(e.to_string()))?;
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
    decode_with(src, config())
}

fn decode_with<T: DeserializeOwned, C: wincode::config::Config>(
    src: &[u8],
    _config: C,
) -> Result<T, PayloadError> {
    let mut r: &[u8] = src;
    let value = <SerdeCompat<T> as wincode::SchemaRead<'_, C>>::get(&mut r)
        .map_err(|e| PayloadError::Decode(e.to_string()))?;
    if !r.is_empty() {
        return Err(PayloadError::Decode(format!("{} trailing bytes", r.len())));
    }
    Ok(value)
}

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
        assert!(matches!(
            decode::<Vec<u8>>(&buf),
            Err(PayloadError::Decode(_))
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
