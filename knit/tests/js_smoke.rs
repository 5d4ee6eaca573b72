//! First end-to-end look at the JS host (the issue's example).
#![cfg(feature = "js")]

use knit::js::{JsModule, JsOptions, JsValue};
use knit::{create_pool, PoolOptions};

#[test]
fn the_issue_example() {
    let pool = create_pool(PoolOptions {
        threads: 2,
        js: Some(JsOptions {
            modules: vec![JsModule::source(
                "math",
                "export const add = (a, b) => a + b;\n\
                 export async function later(x) { await sleep(1); return x + 1; }",
            )],
            bootstrap: Some(
                "globalThis.sleep = (ms) => new Promise(r => setTimeout(r, ms));".into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    let add = pool.js("math", "add");
    let s: i64 = add.apply((1, 2)).wait().unwrap();
    assert_eq!(s, 3);
    let t: i64 = pool.js("math", "later").call(41).wait().unwrap();
    assert_eq!(t, 42);
    let v: JsValue = add.apply((1, 2)).wait().unwrap();
    println!("{v:?}");
    let two: i64 = pool.eval("await Promise.resolve(1 + 1)").wait().unwrap();
    assert_eq!(two, 2);
    let all: Vec<knit::Call<i64>> = pool.eval_batch(["1 + 1", "2 * 2"]);
    let all: Vec<i64> = all.into_iter().map(|c| c.wait().unwrap()).collect();
    assert_eq!(all, [2, 4]);
    let session = pool.session().unwrap();
    session.eval::<()>("globalThis.n = 41").wait().unwrap();
    let n: i64 = session.eval("++n").wait().unwrap();
    assert_eq!(n, 42);
}

static REENTRANT: std::sync::OnceLock<knit::Pool> = std::sync::OnceLock::new();

/// A host function that calls JS on its own pool.
#[knit::task]
fn double_in_js(x: i64) -> Result<i64, String> {
    let pool = REENTRANT.get().ok_or("no pool")?;
    pool.js("twice", "default")
        .call(x)
        .wait()
        .map_err(|e| e.to_string())
}

#[test]
fn a_host_function_may_call_js_on_its_own_pool() {
    let pool = create_pool(PoolOptions {
        threads: 2,
        js: Some(JsOptions {
            modules: vec![
                JsModule::source("twice", "export default (x) => 2 * x;"),
                JsModule::source(
                    "outer",
                    "import { double_in_js } from 'knit:host';\n\
                     export default (x) => double_in_js(x) + 1;",
                ),
            ],
            expose: vec!["double_in_js".into()],
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert!(REENTRANT.set(pool).is_ok());
    let pool = REENTRANT.get().unwrap();
    // The inner call goes to the other worker, whatever lane the outer takes.
    for x in 0..20 {
        let r: i64 = pool.js("outer", "default").call(x).wait().unwrap();
        assert_eq!(r, 2 * x + 1);
    }
    // Arguments that are not a sequence are a payload error, not a crash.
    let bad: Result<i64, _> = pool.js("twice", "default").apply(5).wait();
    assert!(matches!(bad, Err(knit::CallError::Payload(_))), "{bad:?}");
    let ok: i64 = pool.js("twice", "default").apply([21]).wait().unwrap();
    assert_eq!(ok, 42);
}
