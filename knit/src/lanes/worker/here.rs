//! Which pool's worker the current thread is (`WORKER_OF`), for calls made on a worker.

use std::cell::Cell;

use super::super::host::LaneHost;
use super::super::status::WorkerStatus;

thread_local! {
    /// The pool this thread is a worker of (null if none), with its lane's
    /// index and number and the worker's status.
    static WORKER_OF: Cell<Here> = const { Cell::new(NOBODY) };
}

#[derive(Clone, Copy)]
struct Here {
    /// The pool's state (a `LaneHost`), type-erased: only compared.
    pool: *const (),
    index: usize,
    number: usize,
    status: *const WorkerStatus,
}

/// What [`WORKER_OF`] holds on a thread that is no pool's worker.
const NOBODY: Here = Here {
    pool: std::ptr::null(),
    index: 0,
    number: 0,
    status: std::ptr::null(),
};

/// A worker thread of a pool, as seen from a call of that pool.
pub(crate) struct WorkerHere {
    /// Its lane's index among the worker lanes.
    pub index: usize,
    /// Its lane's number in the balancer's view.
    pub number: usize,
    /// Whether the lane has a new worker (its queue moved there).
    pub retired: bool,
}

/// Clears this thread's [`WORKER_OF`] when dropped.
pub(super) struct Leaving;

impl Drop for Leaving {
    fn drop(&mut self) {
        WORKER_OF.with(|w| w.set(NOBODY));
    }
}

/// Makes this thread `host`'s worker of lane `index` (number `number`),
/// with `status`, until the returned guard drops.
///
/// # Safety
///
/// `host` and `status` must stay alive (and not move) until the guard has
/// dropped: [`on_this_thread`] reads `status` through a raw pointer.
pub(super) unsafe fn enter<H: LaneHost>(
    host: &H,
    index: usize,
    number: usize,
    status: &WorkerStatus,
) -> Leaving {
    WORKER_OF.with(|w| {
        w.set(Here {
            pool: std::ptr::from_ref(host).cast(),
            index,
            number,
            status,
        })
    });
    Leaving
}

/// What this thread is to `host`'s pool, if it is one of its workers.
#[inline]
pub(crate) fn on_this_thread<H: LaneHost>(host: &H) -> Option<WorkerHere> {
    let here = WORKER_OF.with(Cell::get);
    if !std::ptr::eq(here.pool, std::ptr::from_ref(host).cast()) {
        return None;
    }
    // SAFETY: `status` was set by this thread's worker loop (through `enter`)
    // from the status its context holds for as long as the thread runs the
    // loop; the pointer matched this pool, so the loop (which set both) is
    // still running: the pool's state cannot have been freed and reused
    // meanwhile, because the loop holds it.
    let retired = unsafe { &*here.status }.is_retired();
    Some(WorkerHere {
        index: here.index,
        number: here.number,
        retired,
    })
}
