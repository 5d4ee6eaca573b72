//! State shared by a pool, its `Caller`, every `Call` and every worker:
//! routing, the inline lane, deadlines, and replacing a lane's worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use knit_transport::{Consumer, LaneConfig, LaneRegion, Producer, TransportError, WorkerEnd};

use crate::balance::{Balancer, Router};
use crate::deadline::Next;
use crate::error::CallError;
use crate::lanes::{
    worker_loop, InlineLane, LaneHost, SharedQueue, ThreadLane, WorkerContext, WorkerStatus,
    FLAG_REDELIVERED,
};
use crate::registry::{Registry, TaskEntry};
use crate::stats::PoolCounters;
use crate::table::{CallTable, CallerSpin, Ticket};

/// Why a lane gets a new worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneCause {
    /// The worker thread unwound past its loop.
    WorkerDied,
    /// The running task overran its budget by more than `hard_timeout`.
    Stuck,
}

/// Aligned to two cache lines so that the `Arc` counts do not share a line
/// with the fields workers read on every call.
#[repr(align(128))]
pub(crate) struct Shared {
    /// This state's own `Arc` (for the watchdog, which a call's deadline
    /// may start; a `Call` holds no `Arc`).
    me: Weak<Shared>,
    pub lanes: Vec<ThreadLane>,
    pub inline: Option<InlineLane>,
    /// The pool's one submission queue, with `Balancer::Shared`.
    pub queue: Option<SharedQueue>,
    /// Index of the inline lane in the balancer's view (lanes are numbered
    /// worker lanes first, with the inline lane inserted here).
    pub inline_index: usize,
    pub registry: Registry,
    pub table: Arc<CallTable>,
    /// Starts the watchdog thread the first time it is needed.
    watchdog: Once,
    pub router: Router,
    pub balancer: Balancer,
    pub closed: AtomicBool,
    /// Raised (then fenced) by `shutdown_now` before it gathers what is
    /// pending: a worker that begins a call after that settles it with
    /// `Closed` instead of running it. Without this, a worker went on
    /// starting queued calls while the settler worked through them, so a
    /// later call could run after an earlier one was rejected.
    pub halted: AtomicBool,
    pub caller_spin: CallerSpin,
    pub max_payload: usize,
    pub lane_config: LaneConfig,
    /// Cores to pin workers to (empty: no pinning).
    pub cores: Vec<CoreId>,
    pub hard_timeout: Option<Duration>,
    /// Whether calls are timed (wait/run histograms, busy time).
    pub timing: bool,
    /// Each worker thread's stack size.
    pub stack_size: usize,
    pub stats: PoolCounters,
    /// The runtime async tasks' futures are polled in (`tokio` feature; made
    /// when the binary has async tasks).
    #[cfg(feature = "tokio")]
    pub tokio: Option<crate::reactor::Reactor>,
    /// What every worker's JS engine is built from (`PoolOptions::js`).
    #[cfg(feature = "js")]
    pub js: Option<Arc<crate::js::host::JsSetup>>,
    /// Tests only: every worker spawn for this pool fails (see `fault`).
    #[cfg(test)]
    pub refuse_spawns: AtomicBool,
}

/// Where a call goes.
pub(crate) enum Route<'a> {
    Worker(&'a ThreadLane),
    Inline(&'a InlineLane),
}

impl Shared {
    /// Moves the state into its `Arc`, which the call table keeps alive
    /// until it drains (so calls in flight can reach it through their slots).
    pub(crate) fn into_arc(self) -> Arc<Self> {
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            ..self
        });
        shared.table.keep_until_drained(Box::new(shared.clone()));
        #[cfg(test)]
        crate::fault::made(&shared);
        shared
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        lanes: Vec<ThreadLane>,
        inline: Option<InlineLane>,
        inline_index: usize,
        registry: Registry,
        table: CallTable,
        balancer: Balancer,
        caller_spin: CallerSpin,
        max_payload: usize,
        lane_config: LaneConfig,
        cores: Vec<CoreId>,
        hard_timeout: Option<Duration>,
        timing: bool,
        stack_size: usize,
    ) -> Self {
        let queue = matches!(balancer, Balancer::Shared).then(SharedQueue::new);
        // The shared queue replaces routing, the inline lane included.
        let inline = if queue.is_some() { None } else { inline };
        Shared {
            me: Weak::new(),
            lanes,
            queue,
            inline,
            inline_index,
            registry,
            table: Arc::new(table),
            watchdog: Once::new(),
            router: Router::new(),
            balancer,
            closed: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            caller_spin,
            max_payload,
            lane_config,
            cores,
            hard_timeout,
            timing,
            stack_size,
            stats: PoolCounters::new(),
            #[cfg(feature = "tokio")]
            tokio: None,
            #[cfg(feature = "js")]
            js: None,
            #[cfg(test)]
            refuse_spawns: AtomicBool::new(false),
        }
    }

    /// This state's `Arc`, while the pool (or a call of it) keeps it alive.
    pub(crate) fn me(&self) -> Option<Arc<Shared>> {
        self.me.upgrade()
    }

    pub(crate) fn lane_count(&self) -> usize {
        self.lanes.len() + self.inline.is_some() as usize
    }

    /// Worker lane `i`'s number in the balancer's view.
    pub(crate) fn lane_number(&self, i: usize) -> usize {
        if self.inline.is_some() && i >= self.inline_index {
            i + 1
        } else {
            i
        }
    }

    pub(crate) fn route(&self, index: usize) -> Route<'_> {
        match &self.inline {
            Some(inline) if index == self.inline_index => Route::Inline(inline),
            Some(_) if index > self.inline_index => Route::Worker(&self.lanes[index - 1]),
            _ => Route::Worker(&self.lanes[index]),
        }
    }

    fn load(&self, index: usize) -> usize {
        match self.route(index) {
            Route::Worker(l) => l.in_flight(),
            Route::Inline(l) => l.in_flight(),
        }
    }

    fn total_in_flight(&self) -> usize {
        (0..self.lane_count()).map(|i| self.load(i)).sum()
    }

    pub(crate) fn pick(&self, entry: &TaskEntry) -> Route<'_> {
        let count = self.lane_count();
        if count == 1 {
            return self.route(0);
        }
        let inline_ok = match &self.inline {
            Some(inline) => {
                entry.inline_safe && self.total_in_flight() >= inline.dispatch_threshold
            }
            None => false,
        };
        let is_inline = |i: usize| self.inline.is_some() && i == self.inline_index;
        let eligible = |i: usize| inline_ok || !is_inline(i);
        let index = self
            .router
            .pick(&self.balancer, count, |i| self.load(i), eligible, is_inline);
        self.route(index)
    }

    /// Runs inline-lane jobs (in order) until `ticket` is settled, starting
    /// none once `until` has passed.
    pub(crate) fn run_inline_until(&self, ticket: Ticket, until: Option<Instant>) {
        if let Some(inline) = &self.inline {
            while !self.table.is_done(ticket) && inline.run_some(1, until, self) > 0 {}
        }
    }

    /// Lets a waiting thread run a batch of inline jobs, starting none once
    /// `until` has passed; returns whether it ran any.
    pub(crate) fn help_inline(&self, until: Option<Instant>) -> bool {
        match &self.inline {
            Some(inline) => inline.run_some(inline.batch_size, until, self) > 0,
            None => false,
        }
    }

    /// Stops accepting calls: later calls fail with `CallError::Closed`, and
    /// workers leave once their lanes (or the shared queue) are empty.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for lane in &self.lanes {
            lane.close(&self.table);
        }
        if let Some(inline) = &self.inline {
            inline.close();
        }
        if let Some(queue) = &self.queue {
            queue.close();
        }
        self.table.deadlines.stop();
        // Nobody allocates from here on (senders check `closed` under their
        // lane's lock, and every lane's cached slots are back), so the slots
        // still out are the calls in flight: once they are all back, the
        // table lets go of this state. Whoever closes holds it too.
        drop(self.table.drain());
    }

    /// Takes a call slot from the shared free list, first returning every
    /// lane's private cache to it if it is empty (the table is nearly full).
    /// For a party that holds the pool.
    pub(crate) fn alloc_anywhere(&self) -> Result<Ticket, CallError> {
        if let Some(t) = self.table.alloc() {
            return Ok(t);
        }
        for lane in &self.lanes {
            // This party holds the pool, so the table's keep may go here.
            drop(self.table.return_cache(&mut lane.lock().slots));
        }
        if let Some(t) = self.table.alloc_settled() {
            return Ok(t);
        }
        Err(if self.table.is_draining() {
            CallError::Closed
        } else {
            CallError::TooManyInFlight {
                limit: self.table.capacity(),
            }
        })
    }

    /// Settles `t` early with `error` and raises its abort flag (see
    /// [`CallTable::settle_early`]): `None` if it had settled already, else
    /// whether it had started running.
    pub(crate) fn settle_early(&self, t: Ticket, error: CallError) -> Option<bool> {
        self.table
            .settle_early(t, error, true, Some(&|t, lane| self.lane_runs(t, lane)))
    }

    /// Fails `t` with `WorkerLost` and ends its runner's claim: the thread
    /// running it unwound (a panic escaped the task's `catch_unwind`).
    pub(crate) fn runner_lost(&self, t: Ticket) {
        self.settle_early(t, CallError::WorkerLost);
        self.table.abandon_run(t);
    }

    /// Fails every call of `lost` (a dead lane's queue, which no worker will
    /// run) with `WorkerLost`, with one heavy fence for all, and ends the
    /// lane's claims on them. A claimable call that another thread has
    /// already claimed is left to it.
    pub(crate) fn queue_lost(&self, lost: &[Ticket]) {
        let runs = |t, lane| self.lane_runs(t, lane);
        self.table
            .settle_early_all(lost.iter().copied(), || CallError::WorkerLost, &runs, true);
        for &t in lost {
            self.table.abandon_lane_claim(t);
        }
    }

    /// Whether a worker of worker lane `lane` runs (or ran) laned call `t`.
    fn lane_runs(&self, t: Ticket, lane: u32) -> bool {
        self.lanes
            .get(lane as usize)
            .is_some_and(|l| l.workers().runs(t, &self.table))
    }

    /// [`Shared::settle_early`] for many calls, with one heavy fence for all.
    pub(crate) fn settle_early_all(
        &self,
        tickets: impl IntoIterator<Item = Ticket>,
        error: impl Fn() -> CallError,
    ) {
        self.table
            .settle_early_all(tickets, error, &|t, lane| self.lane_runs(t, lane), false);
    }

    /// Gives a call a deadline, starting the watchdog that enforces it if needed.
    pub(crate) fn arm_deadline(&self, ticket: Ticket, at: Instant) {
        self.start_watchdog();
        self.table.arm(ticket, at);
    }

    /// Starts the watchdog thread (once): it times calls out at their deadlines
    /// and, with `hard_timeout`, replaces stuck lanes.
    pub(crate) fn start_watchdog(&self) {
        self.watchdog.call_once(|| {
            let table = self.table.clone();
            let shared = self.me.clone();
            let tick = self
                .hard_timeout
                .map(|h| (h / 4).clamp(Duration::from_millis(1), Duration::from_millis(100)));
            // If the thread cannot start, deadlines are not enforced; waiting
            // still works, so this degrades instead of failing the call.
            let _ = std::thread::Builder::new()
                .name("knit-watchdog".into())
                .spawn(move || watchdog_loop(&table, &shared, tick));
        });
    }

    /// A fresh lane region: the request producer, the worker's end, and the
    /// (unused by thread lanes) response consumer that keeps the region open.
    pub(crate) fn open_lane(&self) -> Result<(Producer, WorkerEnd, Consumer), TransportError> {
        let region = LaneRegion::anonymous(&self.lane_config)?;
        let host = region.host_end()?;
        let worker_end = region.worker_end()?;
        Ok((host.requests, worker_end, host.responses))
    }

    /// Starts worker `generation` of lane `index` on `end`.
    pub(crate) fn spawn_worker(
        self: &Arc<Self>,
        index: usize,
        end: WorkerEnd,
        responses: Consumer,
        status: Arc<WorkerStatus>,
        generation: u64,
    ) -> std::io::Result<JoinHandle<()>> {
        #[cfg(test)]
        if crate::fault::spawn_fails_here() || self.refuse_spawns.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("a worker spawn failed (injected)"));
        }
        let core = (!self.cores.is_empty()).then(|| self.cores[(index + 1) % self.cores.len()]);
        let cx = WorkerContext {
            host: self.clone(),
            index,
            number: self.lane_number(index),
            status,
            generation,
        };
        std::thread::Builder::new()
            .name(format!("knit-worker-{index}"))
            .stack_size(self.stack_size)
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                // Thread lanes settle calls in place; the response ring is unused,
                // but its consumer keeps the region open while the worker runs.
                let _responses = responses;
                worker_loop(end, cx);
            })
    }

    /// Gives lane `index` a new worker, if it still runs worker `generation`:
    /// the calls queued on it move to the new worker's ring (marked
    /// redelivered: both workers claim them by compare-and-swap, so a call the
    /// old worker also gets to runs once), and the old thread is detached.
    pub(crate) fn replace_lane(self: &Arc<Self>, index: usize, generation: u64, cause: LaneCause) {
        let lane = &self.lanes[index];
        let mut sender = lane.lock();
        if sender.generation != generation {
            return;
        }
        let fresh = self.open_lane().and_then(|(producer, end, responses)| {
            let status = Arc::new(WorkerStatus::new());
            let handle = self
                .spawn_worker(index, end, responses, status.clone(), generation + 1)
                .map_err(TransportError::Io)?;
            Ok((producer, status, handle))
        });
        let (producer, status, handle) = match fresh {
            Ok(f) => f,
            Err(e) => {
                // Without a new worker the old ring stays as it is: a stuck lane
                // may still recover. A dead one has lost its queue: it is
                // closed (under the lock, so no call slips in after the look
                // below), later sends to it fail with `WorkerLost`, and the
                // calls in it fail the same way and give their slots back.
                tracing::error!(lane = index, ?cause, error = %e, "knit: cannot replace the lane's worker");
                if cause == LaneCause::WorkerDied {
                    sender.producer.region().close();
                    let mut lost = Vec::new();
                    sender.queued_calls(&mut lost);
                    // Settled after letting go of the lock: settling wakes waiters.
                    drop(sender);
                    self.queue_lost(&lost);
                }
                return;
            }
        };
        // The old worker may be running a laned call without a claim in its
        // slot: that call's frame stays with it. Every call it starts later,
        // it claims by compare-and-swap, as the new worker does the moved ones.
        let keep = lane.workers().replace(status).map(Ticket::call_id);
        sender.generation = generation + 1;
        let mut old = std::mem::replace(&mut sender.producer, producer);
        let mut moved = 0u64;
        let salvaged = old.salvage(|frame| {
            // The new ring has the old one's size, so everything fits; the new
            // worker is already draining it besides.
            let mut env = frame.envelope();
            if keep == Some(env.call_id) {
                return;
            }
            env.flags |= FLAG_REDELIVERED;
            if sender.producer.send(env, frame.payload()).is_ok() {
                moved += 1;
            }
        });
        if let Err(e) = salvaged {
            tracing::error!(lane = index, error = %e, "knit: some calls queued on a replaced lane could not be moved");
        }
        drop(old); // closes the old ring: a resumed old worker drains it and exits
        if self.closed.load(Ordering::Acquire) {
            sender.producer.region().close();
        }
        lane.reset_submitted(moved);
        drop(lane.set_handle(handle)); // the old thread is detached
        lane.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            lane = index,
            ?cause,
            moved,
            "knit: the lane has a new worker"
        );
        match cause {
            LaneCause::WorkerDied => &self.stats.lost_workers,
            LaneCause::Stuck => &self.stats.stuck_lanes,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces every lane whose running call overran its deadline by more
    /// than `hard_timeout`.
    fn replace_stuck_lanes(self: &Arc<Self>, hard_timeout: Duration) {
        let now = Instant::now();
        for (index, lane) in self.lanes.iter().enumerate() {
            let (status, generation) = {
                let sender = lane.lock();
                let status = lane.workers().current.clone();
                (status, sender.generation)
            };
            let Some(ticket) = status.current() else {
                continue;
            };
            let Some(deadline) = self.table.deadline(ticket) else {
                continue;
            };
            // Read again: the deadline belongs to `ticket` only if it still runs.
            if now > deadline + hard_timeout && status.current() == Some(ticket) {
                self.replace_lane(index, generation, LaneCause::Stuck);
            }
        }
    }
}

/// What the lanes and their workers see of the pool (see `lanes`' module docs).
impl LaneHost for Shared {
    #[cfg(feature = "js")]
    type Engine = crate::js::host::JsEngine;
    #[cfg(not(feature = "js"))]
    type Engine = crate::lanes::NoEngine;

    #[inline]
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tokio")]
        if let Some(reactor) = &self.tokio {
            return reactor.enter(f);
        }
        f()
    }

    fn start_engine(&self, lane: usize) -> Option<Self::Engine> {
        #[cfg(feature = "js")]
        return self.js.as_ref()?.start_engine(&self.table, lane);
        #[cfg(not(feature = "js"))]
        {
            let _ = lane;
            None
        }
    }

    #[inline]
    fn lane(&self, index: usize) -> &ThreadLane {
        &self.lanes[index]
    }

    #[inline]
    fn queue(&self) -> Option<&SharedQueue> {
        self.queue.as_ref()
    }

    #[inline]
    fn table(&self) -> &CallTable {
        &self.table
    }

    #[inline]
    fn registry(&self) -> &Registry {
        &self.registry
    }

    #[inline]
    fn counters(&self) -> &PoolCounters {
        &self.stats
    }

    #[inline]
    fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    #[inline]
    fn timing(&self) -> bool {
        self.timing
    }

    #[inline]
    fn max_payload(&self) -> usize {
        self.max_payload
    }

    fn idle_spin(&self) -> Duration {
        self.lane_config.spin
    }

    fn runner_lost(&self, t: Ticket) {
        Shared::runner_lost(self, t);
    }

    fn replace_dead_worker(self: &Arc<Self>, index: usize, generation: u64) {
        self.replace_lane(index, generation, LaneCause::WorkerDied);
    }
}

/// Times out calls as their deadlines pass and replaces stuck lanes, until
/// the pool is gone and no deadline is pending.
fn watchdog_loop(table: &CallTable, shared: &Weak<Shared>, tick: Option<Duration>) {
    loop {
        match table
            .deadlines
            .wait_next(|| table.nanos(Instant::now()), tick)
        {
            Next::Expired(id) => table.expire(id),
            Next::Woke => {
                if let Some(hard) = tick.and_then(|_| shared.upgrade()) {
                    if let Some(h) = hard.hard_timeout {
                        hard.replace_stuck_lanes(h);
                    }
                }
            }
            Next::Stop => return,
        }
    }
}
