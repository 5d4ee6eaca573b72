//! Review tests (h-review): calls that stay pending on a worker (async Rust
//! tasks) against unwinding workers, `shutdown_now`, cancels and timeouts.

use std::sync::Mutex;
#[cfg(feature = "js")]
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use knit::{create_pool, CallError, Pool, PoolOptions};

mod support;
use support::{drained, sleep};

#[knit::task]
async fn rv_nap(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms
}

#[knit::task]
fn rv_block(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// A panic payload whose `Drop` panics: it unwinds past `run_task`'s
/// `catch_unwind` and ends the worker thread (the DeathWatch path).
struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics");
    }
}

static BOMB_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[knit::task]
fn rv_bomb(_: ()) -> u64 {
    BOMB_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::panic::panic_any(Bomb)
}

fn bomb_runs() -> usize {
    BOMB_RUNS.load(std::sync::atomic::Ordering::SeqCst)
}

static SERIAL: Mutex<()> = Mutex::new(());

fn one() -> Pool {
    create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap()
}

/// Control: with nothing pending, the call whose worker unwinds fails with
/// `WorkerLost`. PASSES.
#[test]
fn unwinding_worker_without_pending_loses_its_call() {
    let pool = one();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = bomb_runs();
    let r = pool.call.rv_bomb(()).timeout(Duration::from_secs(3)).wait();
    assert_eq!(r, Err(CallError::WorkerLost));
    assert_eq!(bomb_runs() - before, 1, "the call ran once");
    assert_eq!(pool.call.rv_nap(1).wait(), Ok(1));
}

/// Was a bug (fixed): with an async task pending on the worker, `AsyncTasks::drop`
/// (run while the worker unwinds) settles it through `run::settle`, which
/// calls `status.stop()`: the DeathWatch then finds no current call (so no
/// `runner_lost`), and the lane replacement's `retire()` keeps no frame back,
/// so the call that was running when the worker died is redelivered to the
/// new worker and RUNS AGAIN. (The task body ran twice.)
#[test]
fn unwinding_worker_with_a_pending_async_task_loses_the_running_call() {
    let pool = one();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = bomb_runs();
    let pending = pool.call.rv_nap(1500);
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let r = pool.call.rv_bomb(()).timeout(Duration::from_secs(3)).wait();
    assert_eq!(
        r,
        Err(CallError::WorkerLost),
        "after {:?}",
        started.elapsed()
    );
    assert_eq!(pending.wait(), Err(CallError::WorkerLost));
    assert_eq!(bomb_runs() - before, 1, "the call ran once");
    assert_eq!(pool.call.rv_nap(1).wait(), Ok(1));
    assert_eq!(drained(&pool), 0);
}

/// Was a bug (fixed): `shutdown_now` promises to settle every unfinished call at once,
/// but a pending async task is neither running nor queued: only its worker's
/// next `turn` settles it, which waits for whatever sync task that worker
/// runs. (The pending call settled after ~1.5 s.)
#[test]
fn shutdown_now_settles_pending_async_calls_at_once() {
    let pool = one();
    let pending = pool.call.rv_nap(4000);
    std::thread::sleep(Duration::from_millis(50));
    let blocking = pool.call.rv_block(1500);
    std::thread::sleep(Duration::from_millis(50));
    pool.shutdown_now();
    let at = Instant::now();
    assert_eq!(pending.wait(), Err(CallError::Closed));
    let took = at.elapsed();
    assert_eq!(blocking.wait(), Err(CallError::Closed));
    assert!(
        took < Duration::from_millis(500),
        "pending call settled after {took:?}"
    );
}

/// Exactly once under random timeouts and cancels, with `in_flight` back to
/// 0 after a short drain. PASSES.
#[test]
fn async_calls_with_random_timeouts_and_cancels_settle_once() {
    for balancer in [knit::Balancer::default(), knit::Balancer::Shared] {
        let pool = create_pool(PoolOptions {
            threads: 2,
            balancer,
            ..Default::default()
        })
        .unwrap();
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut calls = Vec::new();
        for _ in 0..400 {
            let ms = rnd() % 30;
            let mut c = pool.call.rv_nap(ms);
            let what = rnd() % 4;
            if what == 1 {
                c = c.timeout(Duration::from_millis(rnd() % 30));
            }
            calls.push((ms, what, c));
        }
        for (i, (_, what, c)) in calls.iter().enumerate() {
            if *what == 2 && i % 2 == 0 {
                c.cancel();
            }
        }
        for (ms, what, c) in calls {
            let r = c.wait();
            match (what, r) {
                (_, Ok(v)) => assert_eq!(v, ms),
                (1, Err(CallError::Timeout)) | (2, Err(CallError::Aborted)) => {}
                (w, e) => panic!("{w}: {e:?}"),
            }
        }
        assert_eq!(drained(&pool), 0, "{:?}", pool.stats());
        pool.shutdown();
    }
}

#[cfg(feature = "js")]
static SELF_POOL: OnceLock<Pool> = OnceLock::new();

#[cfg(feature = "js")]
#[knit::task]
async fn rv_awaits_js_on_own_lane(_: ()) -> Result<i64, String> {
    let pool = SELF_POOL.get().unwrap();
    let c: knit::Call<i64> = pool.eval("40 + 2");
    c.await.map_err(|e| e.to_string())
}

/// Was a bug: an async task that awaits a JS call its own lane got (one
/// worker) failed with `WouldDeadlock` (a poll was treated like a blocking
/// wait), although the worker's event loop runs the JS call while the
/// future waits.
#[cfg(feature = "js")]
#[test]
fn an_async_task_may_await_a_js_call_on_its_own_lane() {
    let pool = SELF_POOL.get_or_init(|| {
        create_pool(PoolOptions {
            threads: 1,
            js: Some(Default::default()),
            ..Default::default()
        })
        .unwrap()
    });
    let r = pool
        .call
        .rv_awaits_js_on_own_lane(())
        .timeout(Duration::from_secs(3))
        .wait();
    assert_eq!(r, Ok(42));
}

/// Was a bug (fixed): a laned call that is pending (its future started, `status.stop()`
/// called while it waits) looks "not started" to the early-settle handshake
/// (`LaneWorkers::runs` sees no worker on it, `laned_ran` sees no
/// RUNNING/RESULT bit), so `cancel` reports `BeforeRun` ("will never run")
/// for a task that has already run up to its first await. Was a bug: a call
/// that goes pending now says it started (`CallTable::mark_waiting`).
#[test]
fn cancelling_a_pending_async_call_says_it_was_running() {
    let pool = one();
    let c = pool.call.rv_nap(2000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.cancel(), knit::Cancelled::WhileRunning);
    assert_eq!(c.wait(), Err(CallError::Aborted));
    assert_eq!(drained(&pool), 0);
}
