//! Counting what happened to calls, and the `PoolStats` snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::CallError;

/// Why a call failed, as counted in [`FailedCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Task,
    Panicked,
    Payload,
    UnknownTask,
    Closed,
    Aborted,
    Timeout,
    QueueFull,
    TooManyInFlight,
    WorkerLost,
    WouldDeadlock,
    Js,
    Limit,
}

const KINDS: usize = 13;

impl FailureKind {
    pub(crate) fn of(e: &CallError) -> Self {
        match e {
            CallError::Task(_) => FailureKind::Task,
            CallError::Panicked(_) => FailureKind::Panicked,
            CallError::Payload(_) => FailureKind::Payload,
            CallError::UnknownTask(_) | CallError::AmbiguousTask { .. } => FailureKind::UnknownTask,
            CallError::Closed => FailureKind::Closed,
            CallError::Aborted => FailureKind::Aborted,
            CallError::Timeout => FailureKind::Timeout,
            CallError::QueueFull => FailureKind::QueueFull,
            CallError::TooManyInFlight { .. } => FailureKind::TooManyInFlight,
            CallError::WorkerLost => FailureKind::WorkerLost,
            CallError::WouldDeadlock => FailureKind::WouldDeadlock,
            CallError::Js(_) => FailureKind::Js,
            CallError::Limit { .. } => FailureKind::Limit,
        }
    }
}

/// Outcome counters. Each settled call is counted once, by the party whose
/// transition settled it.
pub(crate) struct Counters {
    ok: AtomicU64,
    failed: [AtomicU64; KINDS],
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            ok: AtomicU64::new(0),
            failed: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn counter(&self, kind: Option<FailureKind>) -> &AtomicU64 {
        match kind {
            None => &self.ok,
            Some(k) => &self.failed[k as usize],
        }
    }

    /// Counts an outcome; any thread.
    pub(crate) fn settled(&self, kind: Option<FailureKind>) {
        self.counter(kind).fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an outcome; only the counters' single writer (a lane's current
    /// worker), so no read-modify-write is needed.
    #[inline]
    pub(crate) fn settled_by_owner(&self, kind: Option<FailureKind>) {
        let c = self.counter(kind);
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Takes back a count made just before the call turned out to be settled
    /// by someone else (counting first keeps a caller that sees its result from
    /// seeing stats without it).
    pub(crate) fn unsettle(&self, kind: Option<FailureKind>) {
        self.counter(kind).fetch_sub(1, Ordering::Relaxed);
    }

    /// [`Counters::unsettle`] for the single writer.
    #[inline]
    pub(crate) fn unsettle_by_owner(&self, kind: Option<FailureKind>) {
        let c = self.counter(kind);
        c.store(c.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
    }

    fn add_into(&self, ok: &mut u64, failed: &mut [u64; KINDS]) {
        *ok += self.ok.load(Ordering::Relaxed);
        for (sum, c) in failed.iter_mut().zip(&self.failed) {
            *sum += c.load(Ordering::Relaxed);
        }
    }
}

/// Sums `counters` into (completed, failed by kind).
pub(crate) fn sum<'a>(counters: impl IntoIterator<Item = &'a Counters>) -> (u64, FailedCounts) {
    let mut ok = 0;
    let mut failed = [0u64; KINDS];
    for c in counters {
        c.add_into(&mut ok, &mut failed);
    }
    let f = |k: FailureKind| failed[k as usize];
    (
        ok,
        FailedCounts {
            task: f(FailureKind::Task),
            panicked: f(FailureKind::Panicked),
            payload: f(FailureKind::Payload),
            unknown_task: f(FailureKind::UnknownTask),
            closed: f(FailureKind::Closed),
            aborted: f(FailureKind::Aborted),
            timeout: f(FailureKind::Timeout),
            queue_full: f(FailureKind::QueueFull),
            too_many_in_flight: f(FailureKind::TooManyInFlight),
            worker_lost: f(FailureKind::WorkerLost),
            would_deadlock: f(FailureKind::WouldDeadlock),
            js: f(FailureKind::Js),
            limit: f(FailureKind::Limit),
        },
    )
}

/// Failed calls by [`CallError`](crate::CallError) variant.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedCounts {
    /// `CallError::Task`.
    pub task: u64,
    /// `CallError::Panicked`.
    pub panicked: u64,
    /// `CallError::Payload`.
    pub payload: u64,
    /// `CallError::UnknownTask` and `CallError::AmbiguousTask`.
    pub unknown_task: u64,
    /// `CallError::Closed`.
    pub closed: u64,
    /// `CallError::Aborted`.
    pub aborted: u64,
    /// `CallError::Timeout`.
    pub timeout: u64,
    /// `CallError::QueueFull`.
    pub queue_full: u64,
    /// `CallError::TooManyInFlight`.
    pub too_many_in_flight: u64,
    /// `CallError::WorkerLost`.
    pub worker_lost: u64,
    /// `CallError::WouldDeadlock`.
    pub would_deadlock: u64,
    /// `CallError::Js`.
    pub js: u64,
    /// `CallError::Limit`.
    pub limit: u64,
}

impl FailedCounts {
    /// All failures together.
    pub fn total(&self) -> u64 {
        self.task
            + self.panicked
            + self.payload
            + self.unknown_task
            + self.closed
            + self.aborted
            + self.timeout
            + self.queue_full
            + self.too_many_in_flight
            + self.worker_lost
            + self.would_deadlock
            + self.js
            + self.limit
    }
}

/// Buckets per power of two in a [`Histogram`].
const SUB: usize = 4;
const BUCKETS: usize = 64 * SUB;

/// A log-linear histogram of nanosecond durations (within 25% of the true
/// value), recorded lock-free from any thread.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn bucket(n: u64) -> usize {
        if n < SUB as u64 {
            return n as usize;
        }
        let log = 63 - n.leading_zeros() as usize; // >= 2
        let sub = ((n >> (log - 2)) & (SUB as u64 - 1)) as usize;
        (log - 1) * SUB + sub
    }

    /// The largest value that lands in bucket `b`.
    fn upper(b: usize) -> u64 {
        if b < SUB {
            return b as u64;
        }
        let log = b / SUB + 1;
        let sub = (b % SUB) as u64;
        let base = 1u64 << log;
        let step = base / SUB as u64;
        (base + (sub + 1) * step).saturating_sub(1)
    }

    pub(crate) fn record(&self, nanos: u64) {
        self.buckets[Self::bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(nanos, Ordering::Relaxed);
    }

    /// p50, p99 and max over several histograms; `None` if all are empty.
    pub(crate) fn percentiles<'a>(
        hs: impl IntoIterator<Item = &'a Histogram>,
    ) -> Option<Percentiles> {
        let mut counts = vec![0u64; BUCKETS];
        let mut max = 0;
        for h in hs {
            for (c, b) in counts.iter_mut().zip(h.buckets.iter()) {
                *c += b.load(Ordering::Relaxed);
            }
            max = max.max(h.max.load(Ordering::Relaxed));
        }
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let at = |q: f64| {
            let rank = ((total as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (b, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_nanos(Self::upper(b).min(max));
                }
            }
            Duration::from_nanos(max)
        };
        Some(Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: Duration::from_nanos(max),
            count: total,
        })
    }
}

/// Percentiles of a duration (from a histogram: p50 and p99 are within 25%).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest seen.
    pub max: Duration,
    /// How many durations were recorded.
    pub count: u64,
}

/// One worker lane's share of the work.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaneStats {
    /// Calls this lane took off its queue (run, or skipped because they were
    /// cancelled or timed out while queued).
    pub calls: u64,
    /// Time spent running tasks (only with `PoolOptions::timing`).
    pub busy: Duration,
    /// Times this lane's worker was replaced (it died or got stuck).
    pub restarts: u64,
    /// JS calls its engine began (exports, evals, session evals; 0 without
    /// `PoolOptions::js`). Counted by its current worker.
    pub js_calls: u64,
    /// Bytes its JS engine's heap used when the worker last went idle (0
    /// without `PoolOptions::js`).
    pub js_memory_bytes: u64,
}

/// A snapshot of a pool's counters: `pool.stats()`.
///
/// ```
/// #[knit::task]
/// fn half(x: u64) -> Result<u64, String> {
///     if x % 2 == 0 { Ok(x / 2) } else { Err(format!("{x} is odd")) }
/// }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, timing: true, ..Default::default() }).unwrap();
/// for x in 0..10 { let _ = pool.call.half(x).wait(); }
/// let stats = pool.stats();
/// assert_eq!((stats.completed, stats.failed.task), (5, 5));
/// assert_eq!(stats.in_flight, 0);
/// assert_eq!(stats.run.unwrap().count, 10);
/// ```
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Calls that settled with a value.
    pub completed: u64,
    /// Calls that settled with an error, by kind (calls refused at once, such
    /// as `QueueFull`, included).
    pub failed: FailedCounts,
    /// Calls accepted and not settled yet.
    pub in_flight: u64,
    /// Of those, calls not started yet (approximate while calls move).
    pub queued: u64,
    /// Per worker lane, in lane order (the inline lane is not listed).
    pub lanes: Vec<LaneStats>,
    /// Time from making a call to its task starting (with `PoolOptions::timing`).
    pub wait: Option<Percentiles>,
    /// Time tasks ran (with `PoolOptions::timing`).
    pub run: Option<Percentiles>,
    /// Lanes replaced because a task overran its budget by `hard_timeout`.
    pub stuck_lanes: u64,
    /// Lanes replaced because their worker thread died.
    pub lost_workers: u64,
}

/// The pool-wide counters (what is not counted per lane).
pub(crate) struct PoolCounters {
    pub outcomes: Counters,
    /// Calls refused before they were accepted (also counted in `outcomes`).
    pub refused: AtomicU64,
    /// Results a worker delivered (and counted as completed) that the caller
    /// could not decode as the type it asked for: failed, of kind `payload`.
    pub misread: AtomicU64,
    /// Calls made on a worker that found every lane full and ran at once
    /// where they were made (accepted here, not by a lane).
    pub run_unsent: AtomicU64,
    pub stuck_lanes: AtomicU64,
    pub lost_workers: AtomicU64,
}

impl PoolCounters {
    pub(crate) fn new() -> Self {
        PoolCounters {
            outcomes: Counters::new(),
            refused: AtomicU64::new(0),
            misread: AtomicU64::new(0),
            run_unsent: AtomicU64::new(0),
            stuck_lanes: AtomicU64::new(0),
            lost_workers: AtomicU64::new(0),
        }
    }

    /// Counts an outcome settled by someone other than a lane's worker.
    pub(crate) fn settled(&self, kind: Option<FailureKind>) {
        self.outcomes.settled(kind);
    }

    /// Counts a result the caller could not decode (see `misread`).
    pub(crate) fn count_misread(&self) {
        self.misread.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a call accepted by running it where it was made (see `run_unsent`).
    pub(crate) fn count_run_unsent(&self) {
        self.run_unsent.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a call refused before it was accepted, and hands its error back.
    pub(crate) fn refuse(&self, error: CallError) -> CallError {
        self.outcomes.settled(Some(FailureKind::of(&error)));
        self.refused.fetch_add(1, Ordering::Relaxed);
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values_within_a_quarter() {
        for n in (0..10_000u64).chain([1 << 20, 123_456_789, u64::MAX / 3]) {
            let b = Histogram::bucket(n);
            let upper = Histogram::upper(b);
            assert!(upper >= n, "{n} above its bucket's bound {upper}");
            assert!(upper - n <= n / 4 + 1, "{n} too far from {upper}");
            if b > 0 {
                assert!(Histogram::upper(b - 1) < n, "{n} belongs lower");
            }
        }
    }

    #[test]
    fn percentiles_follow_the_data() {
        let h = Histogram::new();
        for n in 1..=1000u64 {
            h.record(n * 1000);
        }
        let p = Histogram::percentiles([&h]).unwrap();
        assert_eq!(p.count, 1000);
        assert_eq!(p.max, Duration::from_micros(1000));
        let p50 = p.p50.as_nanos() as f64;
        assert!((500_000.0..=625_000.0).contains(&p50), "{p50}");
        assert!(p.p99 >= Duration::from_micros(990));
        assert!(Histogram::percentiles([&Histogram::new()]).is_none());
    }
}
