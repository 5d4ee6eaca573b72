//! Hostile untrusted scripts through their values: thrown non-Errors and booby-trapped errors, Proxy and throwing-getter results, a promise that never settles, arguments over the input budget, and sources `Pool::untrusted` refuses (syntax errors, non-UTF-8, oversized).
#![cfg(feature = "js")]

#[path = "support/hostile.rs"]
mod hostile;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use hostile::*;
use knit::js::{JsOptions, Limits, ScriptError};
use knit::{CallError, LimitKind};

static LOCK: Mutex<()> = Mutex::new(());

/// How many times `bump` ran.
static BUMPS: AtomicUsize = AtomicUsize::new(0);

#[knit::task]
fn bump() -> usize {
    BUMPS.fetch_add(1, Ordering::SeqCst) + 1
}

fn options() -> JsOptions {
    JsOptions {
        expose: vec!["bump".into()],
        ..Default::default()
    }
}

fn strict_limits() -> Limits {
    limits(ms(100), ms(2000))
}

/// Each `(what, thrown expression, name, message)`: a script throwing it
/// fails with exactly that JS error.
#[test]
fn thrown_non_errors_are_reported_faithfully() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    for (thrown, name, message) in [
        ("42", "thrown number", "42"),
        ("'just a string'", "thrown string", "just a string"),
        ("null", "thrown null", "null"),
        ("undefined", "thrown undefined", "undefined"),
        ("Symbol('s')", "thrown symbol", "Symbol(s)"),
        ("({ code: 7 })", "thrown object", r#"{"code":7}"#),
        ("[1, 'two']", "thrown array", r#"[1,"two"]"#),
        ("10n", "thrown bigint", "10"),
        ("true", "thrown boolean", "true"),
    ] {
        let what = format!("throw {thrown}");
        let source = format!("export default () => {{ throw {thrown}; }};");
        let outcome = run::<serde_json::Value>(&pool, &what, &source, limits, limits.cpu);
        let e = js_error(&what, outcome);
        assert_eq!(
            (e.name.as_str(), e.message.as_str()),
            (name, message),
            "{what}"
        );
    }
    normal_call_works(&pool);
}

/// Thrown values built to break the error's conversion: getters that throw,
/// a Proxy whose every trap throws, an Error whose `name` is an object with
/// a throwing `toString`, a rejection with such a value. Each is still a JS
/// error of the call, and the worker goes on.
#[test]
fn booby_trapped_thrown_values_are_still_js_errors() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let trap = "new Proxy({}, { get() { throw new Error('trap'); }, has() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); }, getOwnPropertyDescriptor() { throw new Error('trap'); } })";
    for (what, thrown) in [
        ("throwing getters", "({ get name() { throw new Error('n'); }, get message() { throw new Error('m'); }, get stack() { throw new Error('s'); } })".to_string()),
        ("an Error with throwing getters", "Object.defineProperties(new Error('e'), { name: { get() { throw 1; } }, message: { get() { throw 2; } }, stack: { get() { throw 3; } } })".to_string()),
        ("a Proxy of traps", trap.to_string()),
        ("a Proxy around an Error", "new Proxy(new Error('inner'), { get() { throw new Error('trap'); } })".to_string()),
        ("an Error named by a throwing object", "Object.assign(new Error('e'), { name: { toString() { throw new Error('t'); } } })".to_string()),
        ("an object whose toJSON throws", "({ toJSON() { throw new Error('j'); } })".to_string()),
        ("a cyclic object", "(() => { const o = {}; o.o = o; return o; })()".to_string()),
    ] {
        let source = format!("export default () => {{ throw {thrown}; }};");
        let outcome = run::<serde_json::Value>(&pool, what, &source, limits, limits.cpu);
        js_error(what, outcome);
        let source = format!("export default async () => {{ await null; throw {thrown}; }};");
        let outcome = run::<serde_json::Value>(&pool, what, &source, limits, limits.cpu);
        js_error(what, outcome);
    }
    normal_call_works(&pool);
}

/// An error whose `message` getter spins: converting it runs out of CPU.
#[test]
fn a_thrown_error_whose_getter_spins_runs_out_of_cpu() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let source = "export default () => { throw Object.defineProperty(new Error('e'), 'message', { get() { for (;;) {} } }); };";
    let what = "throw an Error whose message getter spins";
    let outcome = run::<serde_json::Value>(&pool, what, source, limits, limits.cpu);
    assert_limit(what, &outcome, LimitKind::Cpu, &limits);
    normal_call_works(&pool);
}

/// A Proxy, a getter that throws, and other values that cannot be sent as a
/// result are payload errors.
#[test]
fn results_that_cannot_convert_are_payload_errors() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    for (what, result) in [
        ("a Proxy", "new Proxy({}, {})"),
        ("a Proxy of traps", "new Proxy({ a: 1 }, { ownKeys() { throw new Error('trap'); }, get() { throw new Error('trap'); } })"),
        ("a throwing getter", "({ a: 1, get b() { throw new Error('getter'); } })"),
        ("a throwing getter, nested", "({ list: [1, { get deep() { throw new Error('deep'); } }] })"),
        ("a cyclic object", "(() => { const o = { a: 1 }; o.self = o; return o; })()"),
        ("a function", "() => 1"),
        ("a symbol", "Symbol('s')"),
    ] {
        let source = format!("export default () => ({result});");
        let outcome = run::<serde_json::Value>(&pool, what, &source, limits, limits.cpu);
        assert!(
            matches!(outcome, Err(CallError::Payload(_))),
            "{what}: expected CallError::Payload, got {outcome:?}"
        );
        let source = format!("export default async () => {{ await null; return ({result}); }};");
        let outcome = run::<serde_json::Value>(&pool, what, &source, limits, limits.cpu);
        if what == "a Proxy of traps" {
            // Resolving the async function's promise with it reads its
            // `then` (a thenable check), which throws: a rejection.
            assert_js(what, outcome, "Error", "trap");
        } else {
            assert!(
                matches!(outcome, Err(CallError::Payload(_))),
                "{what} after an await: expected CallError::Payload, got {outcome:?}"
            );
        }
    }
    normal_call_works(&pool);
}

/// A promise that never settles (no timer, no job left) ends at the wall
/// budget, and so does one that waits on an endless chain of jobs.
#[test]
fn a_promise_that_never_settles_runs_out_of_wall_time() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = limits(ms(100), ms(250));
    for (what, source) in [
        (
            "new Promise(() => {})",
            "export default () => new Promise(() => {});",
        ),
        (
            "await new Promise(() => {})",
            "export default async () => { await null; await new Promise(() => {}); return 1; };",
        ),
        (
            "a promise waiting on a far timer",
            "export default () => new Promise((r) => setTimeout(r, 60000));",
        ),
    ] {
        let took = limit_case(&pool, what, source, limits, LimitKind::Wall, limits.wall);
        assert!(took >= limits.wall, "{what}: ended after {took:?}");
    }
}

/// An argument over `Limits::input_bytes` is refused on the caller's thread:
/// the call never reaches a worker (it has no id, is settled at once, and
/// the script's host function never runs).
#[test]
fn an_argument_over_the_input_budget_is_refused_before_sending() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = Limits {
        input_bytes: 1 << 20,
        ..strict_limits()
    };
    let script = pool
        .untrusted(
            "import { bump } from 'knit:host'; export default (s) => { bump(); return s.length; };",
            limits,
        )
        .unwrap()
        .with_grants(["bump"])
        .unwrap();
    let before = BUMPS.load(Ordering::SeqCst);
    let big = "x".repeat(2 << 20);
    let call = script.call::<_, usize>(big.as_str());
    assert_eq!(call.id(), None, "a refused call has no id");
    assert!(call.is_ready(), "a refused call is settled at once");
    assert_limit("a 2 MiB argument", &call.wait(), LimitKind::Input, &limits);
    let (outcome, _) = timed("a 2 MiB argument, 1 MiB budget", limits.cpu, || {
        script.call::<_, usize>(big.as_str())
    });
    assert_limit("a 2 MiB argument", &outcome, LimitKind::Input, &limits);
    // Several arguments count together.
    let half = "x".repeat(600 << 10);
    let (outcome, _) = timed("two 600 KiB arguments", limits.cpu, || {
        script.apply::<_, usize>((half.as_str(), half.as_str()))
    });
    assert_limit("two 600 KiB arguments", &outcome, LimitKind::Input, &limits);
    assert_eq!(BUMPS.load(Ordering::SeqCst), before, "the script ran");
    // Just under the budget goes through.
    let fits = "x".repeat((1 << 20) - 64);
    let (outcome, _) = timed("an argument just under the budget", limits.cpu, || {
        script.call::<_, usize>(fits.as_str())
    });
    assert_eq!(outcome, Ok(fits.len()));
    assert!(
        BUMPS.load(Ordering::SeqCst) > before,
        "the script did not run"
    );
    normal_call_works(&pool);
}

/// Sources `Pool::untrusted` refuses, each precisely; the pool then works.
#[test]
fn malformed_sources_are_refused_when_the_script_is_made() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    match pool.untrusted("export default () => 1;\nconst x = ;\n", limits) {
        Err(ScriptError::Syntax {
            line,
            column,
            message,
        }) => {
            assert_eq!(line, 2);
            // `;` is the 11th character of `const x = ;`.
            assert!((10..=12).contains(&column), "column {column}");
            assert!(!message.is_empty());
        }
        other => panic!("a syntax error: {other:?}"),
    }
    match pool.untrusted("export default () => {\n  return [1, 2;\n};", limits) {
        Err(ScriptError::Syntax { line: 2, .. }) => {}
        other => panic!("an unclosed bracket: {other:?}"),
    }
    // A script is a module: `with` and octal literals are syntax errors.
    match pool.untrusted("with ({}) {}\nexport default () => 1;", limits) {
        Err(ScriptError::Syntax { line: 1, .. }) => {}
        other => panic!("`with` in a module: {other:?}"),
    }
    let bad = b"export default () => '\xc3\x28';";
    assert_eq!(
        pool.untrusted(&bad[..], limits).unwrap_err(),
        ScriptError::NotUtf8 { valid_up_to: 22 }
    );
    let max = 4 << 20;
    let mut huge = String::from("export default () => 1;\n");
    while huge.len() < max + 1 {
        huge.push_str("// padding padding padding padding padding padding padding\n");
    }
    huge.truncate(max + 1);
    assert_eq!(
        pool.untrusted(&huge, limits).unwrap_err(),
        ScriptError::TooLarge { len: max + 1, max }
    );
    // Exactly at the limit it compiles (the comment's tail cut off).
    huge.truncate(max);
    let script = pool.untrusted(&huge, limits).expect("a 4 MiB source");
    assert_eq!(
        settle("the 4 MiB script", script.apply::<_, u32>(())),
        Ok(1)
    );
    normal_call_works(&pool);
}

/// Exports that are not there, not functions, or top-level code that only a
/// timer could finish: each a precise error of the call.
#[test]
fn missing_and_odd_exports_fail_their_calls() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool
        .untrusted("export default 42; export const f = () => 1;", limits)
        .unwrap();
    let (outcome, _) = timed("export default 42", limits.cpu, || {
        script.apply::<_, u32>(())
    });
    assert!(
        matches!(outcome, Err(CallError::UnknownTask(_))),
        "{outcome:?}"
    );
    let (outcome, _) = timed("an export not there", limits.cpu, || {
        script.export("nope").apply::<_, u32>(())
    });
    assert!(
        matches!(outcome, Err(CallError::UnknownTask(_))),
        "{outcome:?}"
    );
    let (outcome, _) = timed("export const f", limits.cpu, || {
        script.export("f").apply::<_, u32>(())
    });
    assert_eq!(outcome, Ok(1));
    let waits = pool
        .untrusted(
            "await new Promise((r) => setTimeout(r, 10)); export default () => 1;",
            limits,
        )
        .unwrap();
    let (outcome, _) = timed("top-level await on a timer", limits.cpu, || {
        waits.apply::<_, u32>(())
    });
    assert_js(
        "top-level await on a timer",
        outcome,
        "Error",
        "did not settle",
    );
    normal_call_works(&pool);
}
