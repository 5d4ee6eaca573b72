//! JS values both ways, typed (serde) and as `JsValue`: every kind the wire form carries, and the ones it refuses.
#![cfg(feature = "js")]

use std::collections::BTreeMap;

use knit::js::{JsBigInt, JsModule, JsOptions, JsValue};
use knit::{create_pool, CallError, Pool, PoolOptions};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// `id` returns its argument; `describe` says what JS received, precisely
/// enough to tell the kinds apart (`-0` from `0`, a BigInt from a Number,
/// a plain object from a class instance, ...); `make` returns the value
/// named by its argument.
const VALUES: &str = r#"
export const id = (x) => x;
export function describe(x) {
    if (x === undefined) return "undefined";
    if (x === null) return "null";
    if (typeof x === "number") {
        if (Number.isNaN(x)) return "number NaN";
        if (Object.is(x, -0)) return "number -0";
        return "number " + String(x);
    }
    if (typeof x === "bigint") return "bigint " + x.toString();
    if (typeof x === "string") return "string " + JSON.stringify(x) + " " + x.length;
    if (typeof x === "boolean") return "boolean " + x;
    if (Array.isArray(x)) return "array [" + x.map(describe).join(", ") + "]";
    if (x instanceof Uint8Array) return "Uint8Array " + Array.from(x).join(",");
    if (x instanceof Date) return "Date " + x.getTime();
    if (x instanceof Error) {
        return "Error " + x.constructor.name + " " + x.name + " " + JSON.stringify(x.message)
            + (x.stack === undefined ? "" : " stack " + JSON.stringify(x.stack));
    }
    if (Object.getPrototypeOf(x) === Object.prototype) {
        return "object {" + Object.keys(x).map((k) => k + ": " + describe(x[k])).join(", ") + "}";
    }
    return "other " + Object.prototype.toString.call(x);
}
class Point { constructor() { this.x = 1; } }
export function make(what) {
    switch (what) {
        case "undefined": return undefined;
        case "null": return null;
        case "nan": return NaN;
        case "inf": return Infinity;
        case "-inf": return -Infinity;
        case "-0": return -0;
        case "big": return 2n ** 64n + 5n;
        case "-big": return -(2n ** 127n);
        case "huge": return 2n ** 200n + 1n;
        case "small-bigint": return 5n;
        case "lone": return "a\uD800b";
        case "lone-low": return "\uDC00";
        case "pair": return "\uD83D\uDE00";
        case "ordered": { const o = { b: 1, a: 2 }; o[10] = 3; o[2] = 4; o.z = 5; return o; }
        case "nested": return { list: [1, [2, { deep: [null, undefined] }]], holes: [1, , 3] };
        case "u8": return new Uint8Array([1, 2, 255]);
        case "buffer": return new Uint8Array([9, 8, 7]).buffer;
        case "date": return new Date(1700000000123);
        case "bad-date": return new Date(NaN);
        case "type-error": return new TypeError("bad type");
        case "custom-error": { const e = new Error("custom"); e.name = "MyError"; return e; }
        case "function": return () => 1;
        case "symbol": return Symbol("s");
        case "map": return new Map([[1, 2]]);
        case "set": return new Set([1]);
        case "instance": return new Point();
        case "cycle": { const o = { a: 1 }; o.self = o; return o; }
        case "array-cycle": { const a = [1]; a.push(a); return a; }
        case "nested-function": return { ok: 1, f() {} };
        case "promise-of-map": return Promise.resolve(new Map());
        case "int16": return new Int16Array([1]);
        default: throw new Error("make: unknown " + what);
    }
}
"#;

fn pool() -> Pool {
    create_pool(PoolOptions {
        threads: 1,
        js: Some(JsOptions {
            modules: vec![JsModule::source("v", VALUES)],
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap()
}

/// What JS's `describe` says about `arg` (sent as the one argument).
fn describe<A: Serialize>(pool: &Pool, arg: A) -> String {
    pool.js("v", "describe").call(arg).wait().unwrap()
}

/// `make(what)` read as a `JsValue`.
fn make(pool: &Pool, what: &str) -> JsValue {
    pool.js("v", "make").call(what).wait().unwrap()
}

/// `make(what)` read as `T`.
fn make_as<T: serde::de::DeserializeOwned>(pool: &Pool, what: &str) -> Result<T, CallError> {
    pool.js("v", "make").call(what).wait()
}

#[test]
fn undefined_null_and_unit_types() {
    let pool = pool();
    // Rust to JS: () is undefined, None is null, a unit struct null.
    assert_eq!(describe(&pool, ()), "undefined");
    assert_eq!(describe(&pool, None::<u32>), "null");
    assert_eq!(describe(&pool, Some(3u32)), "number 3");
    assert_eq!(describe(&pool, JsValue::Undefined), "undefined");
    assert_eq!(describe(&pool, JsValue::Null), "null");
    // No argument at all is undefined too.
    let none: String = pool.js("v", "describe").apply(()).wait().unwrap();
    assert_eq!(none, "undefined");
    // JS to Rust.
    assert_eq!(make(&pool, "undefined"), JsValue::Undefined);
    assert_eq!(make(&pool, "null"), JsValue::Null);
    let unit: () = make_as(&pool, "undefined").unwrap();
    assert_eq!(unit, ());
    assert_eq!(make_as::<Option<u32>>(&pool, "null").unwrap(), None);
    assert_eq!(make_as::<Option<u32>>(&pool, "undefined").unwrap(), None);
    // Both survive a round trip as `JsValue`.
    let back: JsValue = pool.js("v", "id").call(JsValue::Undefined).wait().unwrap();
    assert_eq!(back, JsValue::Undefined);
    let back: JsValue = pool.js("v", "id").call(JsValue::Null).wait().unwrap();
    assert_eq!(back, JsValue::Null);
}

#[test]
fn booleans_and_special_numbers() {
    let pool = pool();
    assert_eq!(describe(&pool, true), "boolean true");
    assert_eq!(describe(&pool, false), "boolean false");
    assert_eq!(describe(&pool, f64::NAN), "number NaN");
    assert_eq!(describe(&pool, f64::INFINITY), "number Infinity");
    assert_eq!(describe(&pool, f64::NEG_INFINITY), "number -Infinity");
    assert_eq!(describe(&pool, -0.0f64), "number -0");
    assert_eq!(describe(&pool, 0.0f64), "number 0");
    assert_eq!(describe(&pool, 1.5f64), "number 1.5");
    assert_eq!(describe(&pool, -7i32), "number -7");
    assert_eq!(describe(&pool, JsValue::Number(-0.0)), "number -0");

    assert!(make_as::<f64>(&pool, "nan").unwrap().is_nan());
    assert_eq!(make_as::<f64>(&pool, "inf").unwrap(), f64::INFINITY);
    assert_eq!(make_as::<f64>(&pool, "-inf").unwrap(), f64::NEG_INFINITY);
    let z = make_as::<f64>(&pool, "-0").unwrap();
    assert!(z == 0.0 && z.is_sign_negative(), "{z}");
    match make(&pool, "nan") {
        JsValue::Number(n) => assert!(n.is_nan()),
        other => panic!("{other:?}"),
    }
    match make(&pool, "-0") {
        JsValue::Number(n) => assert!(n == 0.0 && n.is_sign_negative()),
        other => panic!("{other:?}"),
    }
    assert_eq!(make(&pool, "-inf"), JsValue::Number(f64::NEG_INFINITY));
    // Round trips keep them.
    let id = pool.js("v", "id");
    let back: (bool, f64, f64) = id.call((true, f64::INFINITY, -0.0)).wait().unwrap();
    assert!(back.0 && back.1 == f64::INFINITY && back.2.is_sign_negative());
    let nan: f64 = id.call(f64::NAN).wait().unwrap();
    assert!(nan.is_nan());
    // A fractional Number does not read as an integer.
    let frac: Result<i64, CallError> = id.call(1.5).wait();
    assert!(matches!(frac, Err(CallError::Payload(_))), "{frac:?}");
}

#[test]
fn integers_beyond_2_pow_53_travel_as_bigints() {
    let pool = pool();
    let id = pool.js("v", "id");
    // Up to 2^53 an integer is a Number; past it a BigInt.
    assert_eq!(describe(&pool, 1i64 << 53), "number 9007199254740992");
    assert_eq!(describe(&pool, (1i64 << 53) + 1), "bigint 9007199254740993");
    assert_eq!(describe(&pool, u64::MAX), "bigint 18446744073709551615");
    assert_eq!(
        describe(&pool, i128::MIN),
        "bigint -170141183460469231731687303715884105728"
    );
    assert_eq!(
        describe(&pool, u128::MAX),
        "bigint 340282366920938463463374607431768211455"
    );
    // Round trips, typed.
    for v in [i64::MAX, i64::MIN, (1 << 53) + 1, -(1 << 53) - 1, 0, -1] {
        let back: i64 = id.call(v).wait().unwrap();
        assert_eq!(back, v);
    }
    let back: u128 = id.call(u128::MAX).wait().unwrap();
    assert_eq!(back, u128::MAX);
    let back: i128 = id.call(i128::MIN).wait().unwrap();
    assert_eq!(back, i128::MIN);
    // JS to Rust.
    assert_eq!(make_as::<u128>(&pool, "big").unwrap(), (1u128 << 64) + 5);
    assert_eq!(make_as::<i128>(&pool, "-big").unwrap(), i128::MIN);
    assert_eq!(make_as::<u8>(&pool, "small-bigint").unwrap(), 5);
    // Too big for the type: a payload error, not a wrapped value.
    assert!(matches!(
        make_as::<u64>(&pool, "big"),
        Err(CallError::Payload(_))
    ));
    // As JsValue: a BigInt stays a BigInt, whatever its size.
    assert_eq!(
        make(&pool, "big"),
        JsValue::BigInt(JsBigInt::from((1u128 << 64) + 5))
    );
    assert_eq!(make(&pool, "small-bigint"), JsValue::BigInt(5i64.into()));
    let huge = make(&pool, "huge");
    let expected: JsBigInt = "1606938044258990275541962092341162602522202993782792835301377"
        .parse()
        .unwrap();
    assert_eq!(huge, JsValue::BigInt(expected.clone()));
    assert_eq!(
        describe(&pool, JsValue::BigInt(expected)),
        "bigint 1606938044258990275541962092341162602522202993782792835301377"
    );
    let neg: JsValue = id
        .call(JsValue::BigInt(JsBigInt::from(-(1i128 << 100))))
        .wait()
        .unwrap();
    assert_eq!(neg, JsValue::BigInt(JsBigInt::from(-(1i128 << 100))));
    // A large integer read as a JsValue from Rust's side is a BigInt too.
    let v: JsValue = id.call(u64::MAX).wait().unwrap();
    assert_eq!(v, JsValue::BigInt(u64::MAX.into()));
}

#[test]
fn strings_and_lone_surrogates() {
    let pool = pool();
    assert_eq!(describe(&pool, "héllo"), "string \"héllo\" 5");
    // An astral character is two UTF-16 units in JS.
    assert_eq!(describe(&pool, "😀"), "string \"😀\" 2");
    assert_eq!(describe(&pool, ""), "string \"\" 0");
    assert_eq!(describe(&pool, 'x'), "string \"x\" 1");
    let text = "nul\0 tab\t line\n quote\" 中文 😀";
    let back: String = pool.js("v", "id").call(text).wait().unwrap();
    assert_eq!(back, text);
    // A surrogate pair is the character it encodes.
    assert_eq!(make_as::<String>(&pool, "pair").unwrap(), "😀");
    // The wire form's rule: a lone surrogate from JS arrives as U+FFFD (what
    // String.prototype.toWellFormed does), one code unit for one.
    assert_eq!(make_as::<String>(&pool, "lone").unwrap(), "a\u{FFFD}b");
    assert_eq!(make_as::<String>(&pool, "lone-low").unwrap(), "\u{FFFD}");
    assert_eq!(make(&pool, "lone"), JsValue::String("a\u{FFFD}b".into()));
    // Inside an object (keys too).
    let o: BTreeMap<String, String> = pool.eval(r#"({ ["k\uDFFF"]: "v\uD800" })"#).wait().unwrap();
    assert_eq!(
        o.into_iter().collect::<Vec<_>>(),
        [("k\u{FFFD}".to_string(), "v\u{FFFD}".to_string())]
    );
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Order {
    zeta: u32,
    alpha: String,
    tags: Vec<String>,
    note: Option<String>,
}

#[test]
fn structs_tuples_arrays_and_plain_objects() {
    let pool = pool();
    let order = Order {
        zeta: 1,
        alpha: "a".into(),
        tags: vec!["x".into(), "y".into()],
        note: None,
    };
    // A struct is a plain object, fields in declaration order; None is null.
    assert_eq!(
        describe(&pool, &order),
        r#"object {zeta: number 1, alpha: string "a" 1, tags: array [string "x" 1, string "y" 1], note: null}"#
    );
    let back: Order = pool.js("v", "id").call(&order).wait().unwrap();
    assert_eq!(back, order);
    // A tuple is an array.
    assert_eq!(
        describe(&pool, (1u8, "two", false)),
        r#"array [number 1, string "two" 3, boolean false]"#
    );
    assert_eq!(describe(&pool, Vec::<u32>::new()), "array []");
    // A map is an object.
    let map: BTreeMap<&str, i32> = [("k", 1)].into();
    assert_eq!(describe(&pool, map), "object {k: number 1}");
    // JS's own key order: integer-like keys ascending, then insertion order.
    let ordered = make(&pool, "ordered");
    let JsValue::Object(entries) = &ordered else {
        panic!("{ordered:?}")
    };
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["2", "10", "b", "a", "z"]);
    assert_eq!(ordered["10"], JsValue::Number(3.0));
    // A JsValue object keeps its order into JS and back.
    let obj = JsValue::Object(vec![
        ("z".into(), JsValue::Number(1.0)),
        (
            "a".into(),
            JsValue::Array(vec![JsValue::Bool(true), JsValue::Undefined]),
        ),
        ("m".into(), JsValue::String("s".into())),
    ]);
    assert_eq!(
        describe(&pool, &obj),
        r#"object {z: number 1, a: array [boolean true, undefined], m: string "s" 1}"#
    );
    let back: JsValue = pool.js("v", "id").call(&obj).wait().unwrap();
    assert_eq!(back, obj);
    // Nested, with holes arriving as undefined.
    let nested = make(&pool, "nested");
    assert_eq!(
        nested,
        JsValue::Object(vec![
            (
                "list".into(),
                JsValue::Array(vec![
                    JsValue::Number(1.0),
                    JsValue::Array(vec![
                        JsValue::Number(2.0),
                        JsValue::Object(vec![(
                            "deep".into(),
                            JsValue::Array(vec![JsValue::Null, JsValue::Undefined])
                        )])
                    ])
                ])
            ),
            (
                "holes".into(),
                JsValue::Array(vec![
                    JsValue::Number(1.0),
                    JsValue::Undefined,
                    JsValue::Number(3.0)
                ])
            ),
        ])
    );
    // A JS object reads into a struct.
    let o: Order = pool
        .eval(r#"({ alpha: "q", zeta: 9, tags: [], note: "n", extra: 1 })"#)
        .wait()
        .unwrap();
    assert_eq!(
        o,
        Order {
            zeta: 9,
            alpha: "q".into(),
            tags: vec![],
            note: Some("n".into())
        }
    );
}

#[test]
fn bytes_both_ways() {
    let pool = pool();
    assert_eq!(
        describe(&pool, ByteBuf::from(vec![1u8, 2, 255])),
        "Uint8Array 1,2,255"
    );
    assert_eq!(
        describe(&pool, JsValue::Bytes(vec![0, 128])),
        "Uint8Array 0,128"
    );
    assert_eq!(describe(&pool, ByteBuf::new()), "Uint8Array ");
    // A plain Vec<u8> is an array of numbers (serde's default), not bytes.
    assert_eq!(describe(&pool, vec![1u8, 2]), "array [number 1, number 2]");
    assert_eq!(
        make_as::<ByteBuf>(&pool, "u8").unwrap().into_vec(),
        [1, 2, 255]
    );
    assert_eq!(make(&pool, "u8"), JsValue::Bytes(vec![1, 2, 255]));
    // An ArrayBuffer arrives as bytes too.
    assert_eq!(make(&pool, "buffer"), JsValue::Bytes(vec![9, 8, 7]));
    assert_eq!(
        make_as::<ByteBuf>(&pool, "buffer").unwrap().into_vec(),
        [9, 8, 7]
    );
    let big = ByteBuf::from((0..=255u8).cycle().take(100_000).collect::<Vec<_>>());
    let back: ByteBuf = pool.js("v", "id").call(&big).wait().unwrap();
    assert_eq!(back, big);
}

#[test]
fn dates_both_ways() {
    let pool = pool();
    assert_eq!(describe(&pool, JsValue::Date(1.5e12)), "Date 1500000000000");
    assert_eq!(make(&pool, "date"), JsValue::Date(1_700_000_000_123.0));
    match make(&pool, "bad-date") {
        JsValue::Date(ms) => assert!(ms.is_nan()),
        other => panic!("{other:?}"),
    }
    // A float reads a Date as its ms.
    assert_eq!(make_as::<f64>(&pool, "date").unwrap(), 1_700_000_000_123.0);
    let back: JsValue = pool.js("v", "id").call(JsValue::Date(-1.0)).wait().unwrap();
    assert_eq!(back, JsValue::Date(-1.0));
}

#[test]
fn errors_as_values_both_ways() {
    let pool = pool();
    match make(&pool, "type-error") {
        JsValue::Error {
            name,
            message,
            stack,
        } => {
            assert_eq!((name.as_str(), message.as_str()), ("TypeError", "bad type"));
            let stack = stack.expect("an Error made in JS has a stack");
            assert!(stack.contains("make"), "{stack}");
        }
        other => panic!("{other:?}"),
    }
    match make(&pool, "custom-error") {
        JsValue::Error { name, message, .. } => {
            assert_eq!((name.as_str(), message.as_str()), ("MyError", "custom"))
        }
        other => panic!("{other:?}"),
    }
    // Into JS: a built-in name gets its constructor.
    let e = JsValue::Error {
        name: "RangeError".into(),
        message: "too far".into(),
        stack: Some("at somewhere".into()),
    };
    assert_eq!(
        describe(&pool, &e),
        r#"Error RangeError RangeError "too far" stack "at somewhere""#
    );
    let plain = JsValue::Error {
        name: "AppError".into(),
        message: "m".into(),
        stack: None,
    };
    let d = describe(&pool, &plain);
    assert!(d.starts_with(r#"Error Error AppError "m""#), "{d}");
    let back: JsValue = pool.js("v", "id").call(&e).wait().unwrap();
    assert_eq!(back, e);
}

#[test]
fn unsupported_results_are_payload_errors_and_the_worker_goes_on() {
    let pool = pool();
    for what in [
        "function",
        "symbol",
        "map",
        "set",
        "instance",
        "cycle",
        "array-cycle",
        "nested-function",
        "promise-of-map",
        "int16",
    ] {
        let r: Result<JsValue, CallError> = pool.js("v", "make").call(what).wait();
        match r {
            Err(CallError::Payload(e)) => {
                assert!(!e.to_string().is_empty());
            }
            other => panic!("{what}: expected a payload error, got {other:?}"),
        }
        // The one worker still answers.
        let ok: u32 = pool.js("v", "id").call(7u32).wait().unwrap();
        assert_eq!(ok, 7, "after {what}");
    }
    // The messages say what was refused.
    let msg = |what: &str| match make_as::<JsValue>(&pool, what) {
        Err(e) => e.to_string().to_lowercase(),
        Ok(v) => panic!("{what}: {v:?}"),
    };
    assert!(msg("map").contains("map"), "{}", msg("map"));
    assert!(msg("cycle").contains("cycl"), "{}", msg("cycle"));
    assert!(msg("function").contains("function"), "{}", msg("function"));
    // Typed reads fail the same way.
    assert!(matches!(
        make_as::<String>(&pool, "symbol"),
        Err(CallError::Payload(_))
    ));
    // The wrong shape for the Rust type is a payload (decode) error.
    assert!(matches!(
        make_as::<bool>(&pool, "date"),
        Err(CallError::Payload(_))
    ));
    assert!(matches!(
        make_as::<Order>(&pool, "u8"),
        Err(CallError::Payload(_))
    ));
}
