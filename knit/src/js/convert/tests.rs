//! Wire <-> engine on a real context: every value kind, and hostile JS values.

use rquickjs::{Context, Ctx, Function, Runtime, Value};
use serde::{Deserialize, Serialize};

use crate::js::{caught_error, from_js, from_wire, to_js, to_wire, Converter, JsBigInt, JsValue};
use crate::js::{WireError, WireLimits};

fn with<R>(f: impl FnOnce(Ctx<'_>) -> R) -> R {
    let rt = Runtime::new().unwrap();
    let ctx = Context::full(&rt).unwrap();
    ctx.with(f)
}

/// Rust value -> wire -> JS, checked by a JS predicate returning a string
/// ("ok" or what is wrong).
fn check_in_js<T: Serialize>(ctx: &Ctx<'_>, v: &T, pred: &str) {
    let mut w = Vec::new();
    to_wire(v, &mut w).unwrap();
    let js = to_js(ctx, &w).unwrap();
    let f: Function = ctx.eval(pred).unwrap();
    assert_eq!(f.call::<_, String>((js,)).unwrap(), "ok", "{pred}");
}

/// JS source -> value -> wire -> T.
fn from_source<T: for<'de> Deserialize<'de>>(ctx: &Ctx<'_>, src: &str) -> Result<T, WireError> {
    let v: Value = ctx.eval(src).unwrap();
    let mut out = Vec::new();
    from_js(ctx, &v, &mut out, &WireLimits::default())?;
    from_wire(&out)
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
    price: f64,
    active: bool,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Ev {
    Start,
    Move { x: i32, y: i32 },
    Say(String),
}

#[test]
fn struct_tuple_option_unit_and_enums_arrive_as_js_expects() {
    with(|ctx| {
        let item = Item {
            id: 7,
            name: "pen".into(),
            tags: vec!["a".into()],
            price: 1.5,
            active: true,
        };
        check_in_js(&ctx, &item, "v => Object.getPrototypeOf(v) === Object.prototype && \
            JSON.stringify(v) === '{\"id\":7,\"name\":\"pen\",\"tags\":[\"a\"],\"price\":1.5,\"active\":true}' ? 'ok' : JSON.stringify(v)");
        check_in_js(&ctx, &(1, "x", None::<u8>, ()), "v => Array.isArray(v) && v[0] === 1 && v[1] === 'x' && v[2] === null && v.length === 4 && v[3] === undefined && 3 in v ? 'ok' : 'bad'");
        check_in_js(&ctx, &vec![Ev::Start, Ev::Move { x: 1, y: -2 }, Ev::Say("hi".into())], "v => JSON.stringify(v) === '[\"Start\",{\"Move\":{\"x\":1,\"y\":-2}},{\"Say\":\"hi\"}]' ? 'ok' : JSON.stringify(v)");
        // And back: what JS writes in those shapes reads as the Rust types.
        let back: Item = from_source(
            &ctx,
            "({id: 7, name: 'pen', tags: ['a'], price: 1.5, active: true})",
        )
        .unwrap();
        assert_eq!(back, item);
        let evs: Vec<Ev> =
            from_source(&ctx, "['Start', {Move: {x: 1, y: -2}}, {Say: 'hi'}]").unwrap();
        assert_eq!(evs[1], Ev::Move { x: 1, y: -2 });
        let t: (u8, Option<u8>, Option<u8>, ()) =
            from_source(&ctx, "[1, null, undefined, undefined]").unwrap();
        assert_eq!(t, (1, None, None, ()));
    });
}

#[test]
fn numbers_keep_nan_infinities_and_negative_zero() {
    with(|ctx| {
        check_in_js(&ctx, &(f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0f64, 1.5f64),
            "v => Number.isNaN(v[0]) && v[1] === Infinity && v[2] === -Infinity && Object.is(v[3], -0) && v[4] === 1.5 ? 'ok' : 'bad'");
        let v: Vec<f64> = from_source(&ctx, "[NaN, Infinity, -Infinity, -0, 2**31, 0.1]").unwrap();
        assert!(v[0].is_nan() && v[1] == f64::INFINITY && v[2] == f64::NEG_INFINITY);
        assert!(v[3] == 0.0 && v[3].is_sign_negative());
        assert_eq!((v[4], v[5]), (2147483648.0, 0.1));
        // Integer fields: integral numbers yes, fractional no.
        assert_eq!(from_source::<u64>(&ctx, "2**40").unwrap(), 1 << 40);
        let e = from_source::<u64>(&ctx, "1.5").unwrap_err();
        assert!(e.is_decoding(), "{e}");
    });
}

#[test]
fn bigints_of_every_size_both_ways() {
    with(|ctx| {
        check_in_js(
            &ctx,
            &((1u64 << 53) + 1),
            "v => v === 9007199254740993n ? 'ok' : String(v)",
        );
        check_in_js(
            &ctx,
            &(1u64 << 53),
            "v => v === 9007199254740992 ? 'ok' : String(v)",
        );
        check_in_js(&ctx, &(i64::MIN, u64::MAX, i128::MIN, u128::MAX),
            "v => v[0] === -(2n**63n) && v[1] === 2n**64n-1n && v[2] === -(2n**127n) && v[3] === 2n**128n-1n ? 'ok' : v.map(String).join()");
        let huge: JsBigInt = "-123456789012345678901234567890123456789012345678901234567890"
            .parse()
            .unwrap();
        check_in_js(&ctx, &JsValue::BigInt(huge.clone()), "v => v === -123456789012345678901234567890123456789012345678901234567890n ? 'ok' : String(v)");
        check_in_js(
            &ctx,
            &JsValue::BigInt(5i64.into()),
            "v => v === 5n ? 'ok' : typeof v",
        );
        // Back from JS: into integers when they fit, into JsValue always.
        assert_eq!(from_source::<u64>(&ctx, "2n**64n-1n").unwrap(), u64::MAX);
        assert_eq!(from_source::<i128>(&ctx, "-(2n**127n)").unwrap(), i128::MIN);
        assert_eq!(from_source::<i8>(&ctx, "-5n").unwrap(), -5);
        assert!(from_source::<u64>(&ctx, "2n**64n").is_err());
        let v: JsValue = from_source(
            &ctx,
            "-123456789012345678901234567890123456789012345678901234567890n",
        )
        .unwrap();
        assert_eq!(v, JsValue::BigInt(huge));
        assert_eq!(
            from_source::<JsValue>(&ctx, "0n").unwrap(),
            JsValue::BigInt(0i64.into())
        );
    });
}

#[test]
fn strings_and_lone_surrogates() {
    with(|ctx| {
        check_in_js(
            &ctx,
            &"héllo \u{1F600}",
            "v => v === 'héllo \\u{1F600}' ? 'ok' : v",
        );
        let s: String = from_source(&ctx, "'a\\uD800b\\uDC00c\\uD83D\\uDE00' + 'd'").unwrap();
        assert_eq!(s, "a\u{FFFD}b\u{FFFD}c\u{1F600}d");
        let keys: JsValue = from_source(&ctx, "({'\\uDFFF': 1})").unwrap();
        assert_eq!(keys, JsValue::Object(vec![("\u{FFFD}".into(), 1.0.into())]));
    });
}

#[test]
fn key_order_is_js_order() {
    with(|ctx| {
        let v: JsValue = from_source(
            &ctx,
            "({b: 1, a: 2, 10: 3, 2: 4, [Symbol('s')]: 5, u: undefined})",
        )
        .unwrap();
        let keys: Vec<&str> = match &v {
            JsValue::Object(e) => e.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("{v:?}"),
        };
        assert_eq!(keys, ["2", "10", "b", "a", "u"]);
        let o = JsValue::Object(vec![
            ("z".into(), 1.0.into()),
            ("1".into(), 2.0.into()),
            ("__proto__".into(), 3.0.into()),
        ]);
        check_in_js(&ctx, &o, "v => Object.getPrototypeOf(v) === Object.prototype && Object.keys(v).join() === '1,z,__proto__' && v[1] === 2 ? 'ok' : Object.keys(v).join()");
    });
}

#[test]
fn bytes_dates_and_errors_both_ways() {
    with(|ctx| {
        check_in_js(
            &ctx,
            &serde_bytes::Bytes::new(&[1, 2, 255]),
            "v => v instanceof Uint8Array && v.join() === '1,2,255' ? 'ok' : String(v)",
        );
        let b: serde_bytes::ByteBuf =
            from_source(&ctx, "new Uint8Array([9, 8]).subarray(1)").unwrap();
        assert_eq!(b.as_ref(), [8]);
        let b: JsValue = from_source(&ctx, "new Uint8Array([1,2,3]).buffer").unwrap();
        assert_eq!(b, JsValue::Bytes(vec![1, 2, 3]));
        check_in_js(&ctx, &JsValue::Date(86_400_000.0), "v => v instanceof Date && v.toISOString() === '1970-01-02T00:00:00.000Z' ? 'ok' : String(v)");
        assert_eq!(
            from_source::<JsValue>(&ctx, "new Date(5)").unwrap(),
            JsValue::Date(5.0)
        );
        assert_eq!(from_source::<f64>(&ctx, "new Date(5)").unwrap(), 5.0);
        let e = JsValue::Error {
            name: "TypeError".into(),
            message: "bad".into(),
            stack: Some("at here".into()),
        };
        check_in_js(&ctx, &e, "v => v instanceof TypeError && v.message === 'bad' && v.stack === 'at here' && String(v) === 'TypeError: bad' ? 'ok' : String(v)");
        let custom = JsValue::Error {
            name: "ShopError".into(),
            message: "empty".into(),
            stack: None,
        };
        check_in_js(&ctx, &custom, "v => v instanceof Error && v.name === 'ShopError' && v.message === 'empty' ? 'ok' : String(v)");
        let back: JsValue = from_source(&ctx, "new RangeError('far')").unwrap();
        match back {
            JsValue::Error {
                name,
                message,
                stack,
            } => {
                assert_eq!((name.as_str(), message.as_str()), ("RangeError", "far"));
                assert!(stack.is_some());
            }
            other => panic!("{other:?}"),
        }
        // Extra own properties of an Error reach typed structs.
        #[derive(Deserialize)]
        struct Coded {
            name: String,
            code: String,
        }
        let c: Coded = from_source(&ctx, "Object.assign(new Error('x'), {code: 'E42'})").unwrap();
        assert_eq!((c.name.as_str(), c.code.as_str()), ("Error", "E42"));
    });
}

#[test]
fn every_js_value_round_trips_through_the_engine() {
    with(|ctx| {
        let v = JsValue::Array(vec![
            JsValue::Undefined,
            JsValue::Null,
            JsValue::Bool(false),
            JsValue::Number(-0.0),
            JsValue::BigInt(JsBigInt::from(-(1i128 << 70))),
            JsValue::String("s".into()),
            JsValue::Object(vec![("k".into(), JsValue::Array(vec![]))]),
            JsValue::Bytes(vec![7]),
            JsValue::Date(3.0),
            JsValue::Error {
                name: "Error".into(),
                message: "m".into(),
                stack: Some("s".into()),
            },
        ]);
        let mut w = Vec::new();
        to_wire(&v, &mut w).unwrap();
        let js = to_js(&ctx, &w).unwrap();
        let mut out = Vec::new();
        from_js(&ctx, &js, &mut out, &WireLimits::default()).unwrap();
        assert_eq!(from_wire::<JsValue>(&out).unwrap(), v);
    });
}

#[test]
fn unsupported_values_are_typed_errors() {
    with(|ctx| {
        let cases = [
            ("() => 1", "function"),
            ("Symbol('x')", "symbol"),
            ("new Map([[1, 2]])", "Map"),
            ("new Set([1])", "Set"),
            ("new WeakMap()", "Map"),
            ("Promise.resolve(1)", "Promise"),
            (
                "new (class Point { constructor() { this.x = 1 } })()",
                "Point",
            ),
            ("new Proxy({}, {})", "Proxy"),
            ("new Float64Array(2)", "typed array"),
            ("new Number(5)", "class"),
            ("({f() {}})", "function"),
            ("[1, Symbol()]", "symbol"),
        ];
        for (src, what) in cases {
            let e = from_source::<JsValue>(&ctx, src).unwrap_err();
            assert!(
                matches!(&e, WireError::Unsupported(m) if m.contains(what)),
                "{src}: {e}"
            );
            assert!(!e.is_decoding());
        }
        let cyc = [
            "(() => { const o = {a: [1, 2]}; o.a.push(o); return o })()",
            "(() => { const a = []; a.push(a); return a })()",
        ];
        for src in cyc {
            assert_eq!(
                from_source::<JsValue>(&ctx, src).unwrap_err(),
                WireError::Cycle,
                "{src}"
            );
        }
        // Shared (not cyclic) objects are fine: written twice, like JSON.
        let v: JsValue =
            from_source(&ctx, "(() => { const s = {x: 1}; return [s, s] })()").unwrap();
        assert_eq!(v[0], v[1]);
        let e = from_source::<JsValue>(&ctx, "({get x() { throw new TypeError('nope') }})")
            .unwrap_err();
        assert!(
            matches!(&e, WireError::Engine(m) if m.contains("TypeError: nope")),
            "{e}"
        );
        assert!(!ctx.has_exception());
    });
}

#[test]
fn depth_and_size_limits_on_js_values() {
    with(|ctx| {
        let deep = "(() => { let v = 1; for (let i = 0; i < 129; i++) v = [v]; return v })()";
        assert!(matches!(
            from_source::<JsValue>(&ctx, deep),
            Err(WireError::TooDeep {
                max: 128,
                decoding: false
            })
        ));
        let ok = "(() => { let v = 1; for (let i = 0; i < 128; i++) v = {v}; return v })()";
        assert!(from_source::<JsValue>(&ctx, ok).is_ok());
        let v: Value = ctx
            .eval("(() => { const a = []; a.length = 2**32 - 1; return a })()")
            .unwrap();
        let mut out = vec![1, 2];
        let e = from_js(&ctx, &v, &mut out, &WireLimits::default()).unwrap_err();
        assert!(matches!(e, WireError::TooLarge { .. }), "{e}");
        assert_eq!(out, [1, 2], "the output is left as it was");
        let s: Value = ctx.eval("'x'.repeat(100)").unwrap();
        let small = WireLimits {
            max_bytes: 50,
            ..WireLimits::default()
        };
        assert!(matches!(
            from_js(&ctx, &s, &mut out, &small),
            Err(WireError::TooLarge { max: 50, .. })
        ));
        let holes: JsValue = from_source(&ctx, "[1, , 3]").unwrap();
        assert_eq!(holes[1], JsValue::Undefined);
    });
}

#[test]
fn hostile_wire_bytes_fail_cleanly_in_the_engine() {
    with(|ctx| {
        let cases: &[&[u8]] = &[
            &[],
            &[0x42],
            &[0x09, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x0a, 2, 1, b'a', 0x01],
            &[0x07, 1, 0xff],
            &[0x09, 3, 0x01, 0x01],
            &[0x01, 0x01],
            &[0x0c, 1, 4, b'n', b'a', b'm', b'e', 0x07, 9],
        ];
        for bytes in cases {
            let e = to_js(&ctx, bytes).unwrap_err();
            assert!(e.is_decoding(), "{bytes:?}: {e}");
        }
        let mut deep = [0x09, 1].repeat(200);
        deep.push(0x01);
        assert!(matches!(to_js(&ctx, &deep), Err(WireError::TooDeep { .. })));
        assert!(!ctx.has_exception());
    });
}

#[test]
fn thrown_values_become_js_errors() {
    with(|ctx| {
        let cases = [
            ("throw new TypeError('t')", "TypeError", "t"),
            ("throw 'plain'", "thrown string", "plain"),
            ("throw 42", "thrown number", "42"),
            ("throw null", "thrown null", "null"),
            ("throw undefined", "thrown undefined", "undefined"),
            ("throw {code: 1}", "thrown object", "{\"code\":1}"),
            ("throw [1, 2]", "thrown array", "[1,2]"),
            ("throw 5n", "thrown bigint", "5"),
            ("throw Symbol('s')", "thrown symbol", "Symbol(s)"),
            ("class E extends Error { constructor() { super('sub'); this.name = 'E' } }; throw new E()", "E", "sub"),
        ];
        for (src, name, message) in cases {
            assert!(ctx.eval::<(), _>(src).is_err());
            let e = caught_error(&ctx);
            assert_eq!(
                (e.name.as_str(), e.message.as_str()),
                (name, message),
                "{src}"
            );
            assert!(!ctx.has_exception());
        }
    });
}

/// Wire bytes of an object with these keys (values 0, 1, …).
fn object_wire(keys: &[String]) -> Vec<u8> {
    let o = JsValue::Object(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), (i as f64).into()))
            .collect(),
    );
    let mut w = Vec::new();
    to_wire(&o, &mut w).unwrap();
    w
}

/// Whether two payloads hold the same value (counts may be padded, whole
/// floats may come back as ints).
fn same(a: &[u8], b: &[u8]) -> bool {
    from_wire::<JsValue>(a).unwrap() == from_wire::<JsValue>(b).unwrap()
}

/// `bytes` to JS and back through `conv`, checked against the free functions.
fn round_trip(ctx: &Ctx<'_>, conv: &mut Converter<'_>, bytes: &[u8]) -> Vec<u8> {
    let v = conv.to_js(bytes).unwrap();
    let mut out = Vec::new();
    conv.from_js(&v, &mut out, &WireLimits::default()).unwrap();
    let mut once = Vec::new();
    from_js(
        ctx,
        &to_js(ctx, bytes).unwrap(),
        &mut once,
        &WireLimits::default(),
    )
    .unwrap();
    assert_eq!(out, once, "the converter and the free functions agree");
    out
}

#[test]
fn converter_gives_what_the_free_functions_give() {
    with(|ctx| {
        let mut conv = Converter::new(&ctx);
        let sources = [
            "({id: 7, name: 'pen', tags: ['a', 'b'], price: 1.5, active: true})",
            "({b: 1, a: 2, 10: 3, 2: 4, [Symbol('s')]: 5, u: undefined})",
            "({'\\uDFFF': 1, ['x\\uD800']: {'\\uDFFF': 2}})",
            "({__proto__: null, ['__proto__']: 1, constructor: 2})",
            "({n: -0, i: NaN, f: -Infinity, big: 2n ** 100n, small: -5n})",
            "({d: new Date(5), b: new Uint8Array([1, 2]), s: 'héllo'})",
            "Object.assign(new RangeError('r'), {code: 3, name: 'RangeError'})",
            "[{a: 1}, {a: 2, b: {a: 3}}, {b: 4, a: 5}]",
        ];
        for _ in 0..3 {
            for src in sources {
                let v: Value = ctx.eval(src).unwrap();
                let mut cached = Vec::new();
                conv.from_js(&v, &mut cached, &WireLimits::default())
                    .unwrap();
                let mut once = Vec::new();
                from_js(&ctx, &v, &mut once, &WireLimits::default()).unwrap();
                assert_eq!(cached, once, "{src}");
                round_trip(&ctx, &mut conv, &once);
            }
        }
        // A lone surrogate in a key reads back replaced, cached or not.
        let keys: JsValue = from_wire(&round_trip(
            &ctx,
            &mut conv,
            &object_wire(&["\u{FFFD}".into()]),
        ))
        .unwrap();
        assert_eq!(keys, JsValue::Object(vec![("\u{FFFD}".into(), 0.0.into())]));
        // Errors skip the keys they write first, from the cache too.
        let e: Value = ctx.eval("Object.assign(new Error('m'), {x: 1})").unwrap();
        let mut once = Vec::new();
        from_js(&ctx, &e, &mut once, &WireLimits::default()).unwrap();
        for _ in 0..2 {
            let mut out = Vec::new();
            conv.from_js(&e, &mut out, &WireLimits::default()).unwrap();
            assert_eq!(out, once);
            let back: JsValue = from_wire(&out).unwrap();
            assert!(
                matches!(&back, JsValue::Error { message, .. } if message == "m"),
                "{back:?}"
            );
        }
        // Failures are the same too, and leave the converter usable.
        let bad: Value = ctx.eval("({a: {a: () => 1}})").unwrap();
        let mut out = vec![9];
        assert!(matches!(
            conv.from_js(&bad, &mut out, &WireLimits::default()),
            Err(WireError::Unsupported(_))
        ));
        assert_eq!(out, [9]);
        assert!(conv.to_js(&[0x0a, 2, 1, b'a', 0x01]).is_err());
        assert!(!ctx.has_exception());
        let w = object_wire(&["a".into()]);
        assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
    });
}

#[test]
fn converter_caches_repeated_keys_and_stays_bounded() {
    with(|ctx| {
        let mut conv = Converter::new(&ctx);
        let item = Item {
            id: 1,
            name: "n".into(),
            tags: vec![],
            price: 2.0,
            active: false,
        };
        let mut w = Vec::new();
        to_wire(&item, &mut w).unwrap();
        for _ in 0..1000 {
            assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        }
        assert_eq!(conv.cached_keys(), (5, 5), "one slot per field each way");

        // Far more distinct keys than slots, some beyond the cached length,
        // in one object and across conversions: all correct, cache bounded.
        // (Integer keys first, ascending, as JS orders them.)
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("{i}"))
            .chain((0..2000).map(|i| match i % 2 {
                0 => format!("k{i}"),
                _ => format!("a long key, longer than the cache keeps: {i}"),
            }))
            .collect();
        let w = object_wire(&keys);
        for _ in 0..2 {
            assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        }
        for chunk in keys.chunks(7) {
            let w = object_wire(chunk);
            assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        }
        let (to, from) = conv.cached_keys();
        assert!(to <= super::cache::SLOTS && from <= super::cache::SLOTS);
        assert!(to > 0 && from > 0);
    });
}

#[test]
fn converter_keeps_a_key_atom_alive_while_nested_keys_evict_it() {
    // Keys that share a slot of the to-JS table: converting the inner
    // object evicts the outer key's atom before the outer key is defined.
    let keys: Vec<String> = (0..2000).map(|i| format!("key{i}")).collect();
    let slot = super::cache::slot_of;
    let a = &keys[0];
    let b = keys[1..].iter().find(|k| slot(k) == slot(a)).unwrap();
    let inner = JsValue::Object(vec![(b.clone(), 1.0.into())]);
    let outer = JsValue::Object(vec![
        (a.clone(), inner.clone()),
        (b.clone(), JsValue::Object(vec![(a.clone(), inner)])),
    ]);
    let mut w = Vec::new();
    to_wire(&outer, &mut w).unwrap();
    with(|ctx| {
        let mut conv = Converter::new(&ctx);
        for _ in 0..3 {
            assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        }
    });
}

#[test]
fn converter_frees_its_atoms_when_dropped() {
    let rt = Runtime::new().unwrap();
    let ctx = Context::full(&rt).unwrap();
    let keys: Vec<String> = (0..500).map(|i| format!("field_{i}")).collect();
    let convert = |cached: bool| {
        ctx.with(|ctx| {
            let mut conv = Converter::new(&ctx);
            // Each chunk twice, so that its shape is kept too.
            for chunk in keys.chunks(5).flat_map(|c| [c, c]) {
                let w = object_wire(chunk);
                let mut out = Vec::new();
                if cached {
                    let v = conv.to_js(&w).unwrap();
                    conv.from_js(&v, &mut out, &WireLimits::default()).unwrap();
                } else {
                    let v = to_js(&ctx, &w).unwrap();
                    from_js(&ctx, &v, &mut out, &WireLimits::default()).unwrap();
                }
                assert!(same(&out, &w));
            }
            if cached {
                assert!(conv.cached_keys().0 > 100);
                assert!(conv.cached_shapes() > 10);
            }
        });
        rt.run_gc();
        rt.memory_usage().atom_count
    };
    let before = convert(false);
    assert_eq!(convert(true), before, "no atom outlives the converter");
    // (And no object: the runtime asserts there are none left when it drops.)
}

#[test]
fn converter_keeps_shapes_of_repeated_key_sequences_only() {
    with(|ctx| {
        let mut conv = Converter::new(&ctx);
        let item = Item {
            id: 1,
            name: "n".into(),
            tags: vec!["t".into()],
            price: 2.5,
            active: true,
        };
        let mut w = Vec::new();
        to_wire(&item, &mut w).unwrap();
        assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        assert_eq!(conv.cached_shapes(), 0, "met once: nothing kept yet");
        for _ in 0..100 {
            assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        }
        assert_eq!(conv.cached_shapes(), 1);
        // Objects built on kept shapes are ordinary objects: own, enumerable,
        // writable, configurable data properties, in order.
        let v = conv.to_js(&w).unwrap();
        let check: Function = ctx
            .eval(
                "v => { const d = Object.getOwnPropertyDescriptors(v); \
                 v.id = 5; delete v.name; v.extra = 1; \
                 return Object.keys(d).join() === 'id,name,tags,price,active' && \
                 Object.values(d).every(p => p.writable && p.enumerable && p.configurable) && \
                 Object.keys(v).join() === 'id,tags,price,active,extra' && v.id === 5 \
                 ? 'ok' : JSON.stringify(d) }",
            )
            .unwrap();
        assert_eq!(check.call::<_, String>((v,)).unwrap(), "ok");
        let w2 = conv.to_js(&w).unwrap();
        let mut out = Vec::new();
        conv.from_js(&w2, &mut out, &WireLimits::default()).unwrap();
        assert!(same(&out, &w), "changing one object leaves the next alone");

        // Key sets that keep changing, too many keys, prefixes of kept
        // sequences and many sequences: all correct, the cache bounded.
        let keys: Vec<String> = (0..400).map(|i| format!("f{i}")).collect();
        for i in 0..200 {
            let w = object_wire(&keys[i..i + 1 + i % 7]);
            assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
        }
        let many = object_wire(&keys[..super::cache::MAX_SHAPE_KEYS + 1]);
        for _ in 0..3 {
            assert!(same(&round_trip(&ctx, &mut conv, &many), &many));
        }
        for i in 0..300 {
            let w = object_wire(&keys[i..i + 3]);
            for _ in 0..2 {
                assert!(same(&round_trip(&ctx, &mut conv, &w), &w));
            }
            let prefix = object_wire(&keys[i..i + 2]);
            assert!(same(&round_trip(&ctx, &mut conv, &prefix), &prefix));
        }
        assert!(conv.cached_shapes() <= super::cache::SHAPE_SLOTS);
    });
}
