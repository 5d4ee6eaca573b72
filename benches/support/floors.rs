//! The fastest possible cross-thread round trips on this machine, as floors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::runner::timed;

use crossbeam_utils::CachePadded;
use knit_transport::futex::{FutexWord, Sharing};

/// Round trips of a bare two-thread ping-pong on two cache-padded atomics, both
/// threads spinning: no framing, no payload, nothing but the cache-line
/// transfers any cross-thread call must pay. Returns the time for `iters`.
///
/// ```
/// let t = knit_bench::floors::atomic_ping_pong(1000);
/// assert!(t.as_nanos() > 0);
/// ```
pub fn atomic_ping_pong(iters: u64) -> Duration {
    let ping = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let pong = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let (ping2, pong2) = (ping.clone(), pong.clone());
    let warmup = iters / 10 + 100;
    let total = warmup + iters;
    let responder = std::thread::spawn(move || {
        crate::pin_to(1);
        for i in 1..=total {
            while ping2.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            pong2.store(i, Ordering::Release);
        }
    });
    crate::pin_to(0);
    let elapsed = timed(warmup, iters, |i| {
        ping.store(i + 1, Ordering::Release);
        while pong.load(Ordering::Acquire) != i + 1 {
            std::hint::spin_loop();
        }
    });
    responder.join().unwrap();
    elapsed
}

/// Round trips of a ping-pong where both sides always sleep on a futex and wake
/// each other: the floor for a call to a parked worker.
///
/// ```
/// let t = knit_bench::floors::futex_ping_pong(10);
/// assert!(t.as_nanos() > 0);
/// ```
pub fn futex_ping_pong(iters: u64) -> Duration {
    struct Pair {
        ping: CachePadded<FutexWord>,
        pong: CachePadded<FutexWord>,
    }
    let pair = Arc::new(Pair {
        ping: CachePadded::new(FutexWord::new(0)),
        pong: CachePadded::new(FutexWord::new(0)),
    });
    let other = pair.clone();
    let warmup = iters / 10 + 10;
    let total = (warmup + iters) as u32;
    let wait_for = |word: &FutexWord, value: u32| {
        while word.atomic().load(Ordering::Acquire) != value {
            word.wait(value.wrapping_sub(1), Sharing::Private, None);
        }
    };
    let responder = std::thread::spawn(move || {
        crate::pin_to(1);
        for i in 1..=total {
            wait_for(&other.ping, i);
            other.pong.atomic().store(i, Ordering::Release);
            other.pong.wake_one(Sharing::Private);
        }
    });
    crate::pin_to(0);
    let elapsed = timed(warmup, iters, |i| {
        let i = i as u32 + 1;
        pair.ping.atomic().store(i, Ordering::Release);
        pair.ping.wake_one(Sharing::Private);
        wait_for(&pair.pong, i);
    });
    responder.join().unwrap();
    elapsed
}
