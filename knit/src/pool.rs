//! The pool: creating it, shutting it down, and reading its stats.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use knit_transport::fence;
use knit_transport::futex::Sharing;
use knit_transport::LaneConfig;

use crate::admission::Admission;
use crate::caller::Caller;
use crate::error::{CallError, PoolError};
use crate::lanes::{InlineLane, ThreadLane};
use crate::options::{InlinePosition, PoolOptions};
use crate::registry::Registry;
use crate::shared::{Route, Shared};
use crate::stats::{self, Histogram, LaneStats, PoolStats};
use crate::table::{CallTable, CallerSpin};

/// A pool of worker threads running `#[task]` functions.
///
/// `Pool` is `Send + Sync`: share it (or `&pool.call`) between threads freely.
pub struct Pool {
    /// Calls tasks: `pool.call.<task>(arg)`.
    pub call: Caller,
    drop_grace: Duration,
}

/// Starts a pool with `options`.
///
/// ```
/// use knit::{create_pool, PoolOptions};
///
/// #[knit::task]
/// fn add(pair: (i64, i64)) -> i64 { pair.0 + pair.1 }
///
/// let pool = create_pool(PoolOptions { threads: 2, ..Default::default() }).unwrap();
/// assert_eq!(pool.call.add((1, 2)).wait(), Ok(3));
/// pool.shutdown();
/// assert_eq!(pool.call.add((1, 2)).wait(), Err(knit::CallError::Closed));
/// ```
pub fn create_pool(options: PoolOptions) -> Result<Pool, PoolError> {
    let invalid = |what: &str| Err(PoolError::InvalidOptions(what.into()));
    if options.threads == 0 {
        return invalid("threads must be at least 1");
    }
    if options.max_payload_bytes == 0 || options.max_payload_bytes > u32::MAX as usize {
        return invalid("max_payload_bytes must be in 1..=u32::MAX (4 GiB - 1 byte)");
    }
    if !options.ring_bytes.is_power_of_two() || !(1 << 10..=1 << 30).contains(&options.ring_bytes) {
        return invalid("ring_bytes must be a power of two from 1 KiB to 1 GiB");
    }
    if options.stack_size < 64 << 10 {
        return invalid("stack_size must be at least 64 KiB");
    }
    if options.max_in_flight == 0 || options.max_in_flight >= (1 << 31) {
        return invalid("max_in_flight must be in 1..2^31");
    }
    if options.max_queue == Some(0) {
        return invalid("max_queue must be at least 1");
    }
    let registry = Registry::collect(&crate::registry_slice::TASKS)?;
    // Compiled here, before any worker starts: a syntax error or a bad
    // import fails the pool.
    #[cfg(feature = "js")]
    let js = match &options.js {
        Some(js) => Some(Arc::new(crate::js::host::JsSetup::new(
            js,
            &registry,
            options.max_payload_bytes,
            options.stack_size,
        )?)),
        None => None,
    };
    let admission = options
        .max_queue
        .map(|m| Admission::new(m, options.queue_policy));
    let table = CallTable::new(options.max_in_flight, admission)?;
    let inline_index = match options.inliner.map(|i| i.position) {
        Some(InlinePosition::First) => 0,
        _ => options.threads,
    };
    let lane_config = LaneConfig {
        ring_bytes: options.ring_bytes,
        inline_max_bytes: (options.ring_bytes / 8).min(8 * 1024),
        overflow_max_bytes: options.max_payload_bytes.next_multiple_of(64).max(64 << 20),
        max_message_bytes: Some(options.max_payload_bytes),
        spin: options.worker_spin,
        ..LaneConfig::default()
    };
    let inline = options
        .inliner
        .map(|i| InlineLane::new(i.batch_size, i.dispatch_threshold, inline_index));
    let budget = crate::affinity::budget();
    let cores = if options.pin {
        budget.allowed.clone()
    } else {
        Vec::new()
    };
    // Lanes first, workers once the state they share exists.
    let mut lanes = Vec::with_capacity(options.threads);
    let mut ends = Vec::with_capacity(options.threads);
    let mut shared = Shared::new(
        Vec::new(),
        inline,
        inline_index,
        registry,
        table,
        options.balancer.clone(),
        CallerSpin {
            budget: options.caller_spin,
            yields: options.threads >= budget.parallelism,
        },
        options.max_payload_bytes,
        lane_config,
        cores,
        options.hard_timeout,
        options.timing,
        options.stack_size,
    );
    for index in 0..options.threads {
        let (producer, end, responses) = shared.open_lane()?;
        lanes.push(ThreadLane::new(index as u32, producer));
        ends.push((end, responses));
    }
    shared.lanes = lanes;
    #[cfg(feature = "tokio")]
    if crate::registry_slice::TASKS
        .iter()
        .any(|t| t.run_async.is_some())
    {
        shared.tokio = Some(crate::reactor::Reactor::new().map_err(PoolError::Spawn)?);
    }
    #[cfg(feature = "js")]
    {
        shared.js = js;
    }
    let shared = shared.into_arc();
    for (index, (end, responses)) in ends.into_iter().enumerate() {
        let status = shared.lanes[index].workers().current.clone();
        match shared.spawn_worker(index, end, responses, status, 0) {
            Ok(handle) => drop(shared.lanes[index].set_handle(handle)),
            Err(e) => {
                // The workers already started leave; no call was made, so
                // the table lets go of the state at once.
                shared.close();
                return Err(PoolError::Spawn(e));
            }
        }
    }
    // Every worker's engine ran the bootstrap and the modules' top-level
    // code: an exception there fails the pool.
    #[cfg(feature = "js")]
    if let Some(js) = &shared.js {
        let alive = || shared.lanes.iter().all(|l| l.handle_alive());
        if let Err(e) = js.wait_started(options.threads, alive) {
            shared.close();
            return Err(PoolError::JsModule(e));
        }
    }
    if options.hard_timeout.is_some() {
        shared.start_watchdog();
    }
    Ok(Pool {
        call: Caller { shared },
        drop_grace: options.drop_grace,
    })
}

impl Pool {
    fn shared(&self) -> &Arc<Shared> {
        &self.call.shared
    }

    /// Stops accepting calls: later calls fail with `CallError::Closed`.
    fn close(&self) {
        self.shared().close();
    }

    /// Stops accepting calls (later calls fail with `CallError::Closed`), lets
    /// every call already accepted run to completion (they are drained, not
    /// rejected), and joins the workers. Idempotent. A lane replaced because it
    /// got stuck is not waited for.
    ///
    /// ```
    /// #[knit::task]
    /// fn one() -> u8 { 1 }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let queued: Vec<_> = (0..100).map(|_| pool.call.one()).collect();
    /// pool.shutdown();
    /// assert!(queued.into_iter().all(|c| c.wait() == Ok(1)));
    /// ```
    pub fn shutdown(&self) {
        self.close();
        self.drain_inline();
        for lane in &self.shared().lanes {
            // A replaced lane's new worker is spawned with the lock held and the
            // handle swapped under it; take whatever is current each time.
            while let Some(handle) = lane.take_handle() {
                let _ = handle.join();
            }
        }
    }

    /// Stops accepting calls and settles every call not yet finished with
    /// `CallError::Closed` at once: queued calls never run, running tasks see
    /// `TaskCx::stop_requested()` and their results are dropped. Does not wait for
    /// running tasks to return. No call starts once it has begun, so on each
    /// lane the calls that return `Ok` all came before the ones rejected.
    ///
    /// ```
    /// #[knit::task]
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// let calls: Vec<_> = (0..5).map(|_| pool.call.nap(50)).collect();
    /// pool.shutdown_now();
    /// assert!(calls.into_iter().all(|c| c.wait() == Err(knit::CallError::Closed)));
    /// ```
    pub fn shutdown_now(&self) {
        self.close();
        self.reject_pending();
    }

    /// Like [`Pool::shutdown`], but waits at most `limit` for accepted calls
    /// to finish; whatever is left is then settled as by
    /// [`Pool::shutdown_now`]. Returns whether everything finished in time.
    pub fn shutdown_timeout(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        self.close();
        self.drain_inline();
        let shared = self.shared();
        loop {
            let done = shared.lanes.iter().all(|lane| {
                let handle = lane.handle.lock().unwrap_or_else(|e| e.into_inner());
                handle.as_ref().is_none_or(|h| h.is_finished())
            });
            if done {
                for lane in &shared.lanes {
                    if let Some(h) = lane.take_handle() {
                        let _ = h.join();
                    }
                }
                return true;
            }
            if Instant::now() >= until {
                self.reject_pending();
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn drain_inline(&self) {
        let shared = self.shared();
        if let Some(inline) = &shared.inline {
            while inline.run_some(usize::MAX, None, &**shared) > 0 {}
        }
    }

    /// Settles every queued and running call with `Closed`.
    fn reject_pending(&self) {
        let shared = self.shared();
        // The halt is the cut: a worker that begins a call after this fence
        // sees it and settles the call itself (whether or not its frame is
        // still in the ring for the salvage below); a call begun before it has
        // finished or is among the lanes' running calls read below (see
        // `lanes/worker/run.rs`, `claim`).
        shared.halted.store(true, Ordering::Relaxed);
        fence::heavy(Sharing::Private);
        // Collected under each lane's lock, settled after letting go of it
        // (settling wakes waiters, whose wakers run user code), all at once.
        let mut pending = Vec::new();
        for lane in &shared.lanes {
            let mut sender = lane.lock();
            pending.extend(lane.workers().running());
            // Async tasks' and JS calls waiting on their worker, which may
            // be busy with something else for a long time.
            pending.extend(lane.waiting());
            sender.queued_calls(&mut pending);
        }
        if let Some(queue) = &shared.queue {
            pending.extend(queue.take_all().into_iter().map(|job| job.ticket));
        }
        shared.settle_early_all(pending, || CallError::Closed);
        // Inline calls are claimed by compare-and-swap, never laned: settling
        // them on their own adds no heavy fence.
        self.reject_inline();
    }

    /// Settles every call queued on the inline lane with `Closed`.
    fn reject_inline(&self) {
        let shared = self.shared();
        if let Some(inline) = &shared.inline {
            shared.settle_early_all(inline.take_all(), || CallError::Closed);
        }
    }

    /// Worker lanes (not counting the inline lane).
    pub fn threads(&self) -> usize {
        self.shared().lanes.len()
    }

    /// Calls finished per lane, in the balancer's lane order (the inline lane,
    /// if any, at its configured position).
    pub fn completed_per_lane(&self) -> Vec<u64> {
        let shared = self.shared();
        (0..shared.lane_count())
            .map(|i| match shared.route(i) {
                Route::Worker(l) => l.completed(),
                // Calls moved to a worker lane are counted there.
                Route::Inline(l) => l.completed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// A snapshot of the pool's counters (see [`PoolStats`]).
    pub fn stats(&self) -> PoolStats {
        let shared = self.shared();
        let lanes = &shared.lanes;
        let (completed, mut failed) = stats::sum(
            lanes
                .iter()
                .map(|l| &*l.outcomes)
                .chain([&shared.stats.outcomes, &shared.table.early]),
        );
        // Counted as completed by the worker, failed at the caller.
        let misread = shared.stats.misread.load(Ordering::Relaxed).min(completed);
        let completed = completed - misread;
        failed.payload += misread;
        let accepted: u64 = lanes.iter().map(|l| l.accepted()).sum::<u64>()
            + shared
                .inline
                .as_ref()
                .map_or(0, |i| i.submitted.load(Ordering::Relaxed))
            + shared
                .queue
                .as_ref()
                .map_or(0, |q| q.accepted.load(Ordering::Relaxed))
            + shared.stats.run_unsent.load(Ordering::Relaxed);
        let refused = shared.stats.refused.load(Ordering::Relaxed);
        let settled = (completed + failed.total()).saturating_sub(refused);
        let in_flight = accepted.saturating_sub(settled);
        let running = lanes
            .iter()
            .filter(|l| l.workers().current.current().is_some())
            .count() as u64;
        let timing = |pick: fn(&ThreadLane) -> &Histogram| {
            shared
                .timing
                .then(|| Histogram::percentiles(lanes.iter().map(pick)))
                .flatten()
        };
        PoolStats {
            completed,
            failed,
            in_flight,
            queued: in_flight.saturating_sub(running),
            lanes: lanes
                .iter()
                .map(|l| LaneStats {
                    calls: l.completed(),
                    busy: Duration::from_nanos(l.busy.load(Ordering::Relaxed)),
                    restarts: l.restarts.load(Ordering::Relaxed),
                    js_calls: l.js_calls.load(Ordering::Relaxed),
                    js_memory_bytes: l.js_memory.load(Ordering::Relaxed),
                })
                .collect(),
            wait: timing(|l| &l.wait),
            run: timing(|l| &l.run),
            stuck_lanes: shared.stats.stuck_lanes.load(Ordering::Relaxed),
            lost_workers: shared.stats.lost_workers.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pool {
    /// Closes the pool. With `drop_grace` zero (the default) it does not wait:
    /// queued calls still run on the detached workers, which exit once their
    /// lanes are drained, but calls queued on the inline lane, which has no
    /// worker, are settled with `CallError::Closed` (one whose own `Call` is
    /// being dropped at that moment may run instead). Otherwise it waits up to
    /// `drop_grace` for them, then settles the rest with `CallError::Closed`.
    fn drop(&mut self) {
        if self.drop_grace.is_zero() {
            self.close();
            self.reject_inline();
        } else {
            self.shutdown_timeout(self.drop_grace);
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .field("closed", &self.shared().closed.load(Ordering::Relaxed))
            .finish()
    }
}
