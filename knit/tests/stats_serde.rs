//! `PoolStats` as JSON through the `serde` feature (`cargo test -p knit --features serde`).

use knit::{create_pool, PoolOptions};

#[knit::task]
fn half(x: u64) -> Result<u64, String> {
    if x.is_multiple_of(2) {
        Ok(x / 2)
    } else {
        Err(format!("{x} is odd"))
    }
}

#[test]
fn pool_stats_serialize_with_every_field() {
    let pool = create_pool(PoolOptions {
        threads: 2,
        timing: true,
        ..Default::default()
    })
    .unwrap();
    for x in 0..10 {
        let _ = pool.call.half(x).wait();
    }
    let stats = pool.stats();
    let json = serde_json::to_value(&stats).unwrap();

    assert_eq!(json["completed"], 5);
    assert_eq!(json["failed"]["task"], 5);
    assert_eq!(json["failed"]["panicked"], 0);
    assert_eq!(json["in_flight"], 0);
    assert_eq!(json["stuck_lanes"], 0);
    assert_eq!(json["lost_workers"], 0);

    let lanes = json["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), 2);
    let calls: u64 = lanes.iter().map(|l| l["calls"].as_u64().unwrap()).sum();
    assert_eq!(calls, 10);
    // Durations use serde's own form: whole seconds and the nanoseconds left.
    for lane in lanes {
        assert!(lane["busy"]["secs"].is_u64() && lane["busy"]["nanos"].is_u64());
        assert_eq!(lane["restarts"], 0);
    }

    let run = &json["run"];
    assert_eq!(run["count"], 10);
    let max = stats.run.unwrap().max;
    assert_eq!(run["max"]["secs"], max.as_secs());
    assert_eq!(run["max"]["nanos"], max.subsec_nanos());
    assert!(json["wait"]["p50"].is_object() && json["wait"]["p99"].is_object());
    pool.shutdown();
}

#[test]
fn untimed_pool_serializes_its_missing_percentiles_as_null() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(pool.call.half(4).wait().unwrap(), 2);
    let json = serde_json::to_value(pool.stats()).unwrap();
    assert!(json["run"].is_null() && json["wait"].is_null());
    assert_eq!(json["completed"], 1);
    pool.shutdown();
}
