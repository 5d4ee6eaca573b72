//! Async tasks share their worker's loop: many in flight on one worker, woken by their wakers from other threads; a budget drops the future.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use knit::{create_pool, CallError, PoolOptions};

mod support;
use support::sleep;

static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct CountDrop;
impl Drop for CountDrop {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[knit::task]
async fn thread_nap(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms * 2
}

#[knit::task]
async fn nap_forever(_: ()) -> u64 {
    let _guard = CountDrop;
    sleep(Duration::from_secs(3600)).await;
    0
}

#[knit::task]
async fn panics_after_a_nap(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    panic!("after {ms} ms")
}

#[test]
fn many_async_calls_overlap_on_one_worker() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..50).map(|i| pool.call.thread_nap(150 + i)).collect();
    let got: Vec<u64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
    let took = started.elapsed();
    assert_eq!(got, (0..50).map(|i| (150 + i) * 2).collect::<Vec<_>>());
    // Serialized: 50 × 150 ms = 7.5 s.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(pool.stats().in_flight, 0);
}

#[test]
fn a_budget_drops_the_future_and_a_panic_is_a_call_error() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let before = DROPPED.load(Ordering::SeqCst);
    let r = pool
        .call
        .nap_forever(())
        .timeout(Duration::from_millis(30))
        .wait();
    assert_eq!(r, Err(CallError::Timeout));
    // The worker lets go of the future at its next look (within its sweep).
    let deadline = Instant::now() + Duration::from_secs(5);
    while DROPPED.load(Ordering::SeqCst) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        DROPPED.load(Ordering::SeqCst),
        before + 1,
        "the future was dropped"
    );
    match pool.call.panics_after_a_nap(5).wait() {
        Err(CallError::Panicked(m)) => assert!(m.contains("after 5 ms"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.call.thread_nap(1).wait(), Ok(2));
    let stats = pool.stats();
    assert_eq!(stats.in_flight, 0, "{stats:?}");
}

#[test]
fn async_calls_overlap_under_the_shared_queue_too() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        balancer: knit::Balancer::Shared,
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..30).map(|_| pool.call.thread_nap(150)).collect();
    for c in calls {
        assert_eq!(c.wait(), Ok(300));
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}
