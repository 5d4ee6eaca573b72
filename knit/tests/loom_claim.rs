//! Loom models of the handshake that lets a worker run a call sent to its
//! lane without a compare-and-swap on the call's slot (see the module docs of
//! `knit/src/table/mod.rs`).
//!
//! Run with: `RUSTFLAGS="--cfg knit_loom" cargo test -p knit --test loom_claim --release`
//! (`knit_loom`, not `loom`: tokio, a dev-dependency, does not build under `--cfg loom`).
//!
//! The table's code needs a pool around it (rings, futexes, mapped bitmaps),
//! so these models restate the protocol's steps with loom's atomics, with the
//! same orderings and fences as the code: the worker stores its current call,
//! fences (SeqCst), then loads `retired` and the call's `settled_early` flag;
//! the settler compare-and-swaps EARLY, raises the flag, fences, then reads
//! the worker's current call (waiting for a worker found on the call to
//! decide); the replacer stores `retired`, fences, then reads the current
//! call. Each step's function names the code it mirrors. (The handshakes use
//! fences rather than SeqCst loads and stores partly because loom models
//! SeqCst fences but not SeqCst accesses.)
#![cfg(knit_loom)]

use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};
use loom::sync::Arc;
use loom::thread;

const IDLE: u64 = u64::MAX;
/// The call every model is about.
const T: u64 = 7;

// State bits, as in the table.
const RUNNING: u32 = 1 << 2;
const RESULT: u32 = 1 << 3;
const EARLY: u32 = 1 << 4;
const DONE: u32 = 1 << 5;
const SKIPPED: u32 = 1 << 9;

/// One call's slot state and flag, one lane's (old) worker status, and counters
/// of what really happened.
struct Model {
    state: AtomicU32,
    settled_early: AtomicU32,
    current: AtomicU64,
    running: AtomicU64,
    retired: AtomicU32,
    runs: AtomicU32,
}

impl Model {
    fn new() -> Arc<Self> {
        Arc::new(Model {
            state: AtomicU32::new(0),
            settled_early: AtomicU32::new(0),
            current: AtomicU64::new(IDLE),
            running: AtomicU64::new(IDLE),
            retired: AtomicU32::new(0),
            runs: AtomicU32::new(0),
        })
    }

    /// `CallTable::transition`: sets `add(s)` if `allowed(s)`; returns the old state.
    fn transition(&self, add: impl Fn(u32) -> u32, allowed: impl Fn(u32) -> bool) -> Option<u32> {
        let mut s = self.state.load(Acquire);
        loop {
            if !allowed(s) {
                return None;
            }
            match self.state.compare_exchange(s, s | add(s), AcqRel, Acquire) {
                Ok(_) => return Some(s),
                Err(now) => s = now,
            }
        }
    }

    /// `CallTable::finish` after running the task.
    fn finish(&self) {
        self.transition(
            |s| {
                if s & EARLY == 0 {
                    RESULT | DONE
                } else {
                    RESULT
                }
            },
            |_| true,
        )
        .expect("a claimed call keeps its slot");
    }

    /// `CallTable::claim_laned`.
    fn claim_by_cas(&self) -> bool {
        let add = |s: u32| {
            if s & EARLY != 0 {
                RESULT | SKIPPED
            } else {
                RUNNING
            }
        };
        match self.transition(add, |s| s & (RUNNING | RESULT) == 0) {
            Some(old) => old & EARLY == 0,
            None => false,
        }
    }

    /// `worker::claim` then `run_call` for a frame met in the lane's ring.
    fn worker_meets_frame(&self) {
        self.current.store(T, Release); // WorkerStatus::begin
        fence(SeqCst);
        let run = if self.retired.load(Acquire) != 0 {
            self.claim_by_cas()
        } else if self.settled_early.load(Acquire) != 0 {
            self.transition(|_| RESULT | SKIPPED, |s| s & RESULT == 0); // skip_laned
            false
        } else {
            true
        };
        if run {
            self.running.store(T, Release); // decide_to_run
            self.runs.fetch_add(1, Relaxed); // the task
            self.finish();
        }
        self.current.store(IDLE, Release); // WorkerStatus::stop
    }

    /// `CallTable::laned_ran`.
    fn laned_ran(&self) -> Option<bool> {
        let s = self.state.load(Acquire);
        if s & SKIPPED != 0 {
            Some(false)
        } else if s & (RUNNING | RESULT) != 0 {
            Some(true)
        } else {
            None
        }
    }

    /// `LaneSender::runs` for this worker.
    fn worker_runs(&self) -> bool {
        while self.current.load(Acquire) == T {
            if self.running.load(Acquire) == T {
                return true;
            }
            if let Some(ran) = self.laned_ran() {
                return ran;
            }
            thread::yield_now();
        }
        false
    }

    /// `CallTable::settle_early` with the lane probe: `None` if the call had
    /// settled, else whether it was reported as having started.
    fn settle_early(&self) -> Option<bool> {
        self.transition(|_| EARLY, |s| s & (EARLY | DONE) == 0)?;
        self.settled_early.fetch_or(1, Release);
        fence(SeqCst);
        let started = self.worker_runs() || self.laned_ran() == Some(true);
        self.transition(|_| DONE, |_| true)
            .expect("EARLY keeps the slot");
        Some(started)
    }
}

impl Model {
    /// After every thread ended: the call settled once, its runner let go of
    /// the slot (RESULT), it ran at most once, and the settler's report
    /// (`None`: too late) matches what happened.
    fn check(&self, cancelled: Option<bool>) {
        let s = self.state.load(Relaxed);
        let runs = self.runs.load(Relaxed);
        assert!(
            s & DONE != 0 && s & RESULT != 0,
            "settled and let go: {s:#x}"
        );
        match cancelled {
            None => assert_eq!((runs, s & EARLY), (1, 0), "too late: it ran and finished"),
            Some(false) => assert_eq!(runs, 0, "reported before it ran, yet it ran"),
            Some(true) => assert_eq!(runs, 1, "reported as started, yet it did not run once"),
        }
    }

    /// The new worker meeting the moved copy (claimed by compare-and-swap).
    /// Its status is not modelled: a CAS claim shows in the state word, which
    /// the settler reads too.
    fn new_worker_meets_moved_frame(&self) {
        if self.claim_by_cas() {
            self.runs.fetch_add(1, Relaxed);
            self.finish();
        }
    }

    /// `Shared::replace_lane`: retires the old worker and moves the frame to
    /// the new one (run here) unless the old worker is on it.
    fn replace_lane(&self) {
        self.retired.store(1, Release); // WorkerStatus::retire
        fence(SeqCst);
        if self.current.load(Acquire) != T {
            self.new_worker_meets_moved_frame();
        }
    }
}

/// A worker meets the call's frame while its caller cancels it.
#[test]
fn a_cancel_racing_the_worker_reports_truthfully() {
    loom::model(|| {
        let m = Model::new();
        let w = m.clone();
        let worker = thread::spawn(move || w.worker_meets_frame());
        let cancelled = m.settle_early();
        worker.join().unwrap();
        m.check(cancelled);
    });
}

/// The lane is replaced while its old worker meets the frame: the call runs
/// exactly once, and its slot is let go.
#[test]
fn a_lane_replacement_racing_the_old_worker_runs_the_call_once() {
    loom::model(|| {
        let m = Model::new();
        let old = m.clone();
        let old_worker = thread::spawn(move || old.worker_meets_frame());
        m.replace_lane();
        old_worker.join().unwrap();
        m.check(None);
    });
}

/// A cancel races a lane replacement and both workers.
#[test]
fn a_cancel_racing_a_replacement_reports_truthfully() {
    loom::model(|| {
        let m = Model::new();
        let old = m.clone();
        let old_worker = thread::spawn(move || old.worker_meets_frame());
        let c = m.clone();
        let canceller = thread::spawn(move || c.settle_early());
        m.replace_lane();
        old_worker.join().unwrap();
        m.check(canceller.join().unwrap());
    });
}
