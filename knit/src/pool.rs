//! The pool: lanes, workers, routing, shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use knit_transport::{Envelope, LaneConfig, LaneRegion, TransportError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::balance::{Balancer, Router};
use crate::call::Call;
use crate::codec;
use crate::deadline::Next;
use crate::error::{CallError, PayloadError, PoolError};
use crate::inline::{InlineJob, InlineLane};
use crate::lane::ThreadLane;
use crate::options::{InlinePosition, PoolOptions};
use crate::registry::{Registry, TaskEntry};
use crate::table::{CallTable, Ticket};
use crate::worker::{worker_loop, WorkerContext, FLAG_ENCODE_FAILED};

/// State shared by the pool, its `Caller` and every `Call`.
pub(crate) struct Shared {
    lanes: Vec<ThreadLane>,
    inline: Option<InlineLane>,
    /// Index of the inline lane in the balancer's view (lanes are numbered
    /// worker lanes first, with the inline lane inserted here).
    inline_index: usize,
    registry: Arc<Registry>,
    pub(crate) table: Arc<CallTable>,
    /// Starts the watchdog thread the first time a call gets a deadline.
    watchdog: Once,
    router: Router,
    balancer: Balancer,
    closed: AtomicBool,
    pub(crate) caller_spin: Duration,
    max_payload: usize,
}

/// The handle `#[task]` methods hang off: `pool.call.<task>(arg)`.
///
/// ```
/// #[knit::task]
/// fn hello() -> String { "hello".into() }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
/// assert_eq!(pool.call.hello().wait().unwrap(), "hello");
/// ```
#[derive(Clone)]
pub struct Caller {
    shared: Arc<Shared>,
}

/// A pool of worker threads running `#[task]` functions.
///
/// `Pool` is `Send + Sync`: share it (or `&pool.call`) between threads freely.
pub struct Pool {
    /// Calls tasks: `pool.call.<task>(arg)`.
    pub call: Caller,
    workers: Mutex<Vec<JoinHandle<()>>>,
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
    if options.threads == 0 {
        return Err(PoolError::InvalidOptions(
            "threads must be at least 1".into(),
        ));
    }
    if options.max_payload_bytes == 0 || options.max_payload_bytes > u32::MAX as usize {
        return Err(PoolError::InvalidOptions(
            "max_payload_bytes must be in 1..=4 GiB".into(),
        ));
    }
    if options.max_in_flight == 0 || options.max_in_flight >= u32::MAX as usize {
        return Err(PoolError::InvalidOptions(
            "max_in_flight must be in 1..u32::MAX".into(),
        ));
    }
    let registry = Arc::new(Registry::collect(&crate::registry_slice::TASKS)?);
    let table = Arc::new(CallTable::new(options.max_in_flight)?);
    let inline_index = match options.inliner.map(|i| i.position) {
        Some(InlinePosition::First) => 0,
        _ => options.threads,
    };
    // Worker lanes are numbered around the inline lane, as the balancer sees them.
    let lane_number = |i: usize| {
        if options.inliner.is_some() && i >= inline_index {
            i + 1
        } else {
            i
        }
    };
    let lane_config = LaneConfig {
        ring_bytes: options.ring_bytes,
        inline_max_bytes: (options.ring_bytes / 8).min(8 * 1024),
        overflow_max_bytes: options.max_payload_bytes.next_multiple_of(64).max(64 << 20),
        max_message_bytes: Some(options.max_payload_bytes),
        spin: options.worker_spin,
        ..LaneConfig::default()
    };
    let cores = crate::affinity::all_cores();
    let mut lanes = Vec::with_capacity(options.threads);
    let mut workers = Vec::with_capacity(options.threads);
    for i in 0..options.threads {
        let region = LaneRegion::anonymous(&lane_config)?;
        let host = region.host_end()?;
        let worker_end = region.worker_end()?;
        let lane = ThreadLane::new(host.requests);
        let cx = WorkerContext {
            registry: registry.clone(),
            table: table.clone(),
            lane: lane_number(i),
            max_payload: options.max_payload_bytes,
            completed: lane.completed.clone(),
        };
        let core = (options.pin && !cores.is_empty()).then(|| cores[(i + 1) % cores.len()]);
        let handle = std::thread::Builder::new()
            .name(format!("knit-worker-{i}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                // The host's response consumer is unused by thread lanes (calls
                // are settled in place); keeping it alive keeps the lane open.
                let _responses = host.responses;
                worker_loop(worker_end, cx);
            })
            .map_err(PoolError::Spawn)?;
        lanes.push(lane);
        workers.push(handle);
    }
    let inline = options
        .inliner
        .map(|i| InlineLane::new(i.batch_size, i.dispatch_threshold, inline_index));
    let shared = Arc::new(Shared {
        lanes,
        inline,
        inline_index,
        registry,
        table,
        watchdog: Once::new(),
        router: Router::new(),
        balancer: options.balancer.clone(),
        closed: AtomicBool::new(false),
        caller_spin: options.caller_spin,
        max_payload: options.max_payload_bytes,
    });
    Ok(Pool {
        call: Caller { shared },
        workers: Mutex::new(workers),
    })
}

/// Where a call goes.
enum Route<'a> {
    Worker(&'a ThreadLane),
    Inline(&'a InlineLane),
}

impl Shared {
    fn lane_count(&self) -> usize {
        self.lanes.len() + self.inline.is_some() as usize
    }

    fn route(&self, index: usize) -> Route<'_> {
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

    fn pick(&self, entry: &TaskEntry) -> Route<'_> {
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

    /// Runs inline-lane jobs (in order) until `ticket` is settled.
    pub(crate) fn run_inline_until(&self, ticket: Ticket) {
        if let Some(inline) = &self.inline {
            while !self.table.is_done(ticket)
                && inline.run_some(1, &self.table, self.max_payload) > 0
            {}
        }
    }

    /// Lets a waiting thread run a batch of inline jobs; returns whether it ran any.
    pub(crate) fn help_inline(&self) -> bool {
        match &self.inline {
            Some(inline) => inline.run_some(inline.batch_size, &self.table, self.max_payload) > 0,
            None => false,
        }
    }

    /// Gives a call a deadline, starting the watchdog that enforces it if needed.
    pub(crate) fn arm_deadline(&self, ticket: Ticket, at: Instant) {
        self.watchdog.call_once(|| {
            let table = self.table.clone();
            // If the thread cannot start, deadlines are not enforced; waiting
            // still works, so this degrades instead of failing the call.
            let _ = std::thread::Builder::new()
                .name("knit-watchdog".into())
                .spawn(move || watchdog_loop(&table));
        });
        self.table.arm(ticket, at);
    }

    /// Takes a call slot from the shared free list, first returning every
    /// lane's private cache to it if it is empty (the table is nearly full).
    fn alloc_anywhere(&self) -> Result<Ticket, CallError> {
        if let Some(t) = self.table.alloc() {
            return Ok(t);
        }
        for lane in &self.lanes {
            self.table.return_cache(&mut lane.lock().slots);
        }
        self.table.alloc().ok_or(CallError::TooManyInFlight {
            limit: self.table.capacity(),
        })
    }

    /// Arms the task's default budget (`#[task(timeout_ms)]`), if it has one.
    #[inline]
    fn arm_default(&self, entry: &TaskEntry, ticket: Ticket) {
        if entry.timeout_ms > 0 {
            self.arm_deadline(
                ticket,
                Instant::now() + Duration::from_millis(entry.timeout_ms),
            );
        }
    }

    /// The caller is done with a call (took its outcome).
    pub(crate) fn finish_call(&self, ticket: Ticket) {
        self.table.release(ticket);
    }
}

/// Times out calls as their deadlines pass, until the pool is gone and no
/// deadline is pending.
fn watchdog_loop(table: &CallTable) {
    loop {
        match table
            .deadlines
            .wait_next(|| table.nanos(Instant::now()), None)
        {
            Next::Expired(id) => table.expire(id),
            Next::Woke => {}
            Next::Stop => return,
        }
    }
}

impl Caller {
    /// Sends a call of `entry` with `arg`; what `#[task]` methods call.
    #[doc(hidden)]
    #[inline]
    pub fn __invoke<A: Serialize, R: DeserializeOwned>(
        &self,
        entry: &'static TaskEntry,
        arg: &A,
    ) -> Call<R> {
        match self.send(entry, arg) {
            Ok((ticket, inline)) => Call::in_flight(ticket, self.shared.clone(), inline),
            Err(e) => Call::refused(e),
        }
    }

    /// Calls a task by name (`"add"` or `"module::path::add"`) with any argument
    /// type; the result type is the caller's to choose. Unknown names give
    /// `CallError::UnknownTask`.
    ///
    /// ```
    /// #[knit::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// assert_eq!(pool.call.by_name::<u64, u64>("square", &9).wait(), Ok(81));
    /// assert!(matches!(
    ///     pool.call.by_name::<u64, u64>("no_such_task", &9).wait(),
    ///     Err(knit::CallError::UnknownTask(_))
    /// ));
    /// ```
    pub fn by_name<A: Serialize, R: DeserializeOwned>(&self, name: &str, arg: &A) -> Call<R> {
        match self.shared.registry.find(name) {
            Some(entry) => self.__invoke(entry, arg),
            None => Call::refused(CallError::UnknownTask(name.to_string())),
        }
    }

    fn send<A: Serialize>(
        &self,
        entry: &'static TaskEntry,
        arg: &A,
    ) -> Result<(Ticket, bool), CallError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(CallError::Closed);
        }
        let len = codec::encoded_len(arg)?;
        if len > shared.max_payload {
            return Err(PayloadError::TooLarge {
                len,
                max: shared.max_payload,
            }
            .into());
        }
        let sent = match shared.pick(entry) {
            Route::Inline(inline) => {
                let ticket = shared.alloc_anywhere()?;
                shared.arm_default(entry, ticket);
                let mut input = vec![0u8; len];
                match codec::encode_into(arg, &mut input) {
                    Ok(()) => {
                        inline.push(InlineJob {
                            ticket,
                            entry,
                            input,
                        });
                        return Ok((ticket, true));
                    }
                    Err(e) => (ticket, CallError::Payload(e)),
                }
            }
            Route::Worker(lane) => {
                let mut sender = lane.lock();
                let ticket = match shared.table.alloc_cached(&mut sender.slots) {
                    Some(t) => t,
                    None => {
                        drop(sender);
                        let t = shared.alloc_anywhere()?;
                        sender = lane.lock();
                        t
                    }
                };
                shared.arm_default(entry, ticket);
                let mut env = Envelope {
                    call_id: ticket.call_id(),
                    task_id: entry.id,
                    flags: 0,
                };
                let sent = sender.producer.send_with(
                    env,
                    len,
                    |dst| {
                        if codec::encode_into(arg, dst).is_err() {
                            env.flags |= FLAG_ENCODE_FAILED;
                        }
                    },
                    None,
                );
                match sent {
                    Ok(()) => {
                        lane.count_submitted();
                        return Ok((ticket, false));
                    }
                    Err(TransportError::TooLarge { len, max }) => {
                        (ticket, PayloadError::TooLarge { len, max }.into())
                    }
                    Err(_) => (ticket, CallError::Closed),
                }
            }
        };
        // Never sent: nobody else knows this ticket.
        let (ticket, error) = sent;
        shared.table.discard(ticket);
        Err(error)
    }
}

impl Pool {
    /// Stops accepting calls (later calls fail with `CallError::Closed`), lets
    /// every call already accepted run to completion (they are drained, not
    /// rejected), and joins the workers. Idempotent.
    pub fn shutdown(&self) {
        let shared = &self.call.shared;
        shared.closed.store(true, Ordering::Release);
        for lane in &shared.lanes {
            lane.close();
        }
        if let Some(inline) = &shared.inline {
            while inline.run_some(usize::MAX, &shared.table, shared.max_payload) > 0 {}
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in workers {
            let _ = w.join();
        }
        shared.table.deadlines.stop();
    }

    /// Worker lanes (not counting the inline lane).
    pub fn threads(&self) -> usize {
        self.call.shared.lanes.len()
    }

    /// Calls finished per lane, in the balancer's lane order (the inline lane,
    /// if any, at its configured position).
    pub fn completed_per_lane(&self) -> Vec<u64> {
        let shared = &self.call.shared;
        (0..shared.lane_count())
            .map(|i| match shared.route(i) {
                Route::Worker(l) => l.completed(),
                Route::Inline(l) => l.completed.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl Drop for Pool {
    /// Closes the pool without waiting for running tasks: queued calls still run
    /// on the (detached) workers, which exit once their lanes are drained.
    fn drop(&mut self) {
        let shared = &self.call.shared;
        shared.closed.store(true, Ordering::Release);
        for lane in &shared.lanes {
            lane.close();
        }
        shared.table.deadlines.stop();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .field("closed", &self.call.shared.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").finish_non_exhaustive()
    }
}
