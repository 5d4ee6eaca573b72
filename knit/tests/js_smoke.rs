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
