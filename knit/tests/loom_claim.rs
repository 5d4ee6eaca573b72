//! Loom models of the handshake that lets a worker run a call sent to its
//! lane without a compare-and-swap on the call's slot (see the module docs of
//! `knit/src/table/mod.rs`; the settler's side is in `table/early.rs`).
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
//! call; `shutdown_now` stores the pool's halt flag, fences, then reads the
//! current call and settles every call it can name, and a worker that sees
//! the flag settles the call itself. Each step's function names the code it
//! mirrors. (The handshakes use
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

/// The calls a worker meets in its lane, in this order (call `k` has id `T + k`).
const CALLS: usize = 2;

/// One call's slot state and `settled_early` flag, and how often it ran.
struct Call {
    state: AtomicU32,
    settled_early: AtomicU32,
    runs: AtomicU32,
}

/// The calls, one lane's (old) worker status, and the pool's halt flag.
struct Model {
    calls: [Call; CALLS],
    current: AtomicU64,
    running: AtomicU64,
    retired: AtomicU32,
    halted: AtomicU32,
}

fn id(k: usize) -> u64 {
    T + k as u64
}

impl Model {
    fn new() -> Arc<Self> {
        let call = || Call {
            state: AtomicU32::new(0),
            settled_early: AtomicU32::new(0),
            runs: AtomicU32::new(0),
        };
        Arc::new(Model {
            calls: std::array::from_fn(|_| call()),
            current: AtomicU64::new(IDLE),
            running: AtomicU64::new(IDLE),
            retired: AtomicU32::new(0),
            halted: AtomicU32::new(0),
        })
    }

    /// `CallTable::transition` on call `k`: sets `add(s)` if `allowed(s)`;
    /// returns the old state.
    fn transition(
        &self,
        k: usize,
        add: impl Fn(u32) -> u32,
        allowed: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let state = &self.calls[k].state;
        let mut s = state.load(Acquire);
        loop {
            if !allowed(s) {
                return None;
            }
            match state.compare_exchange(s, s | add(s), AcqRel, Acquire) {
                Ok(_) => return Some(s),
                Err(now) => s = now,
            }
        }
    }

    /// `CallTable::finish` after running the task.
    fn finish(&self, k: usize) {
        let add = |s: u32| {
            if s & EARLY == 0 {
                RESULT | DONE
            } else {
                RESULT
            }
        };
        self.transition(k, add, |_| true)
            .expect("a claimed call keeps its slot");
    }

    /// `CallTable::claim_laned`.
    fn claim_by_cas(&self, k: usize) -> bool {
        let add = |s: u32| {
            if s & EARLY != 0 {
                RESULT | SKIPPED
            } else {
                RUNNING
            }
        };
        match self.transition(k, add, |s| s & (RUNNING | RESULT) == 0) {
            Some(old) => old & EARLY == 0,
            None => false,
        }
    }

    /// `CallTable::skip_laned`.
    fn skip(&self, k: usize) {
        self.transition(k, |_| RESULT | SKIPPED, |s| s & RESULT == 0);
    }

    /// `claim` then `run_call` (`knit/src/lanes/worker/run.rs`) for a frame met in the lane's ring.
    fn worker_meets_frame(&self, k: usize) {
        self.current.store(id(k), Release); // WorkerStatus::begin
        fence(SeqCst);
        let shared_claim = self.retired.load(Acquire) != 0;
        let run = if self.halted.load(Relaxed) != 0 {
            // worker::halted
            self.settle_early(k, false);
            if shared_claim {
                self.claim_by_cas(k);
            } else {
                self.skip(k);
            }
            false
        } else if shared_claim {
            self.claim_by_cas(k)
        } else if self.calls[k].settled_early.load(Acquire) != 0 {
            self.skip(k);
            false
        } else {
            true
        };
        if run {
            self.running.store(id(k), Release); // decide_to_run
            self.calls[k].runs.fetch_add(1, Relaxed); // the task
            self.finish(k);
        }
        self.current.store(IDLE, Release); // WorkerStatus::stop
    }

    /// `CallTable::laned_ran`.
    fn laned_ran(&self, k: usize) -> Option<bool> {
        let s = self.calls[k].state.load(Acquire);
        if s & SKIPPED != 0 {
            Some(false)
        } else if s & (RUNNING | RESULT) != 0 {
            Some(true)
        } else {
            None
        }
    }

    /// `LaneSender::runs` for this worker.
    fn worker_runs(&self, k: usize) -> bool {
        while self.current.load(Acquire) == id(k) {
            if self.running.load(Acquire) == id(k) {
                return true;
            }
            if let Some(ran) = self.laned_ran(k) {
                return ran;
            }
            thread::yield_now();
        }
        false
    }

    /// `CallTable::claim_early`: claims call `k` and raises its flag.
    fn claim_early(&self, k: usize) -> bool {
        let won = self
            .transition(k, |_| EARLY, |s| s & (EARLY | DONE) == 0)
            .is_some();
        if won {
            self.calls[k].settled_early.fetch_or(1, Release);
        }
        won
    }

    /// `CallTable::finish_early`: whether call `k` started (with the lane
    /// probe, after the caller's fence), then DONE.
    fn finish_early(&self, k: usize, probe: bool) -> bool {
        let started = (probe && self.worker_runs(k)) || self.laned_ran(k) == Some(true);
        self.transition(k, |_| DONE, |_| true)
            .expect("EARLY keeps the slot");
        started
    }

    /// `CallTable::settle_early`, with the lane probe if `probe`: `None` if
    /// the call had settled, else whether it was reported as having started.
    fn settle_early(&self, k: usize, probe: bool) -> Option<bool> {
        if !self.claim_early(k) {
            return None;
        }
        if probe {
            fence(SeqCst);
        }
        Some(self.finish_early(k, probe))
    }

    /// `Pool::reject_pending` for one lane: halts, fences, reads the call
    /// the worker runs, then settles it and every call whose frame is still
    /// in the ring (here: all of them, the frames of one drain batch are
    /// released together) as `CallTable::settle_early_all` does.
    fn shutdown_now(&self) {
        self.halted.store(1, Relaxed);
        fence(SeqCst);
        let _running = self.current.load(Acquire); // a call named twice is claimed once
        let claimed: Vec<usize> = (0..CALLS).filter(|&k| self.claim_early(k)).collect();
        fence(SeqCst);
        for k in claimed {
            self.finish_early(k, true);
        }
    }
}

impl Model {
    /// After every thread ended: call `k` settled once, its runner let go of
    /// the slot (RESULT), it ran at most once, and the settler's report
    /// (`None`: too late) matches what happened.
    fn check(&self, k: usize, cancelled: Option<bool>) {
        let s = self.calls[k].state.load(Relaxed);
        let runs = self.calls[k].runs.load(Relaxed);
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
    fn new_worker_meets_moved_frame(&self, k: usize) {
        if self.claim_by_cas(k) {
            self.calls[k].runs.fetch_add(1, Relaxed);
            self.finish(k);
        }
    }

    /// `Shared::replace_lane`: retires the old worker and moves the frame to
    /// the new one (run here) unless the old worker is on it.
    fn replace_lane(&self, k: usize) {
        self.retired.store(1, Release); // WorkerStatus::retire
        fence(SeqCst);
        if self.current.load(Acquire) != id(k) {
            self.new_worker_meets_moved_frame(k);
        }
    }
}

/// A worker meets the call's frame while its caller cancels it.
#[test]
fn a_cancel_racing_the_worker_reports_truthfully() {
    loom::model(|| {
        let m = Model::new();
        let w = m.clone();
        let worker = thread::spawn(move || w.worker_meets_frame(0));
        let cancelled = m.settle_early(0, true);
        worker.join().unwrap();
        m.check(0, cancelled);
    });
}

/// The lane is replaced while its old worker meets the frame: the call runs
/// exactly once, and its slot is let go.
#[test]
fn a_lane_replacement_racing_the_old_worker_runs_the_call_once() {
    loom::model(|| {
        let m = Model::new();
        let old = m.clone();
        let old_worker = thread::spawn(move || old.worker_meets_frame(0));
        m.replace_lane(0);
        old_worker.join().unwrap();
        m.check(0, None);
    });
}

/// A cancel races a lane replacement and both workers.
#[test]
fn a_cancel_racing_a_replacement_reports_truthfully() {
    loom::model(|| {
        let m = Model::new();
        let old = m.clone();
        let old_worker = thread::spawn(move || old.worker_meets_frame(0));
        let c = m.clone();
        let canceller = thread::spawn(move || c.settle_early(0, true));
        m.replace_lane(0);
        old_worker.join().unwrap();
        m.check(0, canceller.join().unwrap());
    });
}

/// `shutdown_now` races a worker going through two calls of its lane: each
/// call settles once and runs at most once, its slot is let go, and the
/// shutdown cuts the lane's order once (the second call never finishes with
/// its own result when the first was rejected).
#[test]
fn shutdown_now_racing_the_worker_cuts_the_lane_once() {
    loom::model(|| {
        let m = Model::new();
        let w = m.clone();
        let worker = thread::spawn(move || {
            w.worker_meets_frame(0);
            w.worker_meets_frame(1);
        });
        m.shutdown_now();
        worker.join().unwrap();
        let ok = |k: usize| m.calls[k].state.load(Relaxed) & EARLY == 0;
        for k in 0..CALLS {
            let s = m.calls[k].state.load(Relaxed);
            let runs = m.calls[k].runs.load(Relaxed);
            assert!(s & DONE != 0 && s & RESULT != 0, "call {k}: {s:#x}");
            assert!(runs <= 1, "call {k} ran {runs} times");
            assert!(!ok(k) || runs == 1, "call {k} finished without running");
        }
        assert!(
            ok(0) || !ok(1),
            "the first call was rejected, the second ran"
        );
    });
}
