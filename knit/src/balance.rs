//! Choosing a lane for each call.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

/// What a balancer sees of one lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneLoad {
    /// Calls sent to the lane and not finished yet.
    pub in_flight: usize,
    /// Whether this is the inline lane (the calling thread).
    pub inline: bool,
}

/// A user-defined routing strategy.
///
/// ```
/// use knit::{Balance, LaneLoad};
/// /// Always the least loaded lane.
/// struct LeastLoaded;
/// impl Balance for LeastLoaded {
///     fn pick(&self, lanes: &[LaneLoad]) -> usize {
///         (0..lanes.len()).min_by_key(|&i| lanes[i].in_flight).unwrap()
///     }
/// }
/// let lanes = [LaneLoad { in_flight: 3, inline: false }, LaneLoad { in_flight: 1, inline: false }];
/// assert_eq!(LeastLoaded.pick(&lanes), 1);
/// ```
pub trait Balance: Send + Sync + 'static {
    /// Returns the index of the lane for the next call; `lanes` is never empty.
    /// An out-of-range index is taken modulo the number of lanes.
    fn pick(&self, lanes: &[LaneLoad]) -> usize;
}

/// The built-in strategies, or your own.
#[derive(Clone, Default)]
pub enum Balancer {
    /// Each call to the next lane in turn (default).
    #[default]
    RoundRobin,
    /// The first lane with nothing in flight; round robin when all are busy.
    FirstIdle,
    /// A random lane.
    RandomLane,
    /// The first idle lane; a random one when all are busy.
    FirstIdleOrRandom,
    /// A user strategy.
    Custom(Arc<dyn Balance>),
    /// One submission queue for the whole pool: each idle worker claims the
    /// next call (each call exactly once). Best for skewed task lengths, where
    /// a call routed to a busy lane would otherwise wait behind a long task;
    /// it costs an allocation and a copy of the argument per call. The inline
    /// lane is not used with it.
    Shared,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Balancer::RoundRobin => "RoundRobin",
            Balancer::FirstIdle => "FirstIdle",
            Balancer::RandomLane => "RandomLane",
            Balancer::FirstIdleOrRandom => "FirstIdleOrRandom",
            Balancer::Custom(_) => "Custom(..)",
            Balancer::Shared => "Shared",
        })
    }
}

/// Per-pool state of the built-in strategies.
pub(crate) struct Router {
    /// Round-robin's turn: written by every call, so kept off the lines of
    /// the pool state that workers read on every call.
    next: CachePadded<AtomicUsize>,
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// xorshift64*, seeded per thread from its id and the clock: cheap and
/// uncorrelated enough to spread calls.
fn random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        if x == 0 {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            let addr = state as *const Cell<u64> as u64;
            x = (seed ^ addr.rotate_left(32)) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

impl Router {
    pub(crate) fn new() -> Self {
        Router {
            next: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Picks among lanes `0..count` for which `eligible` holds, given their loads.
    pub(crate) fn pick(
        &self,
        balancer: &Balancer,
        count: usize,
        load: impl Fn(usize) -> usize,
        eligible: impl Fn(usize) -> bool,
        is_inline: impl Fn(usize) -> bool,
    ) -> usize {
        let round_robin = || {
            for _ in 0..count {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % count;
                if eligible(i) {
                    return i;
                }
            }
            (0..count).find(|&i| eligible(i)).unwrap_or(0)
        };
        let random_lane = || {
            let start = (random() % count as u64) as usize;
            (0..count)
                .map(|k| (start + k) % count)
                .find(|&i| eligible(i))
                .unwrap_or(0)
        };
        let first_idle = || (0..count).find(|&i| eligible(i) && load(i) == 0);
        match balancer {
            // Calls never reach a lane through `pick` with the shared queue.
            Balancer::RoundRobin | Balancer::Shared => round_robin(),
            Balancer::FirstIdle => first_idle().unwrap_or_else(round_robin),
            Balancer::RandomLane => random_lane(),
            Balancer::FirstIdleOrRandom => first_idle().unwrap_or_else(random_lane),
            Balancer::Custom(user) => {
                let loads: Vec<LaneLoad> = (0..count)
                    .map(|i| LaneLoad {
                        in_flight: load(i),
                        inline: is_inline(i),
                    })
                    .collect();
                let i = user.pick(&loads) % count;
                if eligible(i) {
                    i
                } else {
                    round_robin()
                }
            }
        }
    }
}
