//! How a `Call` in flight reaches its pool: through the slot it holds, with
//! no reference count of its own (counting one per call cost two locked
//! instructions on the caller's path of every call).

use std::ptr::NonNull;
use std::sync::Arc;

use crate::shared::Shared;

/// A pointer to a pool's shared state, owned by a call that holds one of the
/// pool's call slots.
///
/// The call table keeps the state alive until the pool is closed and every
/// slot has come back (`table::free_list`), so the pointer is valid for as
/// long as its owner holds its slot. The owner drops the table's keep-alive
/// (the [`crate::table::Released`] its release hands back) only after its
/// last use of the pointer.
///
/// One formal gap remains: when a caller's release hands the freeing of its
/// slot to another party (the runner, or the count of a draining table), the
/// caller is still inside table methods holding `&CallTable` for the few
/// instructions until they return, and after the pool is closed the other
/// party may free the table in that window. Nothing is read after the
/// hand-off, but under Stacked/Tree Borrows a reference argument must stay
/// valid until its function returns (the shape of rust-lang/rust#55005).
pub(crate) struct PoolRef(NonNull<Shared>);

// SAFETY: a `PoolRef` only ever gives out `&Shared`, and `Shared` is `Sync`
// (checked below), so moving the pointer to another thread is like moving a
// shared borrow.
unsafe impl Send for PoolRef {}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Shared>();
};

impl PoolRef {
    /// Points at `shared`, for a call that has just taken a slot of its table.
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        PoolRef(NonNull::from(&**shared))
    }

    /// The pool's shared state.
    ///
    /// # Safety
    /// The owner still holds the slot it held when this was made (it has not
    /// taken its outcome or released it).
    pub(crate) unsafe fn get(&self) -> &Shared {
        // SAFETY: the caller holds a slot of this pool's table, and the table
        // keeps `Shared` alive until every slot is back (see the type docs).
        unsafe { self.0.as_ref() }
    }
}

/// A pool's shared state must be freed once its last handle and its last
/// call are gone, however the pool ended, and not before: a `Call` reaches it
/// only through the slot it holds.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::fault::{die_after, echo, eventually, freed, nap, one, pool};
    use crate::{Balancer, CallError, Inliner, PoolOptions};

    #[test]
    fn a_call_keeps_the_pool_alive_after_every_handle_is_gone() {
        let (pool, weak) = pool(one());
        let kept = pool.call.echo(7);
        let done: Vec<_> = (0..100).map(|i| pool.call.echo(i)).collect();
        for (i, c) in done.into_iter().enumerate() {
            assert_eq!(c.wait(), Ok(i as u64));
        }
        drop(pool);
        // The worker exits once its closed lane is empty; what is left then
        // is the table's own reference, held for `kept`.
        eventually("the worker never let go of the pool", || {
            weak.strong_count() == 1
        });
        assert!(kept.is_ready());
        assert_eq!(kept.wait(), Ok(7));
        assert_eq!(weak.strong_count(), 0, "the last call freed the pool");
    }

    #[test]
    fn dropping_the_last_call_frees_the_pool() {
        let (pool, weak) = pool(one());
        let kept = pool.call.nap(20);
        drop(pool);
        eventually("the worker never let go of the pool", || {
            weak.strong_count() == 1
        });
        drop(kept);
        assert_eq!(weak.strong_count(), 0);
    }

    #[test]
    fn calls_dropped_in_flight_and_calls_outliving_the_pool() {
        let (pool, weak) = pool(one());
        let blocker = pool.call.nap(20);
        for i in 0..500 {
            drop(pool.call.echo(i));
        }
        let outliving: Vec<_> = (0..500).map(|i| pool.call.echo(i)).collect();
        drop(pool);
        for (i, c) in outliving.into_iter().enumerate() {
            assert_eq!(c.wait(), Ok(i as u64));
        }
        assert!(weak.strong_count() > 0, "the blocker's call holds the pool");
        assert_eq!(blocker.wait(), Ok(20));
        freed(&weak);
    }

    #[test]
    fn shutdown_now_with_queued_calls() {
        let (pool, weak) = pool(one());
        let calls: Vec<_> = (0..200).map(|_| pool.call.nap(1)).collect();
        pool.shutdown_now();
        assert_eq!(pool.call.echo(1).wait(), Err(CallError::Closed));
        let closed = calls
            .into_iter()
            .map(|c| c.wait())
            .filter(|r| *r == Err(CallError::Closed))
            .count();
        assert!(closed > 0, "some queued calls were rejected");
        drop(pool);
        freed(&weak);
    }

    #[test]
    fn timed_out_and_cancelled_calls() {
        let (pool, weak) = pool(one());
        let slow = pool.call.nap(50).timeout(Duration::from_millis(1));
        let queued = pool.call.nap(1);
        assert_eq!(queued.cancel(), crate::Cancelled::BeforeRun);
        // Released before its timeout settles it: the watchdog frees it.
        let dropped = pool.call.nap(50).timeout(Duration::from_millis(1));
        drop(dropped);
        drop(pool);
        assert_eq!(slow.wait(), Err(CallError::Timeout));
        assert_eq!(queued.wait(), Err(CallError::Aborted));
        freed(&weak);
    }

    #[test]
    fn inline_lane_and_shared_queue_pools() {
        let inline = PoolOptions {
            inliner: Some(Inliner {
                dispatch_threshold: 0,
                ..Inliner::default()
            }),
            ..one()
        };
        let shared = PoolOptions {
            balancer: Balancer::Shared,
            ..one()
        };
        for (options, has_inline) in [(inline, true), (shared, false)] {
            let (pool, weak) = pool(options);
            let calls: Vec<_> = (0..300).map(|i| pool.call.echo(i)).collect();
            let dropped: Vec<_> = (0..300).map(|i| pool.call.echo(i)).collect();
            drop(dropped);
            drop(pool);
            let mut rejected = 0;
            for (i, c) in calls.into_iter().enumerate() {
                match c.wait() {
                    Ok(v) => assert_eq!(v, i as u64),
                    // Dropping a pool rejects what its inline lane still queues.
                    Err(CallError::Closed) if has_inline => rejected += 1,
                    Err(e) => panic!("call {i}: {e}"),
                }
            }
            assert!(!has_inline || rejected > 0, "the inline lane was used");
            freed(&weak);
        }
    }

    /// An escaped panic on the inline lane unwinds the waiting caller, and on
    /// a worker lane kills the worker: either way the call fails, its slot
    /// comes back and the pool is freed.
    #[test]
    fn escaped_panics_on_the_inline_lane_and_a_worker_lane() {
        let (pool, weak) = pool(PoolOptions {
            inliner: Some(Inliner {
                dispatch_threshold: 0,
                ..Inliner::default()
            }),
            ..one()
        });
        // Round robin over the worker lane and the inline lane.
        let calls: Vec<_> = (0..2).map(|_| pool.call.die_after(0)).collect();
        let mut unwound = 0;
        for call in calls {
            let id = call.id();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.wait())) {
                Ok(r) => assert_eq!(r, Err(CallError::WorkerLost), "call {id:?}"),
                Err(_) => unwound += 1,
            }
        }
        assert_eq!(unwound, 1, "the inline call unwound its waiter");
        assert_eq!(pool.call.echo(5).wait(), Ok(5));
        drop(pool);
        freed(&weak);
    }

    #[test]
    fn a_pool_shut_down_with_nothing_in_flight() {
        let (pool, weak) = pool(one());
        assert_eq!(pool.call.echo(3).wait(), Ok(3));
        pool.shutdown();
        assert_eq!(weak.strong_count(), 1, "only the pool holds its state");
        drop(pool);
        assert_eq!(weak.strong_count(), 0);
    }

    /// Callers keep sending (through clones of `pool.call`) while the pool is
    /// dropped: every call settles (a result, or `Closed` once the pool has
    /// closed), none is left without a runner, and the state is freed.
    #[test]
    fn calls_racing_the_pools_drop() {
        let variants = [
            one(),
            PoolOptions {
                inliner: Some(Inliner {
                    dispatch_threshold: 0,
                    ..Inliner::default()
                }),
                ..one()
            },
            PoolOptions {
                balancer: Balancer::Shared,
                threads: 2,
                ..PoolOptions::default()
            },
        ];
        for options in variants {
            for round in 0..10u64 {
                let (pool, weak) = pool(options.clone());
                let senders: Vec<_> = (0..3u64)
                    .map(|thread| {
                        let caller = pool.call.clone();
                        std::thread::spawn(move || {
                            let mut kept = Vec::new();
                            for i in 0..3000u64 {
                                let call = caller.echo(i);
                                // Every third call is dropped unawaited.
                                if (i + thread + round) % 3 != 0 {
                                    kept.push((i, call));
                                }
                            }
                            for (i, call) in kept {
                                match call.wait() {
                                    Ok(v) => assert_eq!(v, i),
                                    Err(CallError::Closed) => {}
                                    Err(e) => panic!("call {i}: {e}"),
                                }
                            }
                        })
                    })
                    .collect();
                std::thread::sleep(Duration::from_micros(200 * round));
                drop(pool);
                for s in senders {
                    s.join().unwrap();
                }
                freed(&weak);
            }
        }
    }
}
