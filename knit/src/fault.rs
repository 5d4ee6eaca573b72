//! Fault injection for the crate's own tests: thread spawns that fail on
//! demand. A pool must end cleanly when it cannot start a worker, and must
//! settle every call of a lane whose dead worker cannot be replaced; neither
//! happens on a healthy machine, so the tests make it happen. Also the
//! helpers and tasks the tests share, to make calls and watch a pool end.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::shared::Shared;
use crate::{create_pool, Pool, PoolOptions};

thread_local! {
    /// How many more worker spawns made on this thread succeed before the
    /// rest fail (`None`: no limit).
    static SPAWNS_LEFT: Cell<Option<u32>> = const { Cell::new(None) };
    /// The pool state made last on this thread (a pool that fails to start
    /// hands no handle back to look at).
    static LAST_MADE: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
}

/// Lets the next `n` worker spawns on this thread succeed and fails the
/// ones after them; `None` lifts the limit.
pub(crate) fn fail_spawns_after(n: Option<u32>) {
    SPAWNS_LEFT.with(|left| left.set(n));
}

/// Whether a spawn made now on this thread is to fail (uses up one success).
pub(crate) fn spawn_fails_here() -> bool {
    SPAWNS_LEFT.with(|left| match left.get() {
        None => false,
        Some(0) => true,
        Some(n) => {
            left.set(Some(n - 1));
            false
        }
    })
}

/// Records `shared` as the pool state made last on this thread.
pub(crate) fn made(shared: &Arc<Shared>) {
    LAST_MADE.with(|last| *last.borrow_mut() = Arc::downgrade(shared));
}

/// The pool state made last on this thread.
pub(crate) fn last_made() -> Weak<Shared> {
    LAST_MADE.with(|last| last.borrow().clone())
}

/// One worker (unpinned by [`pool`]).
pub(crate) fn one() -> PoolOptions {
    PoolOptions {
        threads: 1,
        ..PoolOptions::default()
    }
}

/// An unpinned pool made with `options`, and a weak handle on its state.
pub(crate) fn pool(options: PoolOptions) -> (Pool, Weak<Shared>) {
    let pool = create_pool(PoolOptions {
        pin: false,
        ..options
    })
    .unwrap();
    let weak = Arc::downgrade(&pool.call.shared);
    (pool, weak)
}

/// Polls until `done` (workers exit on their own time once a pool is
/// closed); fails the test with `what` after 20 s.
pub(crate) fn eventually(what: &str, done: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the pool state behind `weak` is freed (fails the test if it
/// never is).
pub(crate) fn freed(weak: &Weak<Shared>) {
    eventually("the pool's state was never freed", || {
        weak.strong_count() == 0
    });
}

/// A panic payload whose `Drop` panics, so the panic escapes the task's
/// `catch_unwind` and unwinds the thread running it (a worker dies).
pub(crate) struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the panic payload exploded while being dropped");
    }
}

/// Returns its argument (a task for the crate's tests).
#[crate::task]
pub(crate) fn echo(x: u64) -> u64 {
    x
}

/// Sleeps `ms` milliseconds, then returns them.
#[crate::task]
pub(crate) fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Sleeps `ms` milliseconds, then panics with a [`Bomb`]: the thread running
/// it unwinds (a worker dies; on the inline lane, the waiting caller).
#[crate::task]
pub(crate) fn die_after(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    std::panic::panic_any(Bomb)
}

mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::{Balancer, CallError, PoolError};

    /// The third worker cannot be started: `create_pool` reports it, and the
    /// two already running leave and let go of the pool's state (with the
    /// shared queue too, whose workers sleep on the queue, not on a ring).
    #[test]
    fn a_pool_whose_worker_cannot_start_ends_cleanly() {
        for balancer in [Balancer::RoundRobin, Balancer::Shared] {
            fail_spawns_after(Some(2));
            let made = create_pool(PoolOptions {
                threads: 3,
                pin: false,
                balancer: balancer.clone(),
                ..PoolOptions::default()
            });
            fail_spawns_after(None);
            match made {
                Err(PoolError::Spawn(e)) => assert!(e.to_string().contains("injected"), "{e}"),
                Err(e) => panic!("{balancer:?}: wrong error: {e}"),
                Ok(_) => panic!("{balancer:?}: the pool started without its third worker"),
            }
            // The started workers hold it until they have left.
            let weak = last_made();
            freed(&weak);
        }
    }

    /// A worker dies and no new one can be started: the call it ran, the
    /// calls queued behind it and every later call to that lane fail with
    /// `WorkerLost` (none is left waiting), and the pool still ends cleanly.
    #[test]
    fn a_dead_lane_that_cannot_be_replaced_fails_its_calls() {
        let (pool, weak) = pool(one());
        assert_eq!(pool.call.echo(1).wait(), Ok(1));
        pool.call
            .shared
            .refuse_spawns
            .store(true, Ordering::Relaxed);
        let dying = pool.call.die_after(50);
        let queued: Vec<_> = (0..100).map(|i| pool.call.echo(i)).collect();
        assert_eq!(dying.wait(), Err(CallError::WorkerLost));
        for (i, call) in queued.into_iter().enumerate() {
            assert_eq!(call.wait(), Err(CallError::WorkerLost), "queued call {i}");
        }
        for i in 0..10 {
            assert_eq!(
                pool.call.echo(i).wait(),
                Err(CallError::WorkerLost),
                "call {i} after the lane died"
            );
        }
        assert_eq!(pool.stats().lost_workers, 0, "no worker was replaced");
        drop(pool);
        freed(&weak);
    }
}
