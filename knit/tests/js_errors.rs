//! JS errors: bad modules fail create_pool precisely; unknown targets, thrown values, rejections and throwing timers fail their call precisely; the worker keeps serving.
#![cfg(feature = "js")]

use std::time::Duration;

use knit::js::{JsError, JsModule, JsModuleError, JsOptions};
use knit::{create_pool, Call, CallError, Pool, PoolError, PoolOptions};

fn options(modules: Vec<JsModule>, bootstrap: Option<&str>) -> PoolOptions {
    PoolOptions {
        threads: 1,
        js: Some(JsOptions {
            modules,
            bootstrap: bootstrap.map(str::to_owned),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pool_error(modules: Vec<JsModule>, bootstrap: Option<&str>) -> JsModuleError {
    match create_pool(options(modules, bootstrap)) {
        Err(PoolError::JsModule(e)) => e,
        Err(e) => panic!("expected a JS module error, got {e:?}"),
        Ok(_) => panic!("create_pool succeeded"),
    }
}

/// The JS error a call failed with.
fn thrown<T: std::fmt::Debug + serde::de::DeserializeOwned>(call: Call<T>) -> JsError {
    match call.wait_for(Duration::from_secs(20)) {
        Ok(Err(CallError::Js(e))) => *e,
        Ok(other) => panic!("expected a JS error, got {other:?}"),
        Err(_) => panic!("no answer within 20 s"),
    }
}

#[test]
fn a_syntax_error_names_module_line_and_column() {
    let e = pool_error(
        vec![
            JsModule::source("good", "export const one = () => 1;"),
            JsModule::source("bad", "export const a = 1;\nexport const b = ;\n"),
        ],
        None,
    );
    match &e {
        JsModuleError::Syntax {
            module,
            line,
            column,
            message,
        } => {
            assert_eq!(module, "bad");
            assert_eq!(*line, 2);
            // `;` is the 18th character of `export const b = ;`.
            assert!((17..=19).contains(column), "column {column}");
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("bad at 2:"), "{e}");
}

#[test]
fn an_import_of_an_unregistered_module_names_both() {
    let e = pool_error(
        vec![JsModule::source(
            "app",
            "import { x } from './nope.js';\nexport const f = () => x;",
        )],
        None,
    );
    match e {
        JsModuleError::Import { module, specifier } => {
            assert_eq!(module, "app");
            assert_eq!(specifier, "./nope.js");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_throwing_module_or_bootstrap_fails_create_pool() {
    let e = pool_error(
        vec![JsModule::source("boom", "throw new Error('at load');")],
        None,
    );
    match e {
        JsModuleError::Evaluate {
            module, message, ..
        } => {
            assert_eq!(module, "boom");
            assert!(message.contains("at load"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = pool_error(
        vec![],
        Some("globalThis.x = 1;\nthrow new TypeError('in bootstrap');"),
    );
    match e {
        JsModuleError::Bootstrap { message, .. } => {
            assert!(message.contains("in bootstrap"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let e = pool_error(vec![], Some("let = ;"));
    assert!(matches!(e, JsModuleError::Bootstrap { .. }), "{e:?}");
}

const THROWS: &str = r#"
export const ok = (x) => x;
export const answer = 42;
export function typeError() { null.x; }
export function custom() { const e = new RangeError("out of range"); throw e; }
export function throwValue(kind) {
    switch (kind) {
        case "string": throw "plain string";
        case "number": throw 42;
        case "object": throw { code: 7, why: "because" };
        case "array": throw [1, "two"];
        case "null": throw null;
        case "undefined": throw undefined;
        case "boolean": throw false;
        case "bigint": throw 10n;
        case "symbol": throw Symbol("sym");
    }
}
export async function lateThrow() {
    await new Promise((r) => setTimeout(r, 5));
    throw new SyntaxError("after the await");
}
export async function lateReject() {
    await null;
    return Promise.reject("rejected string");
}
export async function microThrow() {
    await Promise.resolve();
    throw new Error("in a microtask");
}
export function timerThrows() {
    return new Promise((resolve) => {
        setTimeout(() => { throw new TypeError("from the timer"); }, 5);
        setTimeout(() => resolve("too late"), 200);
    });
}
export function timerThrowsString() {
    return new Promise(() => { setTimeout(() => { throw "timer string"; }, 1); });
}
export async function sleepy(ms) { await new Promise((r) => setTimeout(r, ms)); return ms; }
"#;

fn pool() -> Pool {
    create_pool(options(vec![JsModule::source("t", THROWS)], None)).unwrap()
}

fn still_serving(pool: &Pool) {
    let v: u32 = pool.js("t", "ok").call(5u32).wait().unwrap();
    assert_eq!(v, 5);
}

#[test]
fn unknown_modules_and_exports_are_unknown_tasks() {
    let pool = pool();
    let r: Result<(), CallError> = pool.js("nope", "f").call(()).wait();
    assert_eq!(r, Err(CallError::UnknownTask("nope::f".into())));
    let r: Result<(), CallError> = pool.js("t", "missing").call(()).wait();
    assert_eq!(r, Err(CallError::UnknownTask("t::missing".into())));
    // An export that is not a function is no task either.
    let r: Result<(), CallError> = pool.js("t", "answer").call(()).wait();
    assert_eq!(r, Err(CallError::UnknownTask("t::answer".into())));
    let r: Result<(), CallError> = pool.js("t", "default").call(()).wait();
    assert_eq!(r, Err(CallError::UnknownTask("t::default".into())));
    assert_eq!(pool.js("t", "missing").name(), "t::missing");
    still_serving(&pool);
    assert_eq!(pool.stats().failed.unknown_task, 4);
}

#[test]
fn a_thrown_error_keeps_name_message_and_stack() {
    let pool = pool();
    let e = thrown(pool.js("t", "typeError").call::<_, ()>(()));
    assert_eq!(e.name, "TypeError");
    assert!(e.message.contains("null"), "{}", e.message);
    let stack = e.stack.expect("a stack");
    assert!(stack.contains("typeError"), "{stack}");
    let e = thrown(pool.js("t", "custom").call::<_, ()>(()));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("RangeError", "out of range")
    );
    assert!(e.stack.unwrap().contains("custom"));
    assert_eq!(
        pool.js("t", "custom")
            .call::<_, ()>(())
            .wait()
            .unwrap_err()
            .to_string(),
        "JS task threw RangeError: out of range"
    );
    still_serving(&pool);
    // eval reports its errors the same way, syntax errors included.
    let e = thrown(pool.eval::<()>("throw new EvalError('from eval')"));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("EvalError", "from eval")
    );
    let e = thrown(pool.eval::<()>("let = ;"));
    assert_eq!(e.name, "SyntaxError");
    let e = thrown(pool.eval::<()>("await null; undefinedName"));
    assert_eq!(e.name, "ReferenceError");
    assert!(e.message.contains("undefinedName"), "{}", e.message);
    still_serving(&pool);
    assert!(pool.stats().failed.js >= 6, "{:?}", pool.stats().failed);
}

#[test]
fn thrown_values_that_are_not_errors_are_reported_faithfully() {
    let pool = pool();
    let cases = [
        ("string", "thrown string", "plain string"),
        ("number", "thrown number", "42"),
        ("object", "thrown object", r#"{"code":7,"why":"because"}"#),
        ("array", "thrown array", r#"[1,"two"]"#),
        ("null", "thrown null", "null"),
        ("undefined", "thrown undefined", "undefined"),
        ("boolean", "thrown boolean", "false"),
        ("bigint", "thrown bigint", "10"),
        ("symbol", "thrown symbol", "Symbol(sym)"),
    ];
    for (kind, name, message) in cases {
        let e = thrown(pool.js("t", "throwValue").call::<_, ()>(kind));
        assert_eq!(
            (e.name.as_str(), e.message.as_str(), e.stack.as_deref()),
            (name, message, None),
            "throw of a {kind}"
        );
        still_serving(&pool);
    }
}

#[test]
fn errors_inside_promise_jobs_reach_their_call() {
    let pool = pool();
    // Others in flight at the same time must not get the error.
    let bystanders: Vec<Call<u32>> = (0..5)
        .map(|i| pool.js("t", "sleepy").call(20 + i))
        .collect();
    let e = thrown(pool.js("t", "lateThrow").call::<_, ()>(()));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("SyntaxError", "after the await")
    );
    assert!(e.stack.is_some());
    let e = thrown(pool.js("t", "lateReject").call::<_, ()>(()));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("thrown string", "rejected string")
    );
    let e = thrown(pool.js("t", "microThrow").call::<_, ()>(()));
    assert_eq!(e.message, "in a microtask");
    let got: Vec<u32> = bystanders.into_iter().map(|c| c.wait().unwrap()).collect();
    assert_eq!(got, [20, 21, 22, 23, 24]);
    still_serving(&pool);
}

#[test]
fn a_throwing_timer_callback_fails_the_call_that_set_it() {
    let pool = pool();
    let bystander: Call<u32> = pool.js("t", "sleepy").call(100);
    let e = thrown(pool.js("t", "timerThrows").call::<_, String>(()));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("TypeError", "from the timer")
    );
    let e = thrown(pool.js("t", "timerThrowsString").call::<_, ()>(()));
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("thrown string", "timer string")
    );
    assert_eq!(bystander.wait(), Ok(100));
    // The first call's second timer fires later into nothing.
    std::thread::sleep(Duration::from_millis(250));
    still_serving(&pool);
}
