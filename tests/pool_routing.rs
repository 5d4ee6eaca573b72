//! Balancers and the inline lane: counted per lane, not timed.

use std::sync::Arc;

use knit::{create_pool, Balance, Balancer, InlinePosition, Inliner, LaneLoad, PoolOptions};

#[knit::task]
fn ident(x: u64) -> u64 {
    x
}

#[knit::task(no_inline)]
fn never_inline(x: u64) -> u64 {
    x
}

fn run_batch(pool: &knit::Pool, n: u64) {
    let calls: Vec<_> = (0..n).map(|i| pool.call.ident(i)).collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(i as u64));
    }
}

fn pool_with(balancer: Balancer, threads: usize) -> knit::Pool {
    create_pool(PoolOptions {
        threads,
        balancer,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn round_robin_spreads_evenly() {
    let pool = pool_with(Balancer::RoundRobin, 3);
    run_batch(&pool, 3000);
    assert_eq!(pool.completed_per_lane(), vec![1000, 1000, 1000]);
}

#[test]
fn random_lane_uses_every_lane() {
    let pool = pool_with(Balancer::RandomLane, 3);
    run_batch(&pool, 3000);
    let counts = pool.completed_per_lane();
    assert_eq!(counts.iter().sum::<u64>(), 3000);
    // Each lane's share of 3000 uniform picks is 1000 ± a few dozen; 500 is far outside chance.
    assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
}

#[test]
fn first_idle_prefers_the_first_lane_when_calls_are_sequential() {
    let pool = pool_with(Balancer::FirstIdle, 3);
    for i in 0..300 {
        assert_eq!(pool.call.ident(i).wait(), Ok(i));
    }
    // One call at a time: lane 0 is idle every time.
    assert_eq!(pool.completed_per_lane(), vec![300, 0, 0]);
}

#[test]
fn first_idle_or_random_spreads_a_burst() {
    let pool = pool_with(Balancer::FirstIdleOrRandom, 3);
    run_batch(&pool, 3000);
    let counts = pool.completed_per_lane();
    assert_eq!(counts.iter().sum::<u64>(), 3000);
    assert!(counts.iter().filter(|&&c| c > 0).count() >= 2, "{counts:?}");
}

struct LastLane;
impl Balance for LastLane {
    fn pick(&self, lanes: &[LaneLoad]) -> usize {
        lanes.len() - 1
    }
}

#[test]
fn a_custom_balancer_is_obeyed() {
    let pool = pool_with(Balancer::Custom(Arc::new(LastLane)), 3);
    run_batch(&pool, 500);
    assert_eq!(pool.completed_per_lane(), vec![0, 0, 500]);
}

fn inline_pool(threshold: usize, position: InlinePosition) -> knit::Pool {
    create_pool(PoolOptions {
        threads: 2,
        inliner: Some(Inliner {
            position,
            batch_size: 4,
            dispatch_threshold: threshold,
        }),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn the_inline_lane_stays_out_below_the_dispatch_threshold() {
    let pool = inline_pool(8, InlinePosition::Last);
    // One call at a time never has 8 in flight.
    for i in 0..200 {
        assert_eq!(pool.call.ident(i).wait(), Ok(i));
    }
    let counts = pool.completed_per_lane();
    assert_eq!(counts[2], 0, "{counts:?}");
    assert_eq!(counts[0] + counts[1], 200);
}

#[test]
fn the_inline_lane_engages_past_the_dispatch_threshold() {
    let pool = inline_pool(8, InlinePosition::First);
    // Round robin over 3 lanes; once 8 calls are in flight the inline lane
    // (position 0) takes its turn.
    let calls: Vec<_> = (0..3000).map(|i| pool.call.ident(i)).collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(i as u64));
    }
    let counts = pool.completed_per_lane();
    assert_eq!(counts.iter().sum::<u64>(), 3000);
    assert!(counts[0] > 0, "inline lane never used: {counts:?}");
}

#[test]
fn tasks_marked_no_inline_never_run_inline() {
    let pool = inline_pool(0, InlinePosition::First);
    let calls: Vec<_> = (0..600).map(|i| pool.call.never_inline(i)).collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(i as u64));
    }
    assert_eq!(pool.completed_per_lane()[0], 0);
}

/// An awaited call must not run a task on the polling thread: the inline
/// lane's calls move to the worker lane when polled.
#[test]
fn inline_calls_complete_on_a_worker_lane_when_awaited() {
    let pool = inline_pool(0, InlinePosition::First);
    let calls: Vec<_> = (0..300).map(|i| pool.call.ident(i)).collect();
    let results = futures::executor::block_on(async {
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.unwrap());
        }
        out
    });
    assert_eq!(results, (0..300).collect::<Vec<u64>>());
    let per_lane = pool.completed_per_lane();
    assert_eq!(per_lane[0], 0, "the inline lane ran none: {per_lane:?}");
    assert_eq!(per_lane.iter().sum::<u64>(), 300, "{per_lane:?}");
}

static HELD: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static HELD_CHANGED: std::sync::Condvar = std::sync::Condvar::new();

/// Blocks until the test lets go.
#[knit::task]
fn hold() -> u8 {
    let mut held = HELD.lock().unwrap();
    *held = true;
    HELD_CHANGED.notify_all();
    while *held {
        held = HELD_CHANGED.wait(held).unwrap();
    }
    1
}

#[test]
fn shared_queue_lets_the_idle_worker_take_everything_while_one_is_busy() {
    let pool = pool_with(Balancer::Shared, 2);
    let long = pool.call.hold();
    {
        let mut held = HELD.lock().unwrap();
        while !*held {
            held = HELD_CHANGED.wait(held).unwrap();
        }
    }
    // With one worker held, every one of these is claimed by the other one:
    // none waits behind the long call (a per-lane balancer would queue half
    // of them there).
    run_batch(&pool, 2000);
    let counts = pool.completed_per_lane();
    assert_eq!(counts.iter().sum::<u64>(), 2000, "{counts:?}");
    assert!(counts.contains(&2000), "{counts:?}");
    *HELD.lock().unwrap() = false;
    HELD_CHANGED.notify_all();
    assert_eq!(long.wait(), Ok(1));
    assert_eq!(pool.stats().completed, 2001);
}

#[test]
fn shared_queue_runs_each_call_once_under_many_callers() {
    let pool = pool_with(Balancer::Shared, 3);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let pool = &pool;
            s.spawn(move || {
                let calls: Vec<_> = (0..5000).map(|i| pool.call.ident(t << 32 | i)).collect();
                for (i, c) in (0..5000).zip(calls) {
                    assert_eq!(c.wait(), Ok(t << 32 | i));
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.completed, 20_000);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(pool.completed_per_lane().iter().sum::<u64>(), 20_000);
    pool.shutdown();
    assert_eq!(pool.call.ident(1).wait(), Err(knit::CallError::Closed));
}
