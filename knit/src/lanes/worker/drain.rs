//! A worker thread's life: who it is while it runs its loop (`events`), and what happens when it dies.

use knit_transport::WorkerEnd;

use super::super::host::LaneHost;
use super::context::WorkerContext;
use super::here;

/// Runs worker `cx` on its lane's worker end until the lane closes (or,
/// under `Balancer::Shared`, until the pool's queue is finished).
pub(crate) fn worker_loop<H: LaneHost>(mut end: WorkerEnd, cx: WorkerContext<H>) {
    // However the loop ends (unwinding included), the thread stops being
    // this pool's worker before the context that keeps the pool alive goes.
    // SAFETY: `cx` holds the host and the status (both behind `Arc`s, so
    // they do not move); a parameter, it drops after every local of this
    // function, `_here` included.
    let _here = unsafe { here::enter(&*cx.host, cx.index, cx.number, &cx.status) };
    let watch = DeathWatch { cx: &cx };
    // Reused for every result, so small results cost no allocation.
    let mut scratch = Vec::new();
    let lane = cx.host.lane(cx.index);
    super::events::serve(&mut end, &cx, lane, &mut scratch);
    std::mem::forget(watch);
}

/// Runs when a worker thread unwinds past its loop (a panic no `catch_unwind`
/// stopped, such as a panic payload whose `Drop` panics): the call it was
/// running fails with `WorkerLost`, and the lane gets a new worker, which takes
/// over the calls still queued.
struct DeathWatch<'a, H: LaneHost> {
    cx: &'a WorkerContext<H>,
}

impl<H: LaneHost> Drop for DeathWatch<'_, H> {
    fn drop(&mut self) {
        let cx = self.cx;
        if let Some(ticket) = cx.status.current() {
            cx.host.runner_lost(ticket);
        }
        cx.host.replace_dead_worker(cx.index, cx.generation);
    }
}
