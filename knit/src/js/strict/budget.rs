//! A strict call's CPU and wall-clock budgets: the thread CPU clock summed over the call's slices, checked by its runtime's interrupt handler.
//!
//! Every stretch of a strict call's JS (its first run, each later turn of
//! its promise jobs and timers) is a slice: [`Budget::begin_slice`] reads
//! the worker thread's CPU clock, [`Budget::end_slice`] adds what the slice
//! used to the call's total. The call's runtime is its own, so whatever JS
//! runs in it runs for this call: nothing else is billed to it, and it is
//! billed for all of it. The interrupt handler (polled by QuickJS about every
//! 10,000 bytecode branches and calls) stops the JS, uncatchably, once the
//! total with the running slice's share passes the CPU budget, once the wall
//! deadline passes, or once the call was cancelled or timed out. Reading the
//! thread CPU clock is a system call (~250 ns here), a fraction of a percent
//! of the time between two polls of a busy loop.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::LimitKind;
use crate::js_limits::Limits;
use crate::table::{CallTable, Ticket};

/// The calling thread's CPU time.
#[cfg(unix)]
pub(crate) fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The calling thread's CPU time (no per-thread clock here: wall time
/// since the first read, which over-bills a call the worker shares).
#[cfg(not(unix))]
pub(crate) fn thread_cpu() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// One strict call's budgets and what it has used of them.
pub(crate) struct Budget {
    pub limits: Limits,
    /// When the call's wall-clock budget runs out.
    pub deadline: Instant,
    /// CPU time of the slices that ended.
    spent: Cell<Duration>,
    /// The CPU clock when the running slice began.
    slice_start: Cell<Option<Duration>>,
    /// The first budget found exceeded (shared with the guards, which set
    /// memory and stack).
    pub hit: Rc<Cell<Option<LimitKind>>>,
    /// The call's caller no longer waits (cancelled, timed out, pool shut).
    stopped: Cell<bool>,
    table: Arc<CallTable>,
    ticket: Ticket,
}

impl Budget {
    pub(crate) fn new(
        limits: Limits,
        hit: Rc<Cell<Option<LimitKind>>>,
        table: Arc<CallTable>,
        ticket: Ticket,
    ) -> Budget {
        hit.set(None);
        Budget {
            limits,
            deadline: Instant::now() + limits.wall,
            spent: Cell::new(Duration::ZERO),
            slice_start: Cell::new(None),
            hit,
            stopped: Cell::new(false),
            table,
            ticket,
        }
    }

    /// Records a budget as exceeded (the first one sticks).
    pub(crate) fn exceed(&self, kind: LimitKind) {
        if self.hit.get().is_none() {
            self.hit.set(Some(kind));
        }
    }

    pub(crate) fn begin_slice(&self) {
        self.slice_start.set(Some(thread_cpu()));
    }

    pub(crate) fn end_slice(&self) {
        if let Some(start) = self.slice_start.take() {
            let used = thread_cpu().saturating_sub(start);
            self.spent.set(self.spent.get() + used);
        }
        // A slice that ended between two polls of the handler (or in a C
        // builtin that polls none) is still billed.
        if self.spent.get() > self.limits.cpu {
            self.exceed(LimitKind::Cpu);
        }
    }

    /// CPU time used so far (the running slice's share included).
    pub(crate) fn cpu_used(&self) -> Duration {
        let running = self
            .slice_start
            .get()
            .map_or(Duration::ZERO, |s| thread_cpu().saturating_sub(s));
        self.spent.get() + running
    }

    /// Whether the caller no longer waits for the call.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.get()
    }

    /// The interrupt handler's answer: stop the call's JS now?
    pub(crate) fn interrupt(&self) -> bool {
        if self.hit.get().is_some() || self.stopped.get() {
            return true;
        }
        if self.table.aborted(self.ticket) {
            self.stopped.set(true);
            return true;
        }
        if Instant::now() >= self.deadline {
            self.exceed(LimitKind::Wall);
            return true;
        }
        if self.cpu_used() > self.limits.cpu {
            self.exceed(LimitKind::Cpu);
            return true;
        }
        false
    }

    /// The budget exceeded, as the call's limit error.
    pub(crate) fn limit_error(&self, kind: LimitKind) -> crate::error::CallError {
        let l = &self.limits;
        let limit = match kind {
            LimitKind::Cpu => l.cpu.as_nanos() as u64,
            LimitKind::Wall => l.wall.as_nanos() as u64,
            LimitKind::Memory => l.memory_bytes as u64,
            LimitKind::Stack => l.stack_bytes as u64,
            LimitKind::Input => l.input_bytes as u64,
            LimitKind::Output => l.output_bytes as u64,
        };
        crate::error::CallError::Limit { kind, limit }
    }
}

/// Makes every call of a JS or native function in runtime `rt` fail from
/// now on (as a stack overflow): for a call whose budget ran out.
///
/// The interrupt is uncatchable, but some builtins catch whatever their
/// callback threw and carry on (the Promise constructor's executor,
/// `Promise.try`, an async generator's body, `build_backtrace`), and the
/// handler says "stop" again only at its next poll, 10,000 ticks on: a loop
/// that calls such a builtin with the work inside its callback would have
/// every poll land there, and run for ever. With no new frame possible,
/// each frame already on the stack ends at its next poll.
///
/// # Safety
///
/// `rt` must be a live runtime, and this thread the one running it.
pub(crate) unsafe fn forbid_new_frames(rt: *mut rquickjs::qjs::JSRuntime) {
    // A limit one byte below the stack top: every frame's check fails (0
    // would mean no limit). The next slice of this runtime never comes.
    unsafe { rquickjs::qjs::JS_SetMaxStackSize(rt, 1) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_cpu_clock_advances_while_this_thread_works() {
        let before = thread_cpu();
        let give_up = Instant::now() + Duration::from_secs(20);
        let mut x = 0u64;
        while thread_cpu() - before < Duration::from_millis(2) {
            assert!(Instant::now() < give_up, "the clock never advanced");
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(thread_cpu() >= before);
    }
}
