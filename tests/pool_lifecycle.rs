//! Lane recovery, backpressure, shutdown variants and stats.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use knit::{create_pool, Balancer, CallError, PoolOptions, QueuePolicy, TaskCx};

/// Kills the worker thread running it, the way a real escaped panic would
/// (see `knit_suite::faults::Bomb`).
#[knit::task]
fn kill_worker() -> u64 {
    knit_suite::faults::kill_thread()
}

#[knit::task]
fn echo(x: u64) -> u64 {
    x
}

/// Set to let `stubborn` calls return.
static RELEASE_STUBBORN: AtomicBool = AtomicBool::new(false);
static STUBBORN_RUNS: AtomicU64 = AtomicU64::new(0);

/// Ignores its budget and its abort flag until the test releases it.
#[knit::task(timeout_ms = 30)]
fn stubborn(_: (), cx: &TaskCx) -> u64 {
    STUBBORN_RUNS.fetch_add(1, Ordering::SeqCst);
    let _ = cx.stop_requested();
    while !RELEASE_STUBBORN.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    7
}

#[knit::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Liveness bound for waits that would hang forever if recovery failed (not a
/// speed assertion: it is orders of magnitude above the expected time).
const LIVENESS: Duration = Duration::from_secs(60);

fn queued_pool(threads: usize, max_queue: usize, queue_policy: QueuePolicy) -> knit::Pool {
    create_pool(PoolOptions {
        threads,
        max_queue: Some(max_queue),
        queue_policy,
        ..Default::default()
    })
    .unwrap()
}

fn wait<T: serde::de::DeserializeOwned>(call: knit::Call<T>) -> Result<T, CallError> {
    match call.wait_for(LIVENESS) {
        Ok(r) => r,
        Err(_) => panic!("a call did not settle within {LIVENESS:?}"),
    }
}

#[test]
fn a_dead_worker_loses_only_its_call_and_its_lane_restarts() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let before: Vec<_> = (0..50).map(|i| pool.call.echo(i)).collect();
    let doomed = pool.call.kill_worker();
    let after: Vec<_> = (100..300).map(|i| pool.call.echo(i)).collect();
    for (i, c) in (0..50).zip(before) {
        assert_eq!(wait(c), Ok(i));
    }
    assert_eq!(wait(doomed), Err(CallError::WorkerLost));
    for (i, c) in (100..300).zip(after) {
        assert_eq!(wait(c), Ok(i), "queued calls move to the new worker");
    }
    for i in 0..100 {
        assert_eq!(wait(pool.call.echo(i)), Ok(i));
    }
    let stats = pool.stats();
    assert_eq!(stats.lost_workers, 1);
    assert_eq!(stats.lanes[0].restarts, 1);
    assert_eq!(stats.failed.worker_lost, 1);
    assert_eq!(stats.completed, 350);
    assert_eq!(stats.in_flight, 0);
    pool.shutdown();
}

#[test]
fn a_stuck_lane_is_replaced_and_its_queue_moves() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        hard_timeout: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .unwrap();
    let stuck = pool.call.stubborn(());
    let queued: Vec<_> = (0..100).map(|i| pool.call.echo(i)).collect();
    assert_eq!(wait(stuck), Err(CallError::Timeout));
    // The stubborn task never returns until released below: these only
    // settle because the lane got a new worker.
    for (i, c) in (0..100).zip(queued) {
        assert_eq!(wait(c), Ok(i));
    }
    let stats = pool.stats();
    assert_eq!(stats.stuck_lanes, 1);
    assert_eq!(stats.lanes[0].restarts, 1);
    assert_eq!(stats.failed.timeout, 1);
    assert_eq!(STUBBORN_RUNS.load(Ordering::SeqCst), 1, "runs once");
    RELEASE_STUBBORN.store(true, Ordering::SeqCst);
    pool.shutdown(); // does not wait for the detached stuck thread
}

#[test]
fn reject_policy_refuses_past_max_queue() {
    let pool = queued_pool(1, 3, QueuePolicy::Reject);
    let held: Vec<_> = (0..3).map(|_| pool.call.nap(30)).collect();
    assert_eq!(wait(pool.call.echo(1)), Err(CallError::QueueFull));
    for c in held {
        assert_eq!(wait(c), Ok(30));
    }
    // Room again once they settled.
    assert_eq!(wait(pool.call.echo(2)), Ok(2));
    let stats = pool.stats();
    assert_eq!(stats.failed.queue_full, 1);
    assert_eq!(stats.completed, 4);
}

#[test]
fn wait_policy_blocks_until_there_is_room() {
    let pool = queued_pool(1, 2, QueuePolicy::Wait);
    // 200 calls through a queue of 2: each call waits for room, none fails.
    let calls: Vec<_> = (0..200).map(|i| pool.call.echo(i)).collect();
    for (i, c) in (0..200).zip(calls) {
        assert_eq!(wait(c), Ok(i));
    }
    assert_eq!(pool.stats().failed.total(), 0);
}

#[test]
fn wait_policy_works_across_threads() {
    let pool = queued_pool(2, 4, QueuePolicy::Wait);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..500 {
                    let x = t * 1000 + i;
                    assert_eq!(wait(pool.call.echo(x)), Ok(x));
                }
            });
        }
    });
    assert_eq!(pool.stats().completed, 2000);
}

#[test]
fn shutdown_now_rejects_queued_and_running_calls() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let calls: Vec<_> = (0..20).map(|_| pool.call.nap(20)).collect();
    pool.shutdown_now();
    let outcomes: Vec<_> = calls.into_iter().map(wait).collect();
    let closed = outcomes
        .iter()
        .filter(|o| **o == Err(CallError::Closed))
        .count();
    // The first may have finished before the shutdown; no call is lost.
    assert!(closed >= 19, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| *o == Ok(20) || *o == Err(CallError::Closed)));
    assert_eq!(wait(pool.call.echo(1)), Err(CallError::Closed));
}

/// A lane runs its calls in order, and `shutdown_now` cuts that order once:
/// the calls before the cut finished, every call after it is rejected. The
/// worker is not held here, so it keeps running while thousands of queued
/// calls are being rejected; it must not start one the settler has not
/// reached yet (before the halt flag it could, and a later call then ran
/// after an earlier one was rejected).
#[test]
fn shutdown_now_cuts_a_lane_once() {
    const CALLS: u64 = 20_000;
    for round in 0..40 {
        // Mostly worker lanes (the salvage path); the shared queue now and then.
        let balancer = if round % 4 == 3 {
            Balancer::Shared
        } else {
            Balancer::RoundRobin
        };
        let pool = create_pool(PoolOptions {
            threads: 1,
            ring_bytes: 4 << 20,
            balancer,
            ..Default::default()
        })
        .unwrap();
        let calls: Vec<_> = (0..CALLS).map(|i| pool.call.echo(i)).collect();
        pool.shutdown_now();
        let outcomes: Vec<_> = calls.into_iter().map(wait).collect();
        let ran = outcomes.iter().take_while(|o| o.is_ok()).count();
        for (i, o) in outcomes.iter().enumerate() {
            if i < ran {
                assert_eq!(*o, Ok(i as u64), "round {round}");
            } else {
                assert_eq!(
                    *o,
                    Err(CallError::Closed),
                    "round {round}: call {i} is not rejected although call {ran}, sent before it, is"
                );
            }
        }
    }
}

#[test]
fn shutdown_timeout_drains_what_it_can_then_rejects() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let quick: Vec<_> = (0..10).map(|i| pool.call.echo(i)).collect();
    assert!(pool.shutdown_timeout(LIVENESS));
    for (i, c) in (0..10).zip(quick) {
        assert_eq!(wait(c), Ok(i));
    }

    let pool = create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap();
    let slow: Vec<_> = (0..50).map(|_| pool.call.nap(100)).collect();
    assert!(!pool.shutdown_timeout(Duration::from_millis(1)));
    let outcomes: Vec<_> = slow.into_iter().map(wait).collect();
    assert!(outcomes.contains(&Err(CallError::Closed)));
    assert!(outcomes
        .iter()
        .all(|o| *o == Ok(100) || *o == Err(CallError::Closed)));
}

#[test]
fn drop_with_a_grace_settles_every_call() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        drop_grace: Duration::from_millis(1),
        ..Default::default()
    })
    .unwrap();
    let slow: Vec<_> = (0..50).map(|_| pool.call.nap(100)).collect();
    drop(pool);
    for c in slow {
        let o = wait(c);
        assert!(o == Ok(100) || o == Err(CallError::Closed), "{o:?}");
    }
}

#[test]
fn stats_add_up() {
    let pool = create_pool(PoolOptions {
        threads: 2,
        timing: true,
        ..Default::default()
    })
    .unwrap();
    let ok: Vec<_> = (0..1000).map(|i| pool.call.echo(i)).collect();
    for c in ok {
        c.wait().unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.completed, 1000);
    assert_eq!(stats.failed.total(), 0);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.lanes.iter().map(|l| l.calls).sum::<u64>(), 1000);
    let run = stats.run.unwrap();
    let wait_time = stats.wait.unwrap();
    assert_eq!((run.count, wait_time.count), (1000, 1000));
    assert!(run.p50 <= run.p99 && run.p99 <= run.max);
    assert!(stats.lanes.iter().any(|l| !l.busy.is_zero()));
}

#[test]
fn wait_policy_never_blocks_an_async_caller() {
    // A single-threaded executor: if making or polling a call blocked the
    // thread while the queue is full, nothing could ever make room.
    let pool = queued_pool(1, 2, QueuePolicy::Wait);
    let total = futures::executor::block_on(async {
        let calls: Vec<_> = (0..300).map(|i| pool.call.echo(i)).collect();
        let mut total = 0;
        for c in futures::future::join_all(calls).await {
            total += c.unwrap();
        }
        total
    });
    assert_eq!(total, (0..300).sum::<u64>());
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.in_flight), (300, 0));
}

#[test]
fn a_call_waiting_for_room_can_be_cancelled_or_time_out() {
    let pool = queued_pool(1, 1, QueuePolicy::Wait);
    let first = pool.call.nap(100);
    let cancelled = pool.call.echo(1);
    assert!(!cancelled.is_ready());
    assert_eq!(cancelled.cancel(), knit::Cancelled::BeforeRun);
    assert_eq!(wait(cancelled), Err(CallError::Aborted));
    let late = pool.call.echo(2).timeout(Duration::from_millis(5));
    assert_eq!(wait(late), Err(CallError::Timeout));
    assert_eq!(wait(first), Ok(100));
    assert_eq!(wait(pool.call.echo(3)), Ok(3));
    let stats = pool.stats();
    assert_eq!(stats.failed.aborted + stats.failed.timeout, 2);
    assert_eq!(stats.completed, 2);
}
