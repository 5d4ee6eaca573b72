//! The user's view of the pool: every bullet of the core API.

use knit::{create_pool, CallError, PayloadError, PoolOptions};
use serde::{Deserialize, Serialize};

#[knit::task]
fn add(pair: (i64, i64)) -> i64 {
    pair.0 + pair.1
}

#[knit::task]
fn hello() -> String {
    "hello".into()
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Order {
    id: u32,
    items: Vec<String>,
    total_cents: u64,
}

#[knit::task]
fn checkout(o: Order) -> Result<Order, String> {
    if o.items.is_empty() {
        return Err(format!("order {} has no items", o.id));
    }
    Ok(Order {
        total_cents: o.total_cents + 99,
        ..o
    })
}

#[knit::task]
async fn later(v: u64) -> u64 {
    v + 1
}

#[knit::task]
fn explode(n: u32) -> u32 {
    if n == 13 {
        panic!("unlucky {n}");
    }
    n
}

#[knit::task]
fn echo_bytes(b: Vec<u8>) -> Vec<u8> {
    b
}

/// Bytes inside another type: serde's element-by-element path, where a whole
/// `Vec<u8>` payload is one block copy.
#[knit::task]
fn echo_tagged_bytes(b: (u8, Vec<u8>)) -> (u8, Vec<u8>) {
    (b.0.wrapping_add(1), b.1)
}

#[knit::task]
fn make_bytes(n: usize) -> Vec<u8> {
    vec![7u8; n]
}

mod elsewhere {
    /// A task in another module: callable once the module's items are imported.
    #[knit::task]
    pub fn shout(s: String) -> String {
        s.to_uppercase()
    }
}

fn pool(threads: usize) -> knit::Pool {
    create_pool(PoolOptions {
        threads,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn the_quick_start_works() {
    let pool = pool(2);
    let x: i64 = pool.call.add((1, 2)).wait().unwrap();
    assert_eq!(x, 3);
    let y: i64 = futures::executor::block_on(pool.call.add((3, 4))).unwrap();
    assert_eq!(y, 7);
    let many: Vec<_> = (0..1000).map(|i| pool.call.add((i, i))).collect();
    for (i, c) in many.into_iter().enumerate() {
        assert_eq!(c.wait().unwrap(), 2 * i as i64);
    }
    assert_eq!(pool.call.hello().wait().unwrap(), "hello");
    pool.shutdown();
    assert_eq!(pool.call.add((1, 1)).wait(), Err(CallError::Closed));
}

#[test]
fn task_errors_keep_their_display_text() {
    let pool = pool(1);
    let good = Order {
        id: 1,
        items: vec!["tea".into()],
        total_cents: 100,
    };
    assert_eq!(
        pool.call.checkout(good.clone()).wait().unwrap().total_cents,
        199
    );
    let empty = Order {
        id: 7,
        items: vec![],
        total_cents: 0,
    };
    assert_eq!(
        pool.call.checkout(empty).wait(),
        Err(CallError::Task("order 7 has no items".into()))
    );
}

#[test]
fn async_tasks_run_on_the_worker() {
    let pool = pool(1);
    assert_eq!(pool.call.later(41).wait(), Ok(42));
}

#[test]
fn tasks_stay_callable_directly_and_from_other_modules() {
    use elsewhere::shout;
    assert_eq!(add((2, 2)), 4);
    let pool = pool(1);
    assert_eq!(pool.call.shout("quiet".into()).wait().unwrap(), "QUIET");
}

#[test]
fn a_panic_rejects_only_its_call_and_the_worker_keeps_serving() {
    let pool = pool(1);
    match pool.call.explode(13).wait() {
        Err(CallError::Panicked(msg)) => assert_eq!(msg, "unlucky 13"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    for n in 100..200 {
        assert_eq!(pool.call.explode(n).wait(), Ok(n));
    }
}

#[test]
fn unknown_tasks_are_typed_errors() {
    let pool = pool(1);
    assert!(matches!(
        pool.call.by_name::<u32, u32>("does_not_exist", &1).wait(),
        Err(CallError::UnknownTask(name)) if name == "does_not_exist"
    ));
    assert_eq!(
        pool.call.by_name::<(i64, i64), i64>("add", &(5, 6)).wait(),
        Ok(11)
    );
}

#[test]
fn a_result_of_the_wrong_type_is_a_payload_error_not_garbage() {
    let pool = pool(1);
    let r = pool
        .call
        .by_name::<(i64, i64), String>("add", &(1, 2))
        .wait();
    assert!(
        matches!(r, Err(CallError::Payload(PayloadError::Decode(_)))),
        "{r:?}"
    );
    let r = pool
        .call
        .by_name::<String, i64>("add", &"not a pair".to_string())
        .wait();
    assert!(
        matches!(r, Err(CallError::Payload(PayloadError::Decode(_)))),
        "{r:?}"
    );
}

/// Serializes fine when sized, then fails half way through writing: the ring
/// already holds part of the argument when the encoder gives up.
#[derive(Debug)]
struct Fickle {
    value: u64,
    passes: std::cell::Cell<u32>,
}

impl Serialize for Fickle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeTuple};
        self.passes.set(self.passes.get() + 1);
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.value)?;
        if self.passes.get() > 1 {
            return Err(S::Error::custom("fickle: fails on the writing pass"));
        }
        t.serialize_element(&self.value)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Fickle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (value, _) = <(u64, u64)>::deserialize(d)?;
        Ok(Fickle {
            value,
            passes: std::cell::Cell::new(0),
        })
    }
}

#[knit::task]
fn fickle(f: Fickle) -> u64 {
    f.value
}

#[test]
fn an_argument_whose_encoding_fails_part_way_is_a_payload_error() {
    for balancer in [knit::Balancer::RoundRobin, knit::Balancer::Shared] {
        let pool = create_pool(PoolOptions {
            threads: 1,
            balancer,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..3 {
            let arg = Fickle {
                value: 41,
                passes: std::cell::Cell::new(0),
            };
            let r = pool.call.fickle(arg).wait();
            assert!(
                matches!(r, Err(CallError::Payload(PayloadError::Encode(_)))),
                "{r:?}"
            );
            assert_eq!(pool.call.add((40, 1)).wait(), Ok(41));
        }
    }
}

#[test]
fn payloads_of_every_size_cross_intact() {
    let pool = pool(2);
    for len in [0usize, 511, 512, 513, 64 * 1024, 1 << 20, 8 << 20] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let back = pool.call.echo_bytes(data.clone()).wait().unwrap();
        assert!(back == data, "{len} bytes came back different");
        let (tag, back) = pool
            .call
            .echo_tagged_bytes((9, data.clone()))
            .wait()
            .unwrap();
        assert!(
            tag == 10 && back == data,
            "{len} tagged bytes came back different"
        );
    }
}

#[test]
fn oversized_arguments_and_results_are_payload_errors() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        max_payload_bytes: 1 << 20,
        ..Default::default()
    })
    .unwrap();
    let too_big = vec![0u8; 1 << 20];
    assert!(matches!(
        pool.call.echo_bytes(too_big).wait(),
        Err(CallError::Payload(PayloadError::TooLarge {
            max: 1048576,
            ..
        }))
    ));
    assert!(matches!(
        pool.call.make_bytes(2 << 20).wait(),
        Err(CallError::Payload(PayloadError::TooLarge { .. }))
    ));
    // Nothing was lost: the lane still works.
    assert_eq!(pool.call.make_bytes(3).wait().unwrap(), vec![7, 7, 7]);
}

#[test]
fn twenty_thousand_calls_in_flight_then_collected() {
    let pool = pool(2);
    let calls: Vec<_> = (0..20_000).map(|i| pool.call.add((i, 1))).collect();
    let mut sum = 0i64;
    for (i, c) in calls.into_iter().enumerate() {
        let v = c.wait().unwrap();
        assert_eq!(v, i as i64 + 1);
        sum += v;
    }
    assert_eq!(sum, (1..=20_000).sum::<i64>());
}

#[test]
fn six_threads_call_concurrently() {
    let pool = pool(2);
    std::thread::scope(|s| {
        for t in 0..6i64 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..5_000 {
                    assert_eq!(
                        pool.call.add((t * 1_000_000, i)).wait().unwrap(),
                        t * 1_000_000 + i
                    );
                }
            });
        }
    });
}

#[test]
fn calls_work_under_tokio() {
    let pool = std::sync::Arc::new(pool(2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let total = rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..50i64 {
            let pool = pool.clone();
            handles.push(tokio::spawn(
                async move { pool.call.add((i, i)).await.unwrap() },
            ));
        }
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        total
    });
    assert_eq!(total, (0..50).map(|i| 2 * i).sum::<i64>());
}

#[test]
fn dropping_calls_without_waiting_loses_nothing_else() {
    let pool = pool(2);
    for i in 0..1000 {
        drop(pool.call.add((i, i)));
    }
    assert_eq!(pool.call.add((1, 1)).wait(), Ok(2));
    pool.shutdown();
    assert_eq!(pool.completed_per_lane().iter().sum::<u64>(), 1001);
}

#[test]
fn calls_made_before_shutdown_are_drained() {
    let pool = pool(2);
    let calls: Vec<_> = (0..5000).map(|i| pool.call.add((i, 0))).collect();
    pool.shutdown();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(i as i64));
    }
}

#[test]
fn the_pool_is_send_and_sync_and_drop_does_not_hang() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<knit::Pool>();
    assert_send_sync::<knit::Caller>();
    fn assert_send<T: Send>() {}
    assert_send::<knit::Call<i64>>();
    let pool = pool(2);
    let pending: Vec<_> = (0..100).map(|i| pool.call.add((i, i))).collect();
    drop(pool);
    for (i, c) in pending.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(2 * i as i64));
    }
}

#[test]
fn invalid_options_are_refused() {
    assert!(matches!(
        create_pool(PoolOptions {
            threads: 0,
            ..Default::default()
        }),
        Err(knit::PoolError::InvalidOptions(_))
    ));
    for ring_bytes in [1000, 512, 2 << 30] {
        assert!(matches!(
            create_pool(PoolOptions {
                threads: 1,
                ring_bytes,
                ..Default::default()
            }),
            Err(knit::PoolError::InvalidOptions(_))
        ));
    }
    assert!(matches!(
        create_pool(PoolOptions {
            threads: 1,
            stack_size: 4096,
            ..Default::default()
        }),
        Err(knit::PoolError::InvalidOptions(_))
    ));
    // The documented bounds themselves are accepted.
    for max_payload_bytes in [16, u32::MAX as usize] {
        let pool = create_pool(PoolOptions {
            threads: 1,
            max_payload_bytes,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("max_payload_bytes {max_payload_bytes}: {e}"));
        assert_eq!(pool.call.add((1, 2)).wait(), Ok(3));
    }
    assert!(matches!(
        create_pool(PoolOptions {
            threads: 1,
            max_payload_bytes: u32::MAX as usize + 1,
            ..Default::default()
        }),
        Err(knit::PoolError::InvalidOptions(_))
    ));
}
