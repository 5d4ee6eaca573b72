//! Tests of the nesting limit and of the adapters' faithfulness to the wire format.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::*;

/// serde-wincode without the depth adapters: what the codec did before them.
fn plain_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    use wincode::config::Serialize as _;
    let len = SerdeCompat::<T>::serialized_size(value, config()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len as usize];
    SerdeCompat::<T>::serialize_into(&mut buf[..], value, config()).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn plain_decode<T: DeserializeOwned>(src: &[u8]) -> Result<T, String> {
    fn with<T: DeserializeOwned, C: wincode::config::Config>(
        src: &[u8],
        _: C,
    ) -> Result<T, String> {
        let mut r = src;
        <SerdeCompat<T> as wincode::SchemaRead<'_, C>>::get(&mut r).map_err(|e| e.to_string())
    }
    with(src, config())
}

/// The codec through its adapters, both passes.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, PayloadError> {
    let mut buf = vec![0u8; encoded_len(value)?];
    encode_into(value, &mut buf)?;
    Ok(buf)
}

/// `value` encodes to the bytes the plain path writes, and decodes back equal
/// through both paths.
fn same_as_plain<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let plain = plain_encode(value).unwrap();
    assert_eq!(encoded_len(value).unwrap(), plain.len(), "{value:?}");
    assert_eq!(encode(value).unwrap(), plain, "{value:?}");
    assert_eq!(&decode::<T>(&plain).unwrap(), value);
    assert_eq!(&plain_decode::<T>(&plain).unwrap(), value);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shapes {
    Unit,
    Newtype(u16),
    Tuple(u8, String),
    Struct { a: i32, b: Option<Box<u64>> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(i8, char);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    scores: BTreeMap<String, Vec<u32>>,
    shape: Shapes,
    maybe: Option<Option<u8>>,
    unit: Unit,
    meters: Meters,
    pair: Pair,
    nested: Vec<Vec<(u16, bool)>>,
    blob: Bytes,
    wide: i64,
}

/// Bytes as one block, the way `serde_bytes` asks for them.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Serializes through `collect_str`, and whether the format is human readable
/// (as its `bool`, both ways): all must reach serde-wincode unchanged.
#[derive(Debug, PartialEq)]
struct Probe(String, bool);

impl Serialize for Probe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Shown<'a>(&'a str);
        impl Serialize for Shown<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self.0)
            }
        }
        let human = s.is_human_readable();
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&Shown(&self.0))?;
        t.serialize_element(&human)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let human = d.is_human_readable();
        let (text, _) = <(String, bool)>::deserialize(d)?;
        Ok(Probe(text, human))
    }
}

/// A sequence that keeps the length hint the decoder gave it (serde's `Vec`
/// reserves by it): the adapter must pass the hint on.
#[derive(Debug, PartialEq)]
struct Hinted(Vec<u8>, Option<usize>);

impl Serialize for Hinted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hinted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hinted;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Hinted, A::Error> {
                let hint = seq.size_hint();
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Hinted(items, hint))
            }
        }
        d.deserialize_seq(V)
    }
}

#[test]
fn the_adapters_write_and_read_the_plain_bytes() {
    let record = Record {
        id: 7,
        name: "knit ✓".into(),
        tags: vec!["a".into(), String::new(), "ccc".into()],
        scores: [("x".to_string(), vec![1, 2]), ("y".into(), vec![])]
            .into_iter()
            .collect(),
        shape: Shapes::Struct {
            a: -3,
            b: Some(Box::new(9)),
        },
        maybe: Some(None),
        unit: Unit,
        meters: Meters(1.5),
        pair: Pair(-1, 'é'),
        nested: vec![vec![], vec![(1, true), (2, false)]],
        blob: Bytes(vec![0, 1, 2, 255]),
        wide: i64::MIN,
    };
    same_as_plain(&record);
    for shape in [
        Shapes::Unit,
        Shapes::Newtype(65535),
        Shapes::Tuple(0, "x".into()),
        Shapes::Struct { a: 1, b: None },
    ] {
        same_as_plain(&shape);
    }
    same_as_plain(&(1i64, -1i64));
    same_as_plain(&(Some(3u32), None::<u32>, ((), 'z', 0.25f32)));
    same_as_plain(&vec![vec![vec![1u8]], vec![]]);
    same_as_plain(&Some(vec![Some("s".to_string()), None]));
    same_as_plain(&Box::<[u16]>::from([1, 2, 3]));
    same_as_plain(&[5u64; 4]);
    same_as_plain(&Hinted(vec![4, 5, 6], Some(3)));
    let probe = Probe("42".into(), false);
    same_as_plain(&probe);
    assert_eq!(
        encode(&probe).unwrap(),
        plain_encode(&("42", false)).unwrap()
    );
}

/// serde-wincode's writer has no `serialize_i128` (serde's default refuses
/// it), while its sizer and its reader handle one: the serializing adapter
/// writes the 16 little-endian bytes bincode's format has for them.
#[test]
fn wide_integers_cross_as_sixteen_little_endian_bytes() {
    for value in [(i128::MIN, u128::MAX), (-1, 1), (i128::MAX, 0)] {
        let n = encoded_len(&value).unwrap();
        assert_eq!(n, 32);
        let mut buf = vec![0u8; n];
        encode_into(&value, &mut buf).unwrap();
        let mut bytes = value.0.to_le_bytes().to_vec();
        bytes.extend_from_slice(&value.1.to_le_bytes());
        assert_eq!(buf, bytes);
        assert_eq!(decode::<(i128, u128)>(&bytes).unwrap(), value);
    }
}

/// Borrowed strings and bytes reach the visitor as borrowed (the codec's
/// `decode` wants owned types, so this calls the adapter directly).
#[test]
fn borrowed_visits_are_forwarded() {
    fn with<C: wincode::config::Config>(src: &[u8], _: C) -> (&str, &[u8]) {
        let mut r = src;
        let de = serde_wincode::Deserializer::<_, C>::new(&mut r);
        <(&str, &[u8])>::deserialize(Limited::new(de, MAX_DEPTH)).unwrap()
    }
    let bytes = plain_encode(&("borrowed", Bytes(b"raw".to_vec()))).unwrap();
    let (s, b) = with(&bytes, config());
    assert_eq!((s, b), ("borrowed", &b"raw"[..]));
    assert!(std::ptr::eq(s.as_ptr(), bytes[8..].as_ptr()));
}

/// A chain of `Node`s: one level each (a newtype variant).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Nest {
    Leaf,
    Node(Box<Nest>),
}

impl Nest {
    fn deep(n: usize) -> Nest {
        (0..n).fold(Nest::Leaf, |inner, _| Nest::Node(Box::new(inner)))
    }

    /// bincode's bytes of `deep(n)`: variant indexes as `u32`s.
    fn bytes(n: usize) -> Vec<u8> {
        let mut bytes = [1u8, 0, 0, 0].repeat(n);
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes
    }
}

/// The derived drop would recurse once per level, and overflow the test's
/// stack on the chains built here.
impl Drop for Nest {
    fn drop(&mut self) {
        // Each level is emptied before it is dropped, so no drop goes deeper
        // than one `Node(Box(Leaf))`.
        let Nest::Node(child) = self else { return };
        let mut next = std::mem::replace(&mut **child, Nest::Leaf);
        while let Nest::Node(child) = &mut next {
            let grandchild = std::mem::replace(&mut **child, Nest::Leaf);
            next = grandchild;
        }
    }
}

fn is_depth_error(e: &PayloadError) -> bool {
    let text = match e {
        PayloadError::Encode(text) | PayloadError::Decode(text) => text,
        PayloadError::TooLarge { .. } => return false,
    };
    *text == format!("a value nested deeper than {MAX_DEPTH} levels")
}

#[test]
fn bytes_nested_20000_deep_are_a_decode_error_not_a_stack_overflow() {
    let r = decode::<Nest>(&Nest::bytes(20_000));
    assert!(
        matches!(&r, Err(e @ PayloadError::Decode(_)) if is_depth_error(e)),
        "{r:?}"
    );
}

/// Miri takes minutes to build and free 100,000 boxes; the code under test
/// is the same at any depth past the limit.
const DEEP: usize = if cfg!(miri) { 1_000 } else { 100_000 };

#[test]
fn a_value_nested_100000_deep_is_an_encode_error_not_a_stack_overflow() {
    let deep = Nest::deep(DEEP);
    let r = encoded_len(&deep);
    assert!(
        matches!(&r, Err(e @ PayloadError::Encode(_)) if is_depth_error(e)),
        "{r:?}"
    );
    // The write pass has its own count (it is also called on its own).
    let mut buf = Nest::bytes(DEEP);
    let r = encode_into(&deep, &mut buf);
    assert!(
        matches!(&r, Err(e @ PayloadError::Encode(_)) if is_depth_error(e)),
        "{r:?}"
    );
    let r = encode_to_vec(&deep, &mut Vec::new(), usize::MAX);
    assert!(
        matches!(&r, Err(e @ PayloadError::Encode(_)) if is_depth_error(e)),
        "{r:?}"
    );
}

#[test]
fn exactly_max_depth_levels_pass_and_one_more_fails() {
    let ok = Nest::deep(MAX_DEPTH);
    assert_eq!(encode(&ok).unwrap(), Nest::bytes(MAX_DEPTH));
    assert_eq!(decode::<Nest>(&Nest::bytes(MAX_DEPTH)).unwrap(), ok);
    let over = Nest::deep(MAX_DEPTH + 1);
    assert!(encoded_len(&over).is_err_and(|e| is_depth_error(&e)));
    let mut buf = Nest::bytes(MAX_DEPTH + 1);
    assert!(encode_into(&over, &mut buf).is_err_and(|e| is_depth_error(&e)));
    assert!(decode::<Nest>(&Nest::bytes(MAX_DEPTH + 1)).is_err_and(|e| is_depth_error(&e)));
}

/// Each kind of compound around a `Nest`. (serde-wincode's compound
/// serializers and accesses reborrow their writer or reader, one type deeper
/// per element, so a type cannot recurse through them: it fails to compile.
/// Only recursion through newtype variants, newtype structs and `Option`
/// compiles, and `Nest` provides the depth here.)
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Around {
    Tuple(Nest, u8),
    Struct { next: Nest },
    Newtype(Nest),
    Unit,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NewtypeStruct(Nest);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TupleStruct(u8, Nest);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Fields {
    before: u8,
    next: Nest,
}

/// `wrap` adds `levels` around a `Nest`: with the `Nest` as deep as leaves
/// exactly `MAX_DEPTH` in all, the value encodes and decodes; one `Node`
/// more and the encoder refuses it, and the decoder refuses its (plain)
/// bytes. So every kind of level counts as the module docs say, and the
/// encoder and the decoder agree.
fn counts<W, F>(levels: usize, wrap: F)
where
    W: Serialize + DeserializeOwned + PartialEq + Debug,
    F: Fn(Nest) -> W,
{
    let ok = wrap(Nest::deep(MAX_DEPTH - levels));
    let bytes = encode(&ok).unwrap();
    assert_eq!(bytes, plain_encode(&ok).unwrap());
    assert_eq!(decode::<W>(&bytes).unwrap(), ok);
    let over = wrap(Nest::deep(MAX_DEPTH - levels + 1));
    let r = encode(&over);
    assert!(r.as_ref().is_err_and(is_depth_error), "{levels}: {r:?}");
    let r = decode::<W>(&plain_encode(&over).unwrap());
    assert!(r.as_ref().is_err_and(is_depth_error), "{levels}: {r:?}");
}

#[test]
fn every_kind_of_level_counts_the_same_both_ways() {
    counts(0, |n| n);
    counts(1, |n| vec![n]);
    counts(1, |n| Box::<[Nest]>::from([Nest::Leaf, n]));
    counts(1, |n| (7u8, n));
    counts(1, |n| [n]);
    counts(1, |n| BTreeMap::from([(1u8, n)]));
    counts(1, |n| BTreeMap::from([(n, 1u8)]));
    counts(1, Some);
    counts(1, NewtypeStruct);
    counts(1, |n| TupleStruct(3, n));
    counts(1, |next| Fields { before: 2, next });
    counts(1, |n| Around::Tuple(n, 5));
    counts(1, |next| Around::Struct { next });
    counts(1, Around::Newtype);
    counts(2, |n| Some(vec![n]));
    counts(3, |n| {
        vec![Around::Unit, Around::Struct { next: n }]
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>()
    });
}

/// Hostile bytes inside nested values still fail cleanly: a huge inner
/// length (nothing is reserved for it up front) and truncation at every byte.
#[test]
fn hostile_nested_inputs_are_decode_errors() {
    let mut bytes = 1u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&(u64::MAX / 4).to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3]);
    let r = decode::<Vec<Vec<u64>>>(&bytes);
    assert!(matches!(r, Err(PayloadError::Decode(_))), "{r:?}");
    let good = encode(&(vec![Some(Nest::deep(3))], "tail")).unwrap();
    for end in 0..good.len() {
        let r = decode::<(Vec<Option<Nest>>, String)>(&good[..end]);
        assert!(matches!(r, Err(PayloadError::Decode(_))), "{end}: {r:?}");
    }
}
