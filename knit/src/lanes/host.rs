//! `LaneHost`: the one seam through which lanes and their workers reach the pool that owns them.

use std::sync::Arc;
use std::time::Duration;

use super::queue::SharedQueue;
use super::thread::ThreadLane;
use crate::registry::Registry;
use crate::stats::PoolCounters;
use crate::table::{CallTable, Ticket};

/// What a worker (or a thread running an inline or claimable call) needs of
/// its pool. The pool state implements it; the code under `lanes/` is
/// generic over it (monomorphised, so every call below is a field read or a
/// direct call once inlined) and never names the pool state itself.
pub(crate) trait LaneHost: Send + Sync + Sized + 'static {
    /// The engine a worker may host (the JS engine), or none (`NoEngine`).
    type Engine: super::engine::Engine;

    /// The engine for the worker of lane number `lane`, made on that
    /// worker's thread (`None`: the pool has none, or it failed to start).
    fn start_engine(&self, lane: usize) -> Option<Self::Engine>;

    /// Runs `f` (a poll of async tasks' futures) inside whatever runtime
    /// context the pool gives them (a tokio reactor, with that feature).
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Worker lane `index` (an index among the worker lanes).
    fn lane(&self, index: usize) -> &ThreadLane;

    /// The pool's one submission queue, with `Balancer::Shared`.
    fn queue(&self) -> Option<&SharedQueue>;

    /// The pool's call table.
    fn table(&self) -> &CallTable;

    /// The pool's tasks.
    fn registry(&self) -> &Registry;

    /// The pool-wide counters (outcomes counted by threads that own no lane).
    fn counters(&self) -> &PoolCounters;

    /// Whether `shutdown_now` has raised the pool's halt flag (a relaxed
    /// load: the caller orders it with its own fence, see
    /// `WorkerStatus::begin`).
    fn is_halted(&self) -> bool;

    /// Whether calls are timed (wait/run histograms, busy time).
    fn timing(&self) -> bool;

    /// The largest encoded result a task may return.
    fn max_payload(&self) -> usize;

    /// How long an idle worker of the shared queue spins before it sleeps.
    fn idle_spin(&self) -> Duration;

    /// Fails `t` with `WorkerLost` and ends its runner's claim: the thread
    /// running it unwound (a panic escaped the task's `catch_unwind`).
    fn runner_lost(&self, t: Ticket);

    /// Worker `generation` of lane `index` unwound past its loop: the lane
    /// gets a new worker, which takes over the calls still queued.
    fn replace_dead_worker(self: &Arc<Self>, index: usize, generation: u64);
}
