//! knit in one screen: define tasks, start a pool, call them every way.
//!
//! `cargo run --example quickstart`

use knit::{create_pool, CallError, PoolOptions};
use serde::{Deserialize, Serialize};

#[knit::task]
fn add(pair: (i64, i64)) -> i64 {
    pair.0 + pair.1
}

#[knit::task]
fn hello() -> String {
    "hello".into()
}

#[derive(Serialize, Deserialize, Debug)]
struct Order {
    id: u32,
    items: Vec<String>,
}

#[knit::task]
fn checkout(o: Order) -> Result<Order, String> {
    if o.items.is_empty() {
        Err(format!("order {} is empty", o.id))
    } else {
        Ok(o)
    }
}

#[knit::task]
async fn later(v: u64) -> u64 {
    v + 1
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = create_pool(PoolOptions {
        threads: 2,
        ..Default::default()
    })?;

    let x: i64 = pool.call.add((1, 2)).wait()?;
    println!("add((1, 2))         = {x}");
    let y: i64 = futures::executor::block_on(pool.call.add((3, 4)))?;
    println!("add((3, 4)) awaited = {y}");
    println!("hello()             = {}", pool.call.hello().wait()?);
    println!("later(41)           = {}", pool.call.later(41).wait()?);

    let order = Order {
        id: 7,
        items: vec!["tea".into()],
    };
    println!(
        "checkout(order 7)   = {:?}",
        pool.call.checkout(order).wait()?
    );
    let empty = Order {
        id: 8,
        items: vec![],
    };
    match pool.call.checkout(empty).wait() {
        Err(CallError::Task(why)) => println!("checkout(order 8)   failed: {why}"),
        other => println!("checkout(order 8)   unexpected: {other:?}"),
    }

    let start = std::time::Instant::now();
    // Up to `max_in_flight` calls (65,536 by default) can be in flight at once.
    let many: Vec<_> = (0..50_000).map(|i| pool.call.add((i, i))).collect();
    let sum: i64 = many.into_iter().map(|c| c.wait().unwrap()).sum();
    println!(
        "50,000 calls in flight, sum {sum}, in {:?} (per lane: {:?})",
        start.elapsed(),
        pool.completed_per_lane()
    );

    pool.shutdown();
    assert_eq!(pool.call.add((1, 1)).wait(), Err(CallError::Closed));
    println!("after shutdown: add((1, 1)) -> {}", CallError::Closed);
    Ok(())
}
