//! Async tasks share their worker's loop: with the `tokio` feature, `tokio::time::sleep` works inside a task and many overlap on one worker.

use std::time::{Duration, Instant};

use knit::{create_pool, PoolOptions};

#[knit::task]
async fn tokio_nap(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[knit::task]
async fn tokio_nap_then_fail(ms: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Err(format!("woke after {ms} ms"))
}

#[test]
fn fifty_tokio_sleeps_overlap_on_one_worker() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..50).map(|i| pool.call.tokio_nap(200 + i)).collect();
    let results: Vec<u64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
    let took = started.elapsed();
    assert_eq!(results, (0..50).map(|i| 200 + i).collect::<Vec<_>>());
    // One at a time they would take 50 × 200 ms = 10 s; overlapping, about
    // the longest (249 ms). A loaded VM gets a wide margin.
    assert!(took < Duration::from_secs(3), "50 naps took {took:?}");
    assert_eq!(
        pool.call.tokio_nap_then_fail(5).wait(),
        Err(knit::CallError::Task("woke after 5 ms".into()))
    );
    // A budget drops the future (cancelling the sleep), and the worker goes on.
    let r = pool
        .call
        .tokio_nap(60_000)
        .timeout(Duration::from_millis(50))
        .wait();
    assert_eq!(r, Err(knit::CallError::Timeout));
    assert_eq!(pool.call.tokio_nap(1).wait(), Ok(1));
    let stats = pool.stats();
    assert_eq!(stats.in_flight, 0, "{stats:?}");
}

#[test]
fn tokio_tasks_work_from_a_tokio_application() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = create_pool(PoolOptions {
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        let many: Vec<_> = (0..20).map(|_| pool.call.tokio_nap(20)).collect();
        for call in many {
            assert_eq!(call.await, Ok(20));
        }
        // Dropped inside the async context: must not panic.
        drop(pool);
    });
}
