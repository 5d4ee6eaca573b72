//! JS tasks on a knit pool: modules from a file, an async export, eval, a
//! session and a Rust host function. `cargo run -p knit --example js_tasks`.

use std::time::Instant;

use knit::js::{JsModule, JsOptions, JsValue};
use knit::{create_pool, Call, CallError, PoolOptions};
use serde::{Deserialize, Serialize};

/// Callable from JS as `import { price_of } from "knit:host"`.
#[knit::task]
fn price_of(item: String) -> Option<u32> {
    match item.as_str() {
        "bolt" => Some(25),
        "nut" => Some(10),
        _ => None,
    }
}

#[derive(Serialize)]
struct Order {
    items: Vec<String>,
    qty: u32,
}

#[derive(Deserialize, Debug)]
struct Quote {
    total: u32,
    missing: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = create_pool(PoolOptions {
        threads: 2,
        js: Some(JsOptions {
            // The module `tasks`, whichever directory cargo runs from.
            modules: vec![JsModule::file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/tasks.js"
            ))?],
            bootstrap: Some(
                "globalThis.sleep = (ms) => new Promise((r) => setTimeout(r, ms));".into(),
            ),
            expose: vec!["price_of".into()],
            ..Default::default()
        }),
        ..Default::default()
    })?;

    // A plain export, typed both ways.
    let sum: i64 = pool.js("tasks", "add").apply((1, 2)).wait()?;
    println!("add(1, 2) = {sum}");

    // 50 async calls awaiting 100 ms timers: they wait together, not in turn.
    let start = Instant::now();
    let double = pool.js("tasks", "slowDouble");
    let calls: Vec<Call<i64>> = (0..50).map(|i| double.apply((i, 100))).collect();
    let total: i64 = calls
        .into_iter()
        .map(|c| c.wait())
        .sum::<Result<i64, _>>()?;
    println!("50 × slowDouble: sum {total} in {:?}", start.elapsed());

    // A Rust struct in, a JS object out; JS calls the Rust host function.
    let order = Order {
        items: vec!["bolt".into(), "nut".into(), "gear".into()],
        qty: 3,
    };
    let quote: Quote = pool.js("tasks", "quote").call(&order).wait()?;
    println!(
        "quote: {} cents, no price for {:?}",
        quote.total, quote.missing
    );

    // A thrown JS error is the call's error.
    match pool.js("tasks", "checkQty").call::<_, u32>(0).wait() {
        Err(CallError::Js(e)) => println!("checkQty(0) threw {}: {}", e.name, e.message),
        other => println!("checkQty(0): {other:?}"),
    }

    // eval: a global script with top-level await; any result as a JsValue.
    let v: JsValue = pool
        .eval("await sleep(10); ({ when: new Date(0), big: 2n ** 64n })")
        .wait()?;
    if let (JsValue::Date(ms), JsValue::BigInt(big)) = (&v["when"], &v["big"]) {
        println!("eval: a Date of {ms} ms and the BigInt {big}");
    }

    // A session keeps its globals between evals, on one worker.
    let session = pool.session()?;
    session.eval::<()>("globalThis.visits = 0").wait()?;
    for _ in 0..3 {
        let n: u32 = session.eval("++visits").wait()?;
        println!("session on lane {}: visit {n}", session.lane());
    }

    let stats = pool.stats();
    for (i, lane) in stats.lanes.iter().enumerate() {
        println!(
            "lane {i}: {} JS calls, engine heap {} bytes",
            lane.js_calls, lane.js_memory_bytes
        );
    }
    pool.shutdown();
    Ok(())
}
