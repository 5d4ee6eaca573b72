//! `JsBigInt`: an arbitrary-size JS BigInt as sign and magnitude bytes.

use std::fmt;
use std::str::FromStr;

use crate::js::wire::{bigint_i128, magnitude_u128, WireError};

/// A JS BigInt of any size: a sign and a little-endian magnitude.
///
/// Sign and magnitude rather than `i128` plus a decimal string: it is exact
/// for every size JS allows (up to 2^20 bits), it is what the wire form
/// carries (so no conversion on the way), and the engine side needs only hex
/// digits, which are linear to produce, where decimal is quadratic.
///
/// ```
/// use knit::js::JsBigInt;
/// let big = JsBigInt::from(u64::MAX) ;
/// assert_eq!(big.to_string(), "18446744073709551615");
/// assert_eq!(big.to_i128(), Some(u64::MAX as i128));
/// let huge: JsBigInt = "-123456789012345678901234567890123456789012".parse()?;
/// assert!(huge.is_negative() && huge.to_i128().is_none());
/// assert_eq!(huge.to_string(), "-123456789012345678901234567890123456789012");
/// # Ok::<(), knit::js::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JsBigInt {
    negative: bool,
    magnitude: Vec<u8>,
}

impl JsBigInt {
    /// The BigInt with this sign and little-endian magnitude (zero is never negative).
    pub fn from_parts(negative: bool, magnitude_le: &[u8]) -> Self {
        let n = magnitude_le
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        JsBigInt {
            negative: negative && n > 0,
            magnitude: magnitude_le[..n].to_vec(),
        }
    }

    /// Whether it is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Its magnitude, little-endian, without high zero bytes (empty for zero).
    pub fn magnitude(&self) -> &[u8] {
        &self.magnitude
    }

    /// Its value, if it fits an `i128`.
    pub fn to_i128(&self) -> Option<i128> {
        bigint_i128(self.negative, &self.magnitude)
    }

    /// Its value, if it fits a `u128`.
    pub fn to_u128(&self) -> Option<u128> {
        if self.negative {
            return None;
        }
        magnitude_u128(&self.magnitude)
    }
}

impl From<i128> for JsBigInt {
    fn from(v: i128) -> Self {
        JsBigInt::from_parts(v < 0, &v.unsigned_abs().to_le_bytes())
    }
}

impl From<u128> for JsBigInt {
    fn from(v: u128) -> Self {
        JsBigInt::from_parts(false, &v.to_le_bytes())
    }
}

impl From<i64> for JsBigInt {
    fn from(v: i64) -> Self {
        i128::from(v).into()
    }
}

impl From<u64> for JsBigInt {
    fn from(v: u64) -> Self {
        u128::from(v).into()
    }
}

impl fmt::Display for JsBigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_decimal(self.negative, &self.magnitude))
    }
}

impl FromStr for JsBigInt {
    type Err = WireError;
    /// Decimal digits with an optional leading `-`.
    fn from_str(s: &str) -> Result<Self, WireError> {
        let (negative, mag) = parse_decimal(s)
            .ok_or_else(|| WireError::Malformed(format!("{s:?} is not a decimal integer")))?;
        Ok(JsBigInt::from_parts(negative, &mag))
    }
}

/// Little-endian bytes as u32 limbs, little-endian.
fn limbs(mag: &[u8]) -> Vec<u32> {
    mag.chunks(4)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect()
}

/// u32 limbs back to minimal little-endian bytes.
fn bytes(limbs: &[u32]) -> Vec<u8> {
    let mut out: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    let n = out.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    out.truncate(n);
    out
}

/// Decimal text (quadratic in the size: only for display and serde, never
/// on the engine path).
pub(crate) fn to_decimal(negative: bool, mag: &[u8]) -> String {
    let mut l = limbs(mag);
    let mut chunks = Vec::new();
    while l.iter().any(|&x| x != 0) {
        let mut rem = 0u64;
        for x in l.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*x);
            *x = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while l.last() == Some(&0) {
            l.pop();
        }
    }
    let mut s = String::from(if negative && !chunks.is_empty() {
        "-"
    } else {
        ""
    });
    match chunks.pop() {
        None => s.push('0'),
        Some(top) => {
            s.push_str(&top.to_string());
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
        }
    }
    s
}

/// `-?[0-9]+` as (negative, little-endian magnitude).
pub(crate) fn parse_decimal(s: &str) -> Option<(bool, Vec<u8>)> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut l: Vec<u32> = Vec::new();
    for chunk in digits.as_bytes().chunks(9) {
        let mul = 10u64.pow(chunk.len() as u32);
        let mut carry: u64 = chunk.iter().fold(0, |a, &d| a * 10 + u64::from(d - b'0'));
        for x in l.iter_mut() {
            let cur = u64::from(*x) * mul + carry;
            *x = cur as u32;
            carry = cur >> 32;
        }
        if carry != 0 {
            l.push(carry as u32);
        }
    }
    Some((negative, bytes(&l)))
}

/// `-?[0-9a-f]+` (what `BigInt.prototype.toString(16)` gives) as
/// (negative, little-endian magnitude).
pub(crate) fn parse_hex(s: &str) -> Option<(bool, Vec<u8>)> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len().div_ceil(2));
    for pair in digits.as_bytes().rchunks(2) {
        let mut b = 0u8;
        for &c in pair {
            b = (b << 4) | (c as char).to_digit(16)? as u8;
        }
        out.push(b);
    }
    let n = out.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    out.truncate(n);
    Some((negative, out))
}

/// Big-endian hex digits of a magnitude, with no leading zeros ("0" for zero).
pub(crate) fn to_hex(mag: &[u8]) -> String {
    let mut s = String::with_capacity(mag.len() * 2);
    for b in mag.iter().rev() {
        s.push_str(&format!("{b:02x}"));
    }
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trips_across_limb_boundaries() {
        for s in [
            "0",
            "1",
            "-1",
            "999999999",
            "1000000000",
            "4294967296",
            "-340282366920938463463374607431768211456",
            "123456789012345678901234567890123456789012345678901234567890",
        ] {
            let (neg, mag) = parse_decimal(s).unwrap();
            assert_eq!(to_decimal(neg, &mag), s);
        }
        assert_eq!(parse_decimal("12a"), None);
        assert_eq!(parse_decimal("-"), None);
        assert_eq!(parse_decimal(""), None);
    }

    #[test]
    fn hex_matches_the_integer() {
        let v: u128 = 0x1234_5678_9abc_def0_1122_3344_5566_7788;
        let (neg, mag) = parse_hex(&format!("-{v:x}")).unwrap();
        assert!(neg);
        assert_eq!(magnitude_u128(&mag), Some(v));
        assert_eq!(to_hex(&mag), format!("{v:x}"));
        assert_eq!(parse_hex("f"), Some((false, vec![15])));
        assert_eq!(parse_hex("0"), Some((false, vec![])));
        assert_eq!(parse_hex("xyz"), None);
        assert_eq!(to_hex(&[]), "0");
    }

    #[test]
    fn i128_extremes() {
        for v in [i128::MIN, i128::MAX, 0, -1] {
            let b = JsBigInt::from(v);
            assert_eq!(b.to_i128(), Some(v));
            assert_eq!(b.to_string(), v.to_string());
        }
        assert_eq!(JsBigInt::from(u128::MAX).to_i128(), None);
        assert_eq!(JsBigInt::from(u128::MAX).to_u128(), Some(u128::MAX));
        assert_eq!(JsBigInt::from(-1i64).to_u128(), None);
    }
}
