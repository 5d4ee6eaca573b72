//! The wire form without an engine: serde both ways and hostile bytes.

use serde::{Deserialize, Serialize};

use super::*;
use crate::js::{JsBigInt, JsValue};

fn wire<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    to_wire(v, &mut out).unwrap();
    out
}

fn back<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, WireError> {
    from_wire(bytes)
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Dot,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Pair(i8, i8),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    note: Option<String>,
    shapes: Vec<Shape>,
    pair: (bool, char),
    unit: (),
    counts: std::collections::BTreeMap<u32, i64>,
}

#[test]
fn mapping_follows_the_documented_rules() {
    assert_eq!(wire(&()), [UNDEFINED]);
    assert_eq!(wire(&None::<u8>), [NULL]);
    assert_eq!(wire(&5u8), [INT, 10]);
    assert_eq!(wire(&-1i32), [INT, 1]);
    assert_eq!(wire(&Shape::Dot), [STRING, 3, b'D', b'o', b't']);
    assert_eq!(wire(&(1u8,))[..2], [ARRAY, 1]);
    assert_eq!(wire(&Shape::Circle(1.0))[..3], [OBJECT, 1, 6]);
    // 2^53 is still a Number; 2^53 + 1 is a BigInt.
    assert_eq!(wire(&(1u64 << 53))[0], INT);
    assert_eq!(
        wire(&((1u64 << 53) + 1)),
        [BIGINT, 0, 7, 1, 0, 0, 0, 0, 0, 0x20]
    );
    assert_eq!(wire(&i64::MIN)[..3], [BIGINT, 1, 8]);
    assert_eq!(wire(serde_bytes::Bytes::new(b"ab")), [BYTES, 2, b'a', b'b']);
}

#[test]
fn nested_types_round_trip() {
    let o = Order {
        id: u64::MAX,
        note: None,
        shapes: vec![
            Shape::Dot,
            Shape::Circle(-0.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(-1, 1),
        ],
        pair: (true, 'é'),
        unit: (),
        counts: [(1, -5), (20, i64::MAX)].into_iter().collect(),
    };
    assert_eq!(back::<Order>(&wire(&o)).unwrap(), o);
    let v: JsValue = back(&wire(&o)).unwrap();
    assert_eq!(v["id"], JsValue::BigInt(u64::MAX.into()));
    assert_eq!(v["unit"], JsValue::Undefined);
    assert_eq!(v["note"], JsValue::Null);
    assert_eq!(v["counts"]["20"], JsValue::BigInt(i64::MAX.into()));
    assert_eq!(v["shapes"][0], JsValue::from("Dot"));
    assert_eq!(v["shapes"][2]["Rect"]["h"], JsValue::Number(3.0));
    assert_eq!(back::<i128>(&wire(&i128::MIN)).unwrap(), i128::MIN);
    assert_eq!(back::<u128>(&wire(&u128::MAX)).unwrap(), u128::MAX);
}

#[test]
fn integers_from_numbers_and_bigints() {
    assert_eq!(back::<u64>(&wire(&3.0f64)).unwrap(), 3);
    assert_eq!(back::<i8>(&wire(&-0.0f64)).unwrap(), 0);
    let e = back::<u64>(&wire(&1.5f64)).unwrap_err();
    assert!(
        matches!(e, WireError::Deserialize(ref m) if m.contains("not an integer")),
        "{e}"
    );
    assert!(back::<u32>(&wire(&f64::NAN)).is_err());
    assert!(back::<u8>(&wire(&300u32)).is_err());
    assert!(back::<u64>(&wire(&-1i64)).is_err());
    // A BigInt into a field it fits, and not into one it does not.
    let big = wire(&JsValue::BigInt(5i64.into()));
    assert_eq!(big[0], BIGINT);
    assert_eq!(back::<u8>(&big).unwrap(), 5);
    let huge = wire(&JsValue::BigInt("-1".parse::<JsBigInt>().unwrap()));
    assert_eq!(back::<i64>(&huge).unwrap(), -1);
    let too_big: JsBigInt = "123456789012345678901234567890123456789012"
        .parse()
        .unwrap();
    let b = wire(&JsValue::BigInt(too_big.clone()));
    assert!(back::<i128>(&b).is_err());
    assert_eq!(back::<JsValue>(&b).unwrap(), JsValue::BigInt(too_big));
}

#[test]
fn every_js_value_round_trips() {
    let v = JsValue::Array(vec![
        JsValue::Undefined,
        JsValue::Null,
        JsValue::Bool(true),
        JsValue::Number(-0.0),
        JsValue::Number(f64::INFINITY),
        JsValue::BigInt(JsBigInt::from(-(1i128 << 100))),
        JsValue::String("\u{1F600} \u{FFFD}".into()),
        JsValue::Object(vec![("b".into(), 1.0.into()), ("a".into(), 2.0.into())]),
        JsValue::Bytes(vec![0, 255]),
        JsValue::Date(1.5e12),
        JsValue::Error {
            name: "TypeError".into(),
            message: "no".into(),
            stack: Some("at x".into()),
        },
    ]);
    let got: JsValue = back(&wire(&v)).unwrap();
    assert_eq!(got, v);
    assert!(matches!(got[3], JsValue::Number(z) if z == 0.0 && z.is_sign_negative()));
    let nan: JsValue = back(&wire(&f64::NAN)).unwrap();
    assert!(matches!(nan, JsValue::Number(n) if n.is_nan()));
}

#[test]
fn js_value_through_serde_json_uses_its_model() {
    let v = JsValue::Object(vec![
        ("d".into(), JsValue::Date(5.0)),
        ("u".into(), JsValue::Undefined),
        ("b".into(), JsValue::BigInt(7i64.into())),
    ]);
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"d":5.0,"u":null,"b":7}"#
    );
    let back: JsValue = serde_json::from_str(r#"{"x":[1,null,"s"]}"#).unwrap();
    assert_eq!(back["x"][1], JsValue::Null);
    assert_eq!(back["x"][0], JsValue::Number(1.0));
}

#[test]
fn map_keys_follow_serde_json() {
    let m: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    let mut out = Vec::new();
    assert!(matches!(
        to_wire(&m, &mut out),
        Err(WireError::Serialize(_))
    ));
    assert!(out.is_empty(), "a failed write leaves nothing behind");
    let m: std::collections::HashMap<bool, u8> = [(true, 1)].into_iter().collect();
    assert_eq!(
        back::<JsValue>(&wire(&m)).unwrap()["true"],
        JsValue::Number(1.0)
    );
    assert!(back::<std::collections::HashMap<u8, u8>>(&wire(
        &[("x", 1)]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    ))
    .is_err());
}

#[test]
fn depth_is_limited_both_ways() {
    #[derive(Serialize)]
    struct Nest(Vec<Nest>);
    let mut n = Nest(vec![]);
    for _ in 0..200 {
        n = Nest(vec![n]);
    }
    let mut out = Vec::new();
    assert!(matches!(
        to_wire(&n, &mut out),
        Err(WireError::TooDeep {
            decoding: false,
            ..
        })
    ));
    // 129 arrays one in another, as hostile bytes.
    let mut deep = [ARRAY, 1].repeat(129);
    deep.push(NULL);
    assert!(matches!(
        back::<JsValue>(&deep),
        Err(WireError::TooDeep { decoding: true, .. })
    ));
    let ok = &deep[2..];
    assert!(back::<JsValue>(ok).is_ok());
}

#[test]
fn hostile_bytes_are_typed_errors() {
    let cases: &[&[u8]] = &[
        &[],
        &[0xff],
        &[STRING, 5, b'a'],
        &[STRING, 2, 0xc3, 0x28],
        &[ARRAY, 0xff, 0xff, 0xff, 0xff, 0x0f],
        &[
            OBJECT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
        &[
            BYTES, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        &[
            INT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
        &[INT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
        &[F64, 1, 2],
        &[BIGINT, 2, 0],
        &[BIGINT, 0, 0xff, 0xff, 0xff, 0x7f],
        &[DATE],
        &[ERROR, 1, 1, b'x'],
        &[NULL, NULL],
    ];
    for bytes in cases {
        let e = back::<JsValue>(bytes).unwrap_err();
        let p = PayloadError::from(e.clone());
        assert!(
            matches!(p, PayloadError::Decode(_)),
            "{bytes:?}: {e} -> {p:?}"
        );
    }
    assert_eq!(
        back::<JsValue>(&[NULL, NULL]),
        Err(WireError::TrailingBytes(1))
    );
    assert_eq!(
        back::<JsValue>(&[0x42]),
        Err(WireError::BadTag {
            tag: 0x42,
            offset: 0
        })
    );
}

#[test]
fn padded_counts_decode() {
    // Unknown-length sequences are written with a padded count.
    struct Unsized;
    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq((0..3).filter(|i| i % 2 == 0))
        }
    }
    let w = wire(&Unsized);
    assert_eq!(w[..6], [ARRAY, 0x82, 0x80, 0x80, 0x80, 0x00]);
    assert_eq!(back::<Vec<u8>>(&w).unwrap(), vec![0, 2]);
}
