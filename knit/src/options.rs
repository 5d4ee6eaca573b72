//! Pool options.

use std::time::Duration;

use crate::balance::Balancer;

/// Which end of the lane list the inline lane takes (matters to `RoundRobin`
/// and `FirstIdle`, which scan lanes in order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InlinePosition {
    /// Before the worker lanes.
    First,
    /// After the worker lanes.
    #[default]
    Last,
}

/// The calling thread as an extra lane: calls routed to it run on whichever
/// thread waits for a result (`Call::wait`), in batches. A call of it that
/// is polled (`.await`) or dropped instead moves to a worker lane, so async
/// callers never run tasks.
///
/// ```
/// use knit::{Inliner, InlinePosition, PoolOptions};
/// let opts = PoolOptions {
///     inliner: Some(Inliner { position: InlinePosition::Last, batch_size: 4, dispatch_threshold: 16 }),
///     ..PoolOptions::default()
/// };
/// assert!(opts.inliner.is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inliner {
    /// Where the inline lane sits among the lanes.
    pub position: InlinePosition,
    /// How many queued inline calls a waiting thread runs before checking its own result again.
    pub batch_size: usize,
    /// The inline lane is eligible only while at least this many calls are in flight.
    pub dispatch_threshold: usize,
}

impl Default for Inliner {
    fn default() -> Self {
        Inliner {
            position: InlinePosition::Last,
            batch_size: 1,
            dispatch_threshold: 1,
        }
    }
}

/// Everything configurable about a pool; `PoolOptions::default()` is a good start.
///
/// ```
/// use knit::PoolOptions;
/// let opts = PoolOptions { threads: 2, ..Default::default() };
/// assert_eq!(opts.threads, 2);
/// ```
#[derive(Clone)]
pub struct PoolOptions {
    /// Worker threads (default: one fewer than the CPUs the process may use,
    /// at least 1). "May use" is the process's CPU set (`taskset`, a
    /// container's cpuset) capped by its cgroup CPU quota (a container's
    /// `--cpus`), as the process was started: a thread that pins itself
    /// later does not shrink it (on Linux the set is read before `main`).
    pub threads: usize,
    /// Pin worker `i` to CPU `(i + 1) % n` of the process's CPU set of `n`
    /// CPUs (default: on when that set has more CPUs than workers; skipped
    /// quietly where pinning is unavailable). Workers are never pinned
    /// outside the set. Unpinned workers inherit the affinity of the thread
    /// that creates the pool, so a caller pinned to one core that turns this
    /// off confines its workers to that core too.
    pub pin: bool,
    /// How calls are spread over lanes.
    pub balancer: Balancer,
    /// Run some calls on the calling thread (off by default).
    pub inliner: Option<Inliner>,
    /// How long an idle worker spins before parking.
    pub worker_spin: Duration,
    /// How long a waiting caller spins before parking. When `threads` is at
    /// least the CPUs the process may use (see `threads`), a waiting caller
    /// shares its core with a worker, so it yields the core between looks
    /// instead of keeping it.
    pub caller_spin: Duration,
    /// Largest encoded argument or result (default 16 MiB; at most
    /// `u32::MAX` bytes, one byte short of 4 GiB).
    pub max_payload_bytes: usize,
    /// Bytes of each lane's request ring (a power of two from 1 KiB to
    /// 1 GiB; default 64 KiB).
    pub ring_bytes: usize,
    /// Stack size of each worker thread (default 8 MiB, at least 64 KiB;
    /// untouched pages cost no memory). Tasks run on it, and so do the
    /// decoding of their arguments and the encoding of their results, whose
    /// nesting depth knit limits (see [`crate::MAX_DEPTH`]).
    pub stack_size: usize,
    /// Calls that can be in flight at once: the size of the pool's call table
    /// and of its abort-flag bitmap (default 65,536). A call made when all are in
    /// use fails at once with `CallError::TooManyInFlight`.
    pub max_in_flight: usize,
    /// At most this many calls accepted and not yet settled (default: no limit
    /// beyond `max_in_flight`); what happens past it is `queue_policy`.
    pub max_queue: Option<usize>,
    /// What a call does when `max_queue` calls are in flight.
    pub queue_policy: QueuePolicy,
    /// Replace a lane whose running task overruns its budget by this much
    /// (default: never). Rust code cannot be preempted: the stuck thread is
    /// detached and left to finish on its own, its queued calls move to the new
    /// worker, and `PoolStats::stuck_lanes` counts it. Only calls with a budget
    /// (`timeout`, `#[task(timeout_ms)]`) can make a lane stuck.
    pub hard_timeout: Option<Duration>,
    /// Time every call (wait and run histograms, busy time in `PoolStats`).
    /// Off by default: it reads the clock three times per call.
    pub timing: bool,
    /// How long dropping the pool waits for accepted calls to finish before
    /// settling the rest with `CallError::Closed` (default: 0, do not wait;
    /// queued calls then still run on the detached workers).
    pub drop_grace: Duration,
    /// A QuickJS engine on every worker, running these JS modules (default:
    /// none). Their exports are called with `pool.js(module, export)`, and
    /// scripts with `pool.eval` and `pool.session()`; see [`crate::js`].
    #[cfg(feature = "js")]
    pub js: Option<crate::js_options::JsOptions>,
}

/// What a call does when the pool already has `max_queue` calls in flight.
///
/// ```
/// use knit::{PoolOptions, QueuePolicy};
/// let opts = PoolOptions { max_queue: Some(1000), queue_policy: QueuePolicy::Wait, ..Default::default() };
/// assert_eq!(opts.queue_policy, QueuePolicy::Wait);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueuePolicy {
    /// Fail at once with `CallError::QueueFull` (the default).
    #[default]
    Reject,
    /// Wait for room: the call keeps its encoded argument and is sent when it
    /// is waited on (the thread sleeps until a call settles) or polled (the
    /// future is woken when one does), so an async caller never blocks its
    /// executor. Its budget and `cancel` apply while it waits.
    Wait,
}

impl Default for PoolOptions {
    fn default() -> Self {
        let budget = crate::affinity::budget();
        let threads = crate::affinity::default_threads(budget);
        PoolOptions {
            threads,
            pin: budget.allowed.len() > threads,
            balancer: Balancer::RoundRobin,
            inliner: None,
            worker_spin: Duration::from_micros(50),
            caller_spin: Duration::from_micros(50),
            max_payload_bytes: 16 * 1024 * 1024,
            ring_bytes: 64 * 1024,
            stack_size: 8 << 20,
            max_in_flight: 1 << 16,
            max_queue: None,
            queue_policy: QueuePolicy::Reject,
            hard_timeout: None,
            timing: false,
            drop_grace: Duration::ZERO,
            #[cfg(feature = "js")]
            js: None,
        }
    }
}

impl std::fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("PoolOptions");
        f.field("threads", &self.threads)
            .field("pin", &self.pin)
            .field("balancer", &self.balancer)
            .field("inliner", &self.inliner)
            .field("worker_spin", &self.worker_spin)
            .field("caller_spin", &self.caller_spin)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("ring_bytes", &self.ring_bytes)
            .field("stack_size", &self.stack_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_queue", &self.max_queue)
            .field("queue_policy", &self.queue_policy)
            .field("hard_timeout", &self.hard_timeout)
            .field("timing", &self.timing)
            .field("drop_grace", &self.drop_grace);
        #[cfg(feature = "js")]
        f.field("js", &self.js);
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_count_the_process_not_a_pinned_callers_affinity() {
        let budget = crate::affinity::budget();
        let Some(&first) = budget.allowed.first() else {
            return;
        };
        // A caller pinned to one core: `available_parallelism` would say 1.
        let opts = std::thread::spawn(move || {
            core_affinity::set_for_current(first);
            PoolOptions::default()
        })
        .join()
        .unwrap();
        assert_eq!(opts.threads, budget.parallelism.saturating_sub(1).max(1));
        assert_eq!(opts.pin, budget.allowed.len() > opts.threads);
    }
}
