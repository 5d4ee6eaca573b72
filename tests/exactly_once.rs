//! 10^6 calls over 4 lanes mixing successes, task errors, panics, aborts,
//! cancels (queued and running), timeouts and lanes declared stuck: every call
//! settles exactly once with the outcome its kind and its caller's action
//! imply, no call runs twice, no call cancelled while queued runs at all, and
//! the pool's stats add up to the totals counted here.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use knit::{create_pool, CallError, Cancelled, PoolOptions, TaskCx};

const CALLS: usize = 1_000_000;
const CALLERS: usize = 2;
const IN_FLIGHT: usize = 1000;

/// How many times each call's task body started.
static RUNS: [AtomicU8; CALLS] = [const { AtomicU8::new(0) }; CALLS];

const OK: u8 = 0;
const FAIL: u8 = 1;
const PANIC: u8 = 2;
/// Runs until its abort flag rises (so it needs an abort, a cancel or a budget).
const UNTIL_ABORTED: u8 = 3;
/// Ignores its budget and its flag for 300 ms: its lane is declared stuck.
const STUBBORN: u8 = 4;

#[knit::task]
fn work(spec: (u32, u8), cx: &TaskCx) -> Result<u64, String> {
    let (id, kind) = spec;
    RUNS[id as usize].fetch_add(1, Ordering::SeqCst);
    match kind {
        OK => Ok(id as u64 * 2),
        FAIL => Err(format!("call {id} failed")),
        PANIC => panic!("call {id} panicked"),
        UNTIL_ABORTED => {
            while !cx.stop_requested() {
                std::hint::spin_loop();
            }
            Err("aborted".into())
        }
        _ => {
            std::thread::sleep(Duration::from_millis(300));
            Ok(0)
        }
    }
}

/// What the caller does to a call after making it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Action {
    Wait,
    Abort,
    Cancel,
    /// A budget in microseconds.
    Budget(u64),
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Decides call `id`'s kind and its caller's action (deterministic by id).
fn plan(id: usize, stubborn_every: usize) -> (u8, Action) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let roll = rng.next() % 1000;
    if id % stubborn_every == stubborn_every / 2 {
        return (STUBBORN, Action::Budget(10_000));
    }
    match roll {
        0..=9 => (UNTIL_ABORTED, Action::Abort),
        10..=19 => (UNTIL_ABORTED, Action::Budget(100 + rng.next() % 400)),
        20..=29 => (UNTIL_ABORTED, Action::Cancel),
        30..=69 => ([OK, FAIL, PANIC][(rng.next() % 3) as usize], Action::Cancel),
        70..=89 => (PANIC, Action::Wait),
        90..=139 => (FAIL, Action::Wait),
        140..=149 => (OK, Action::Budget(1_000_000)),
        _ => (OK, Action::Wait),
    }
}

#[derive(Default, Debug, PartialEq)]
struct Tally {
    ok: u64,
    task: u64,
    panicked: u64,
    aborted: u64,
    timeout: u64,
    worker_lost: u64,
    cancelled_before_run: Vec<usize>,
}

fn check(
    id: usize,
    kind: u8,
    action: Action,
    cancelled: Option<Cancelled>,
    r: Result<u64, CallError>,
    t: &mut Tally,
) {
    let bad = |why: &str| -> ! {
        panic!("call {id} (kind {kind}, {action:?}, {cancelled:?}): {why}: {r:?}")
    };
    match cancelled {
        Some(Cancelled::BeforeRun) => t.cancelled_before_run.push(id),
        Some(Cancelled::WhileRunning) | None | Some(Cancelled::TooLate) => {}
    }
    match &r {
        Ok(v) => {
            t.ok += 1;
            match kind {
                OK if *v == id as u64 * 2 => {}
                _ => bad("wrong value"),
            }
        }
        Err(CallError::Task(msg)) => {
            t.task += 1;
            let expected = match kind {
                FAIL => format!("call {id} failed"),
                UNTIL_ABORTED => "aborted".to_string(),
                _ => bad("unexpected task error"),
            };
            if msg.message() != expected {
                bad("wrong task error");
            }
        }
        Err(CallError::Panicked(msg)) => {
            t.panicked += 1;
            if kind != PANIC || *msg != format!("call {id} panicked") {
                bad("unexpected panic");
            }
        }
        Err(CallError::Aborted) => {
            t.aborted += 1;
            if !matches!(
                cancelled,
                Some(Cancelled::BeforeRun | Cancelled::WhileRunning)
            ) {
                bad("aborted without a successful cancel");
            }
        }
        Err(CallError::Timeout) => {
            t.timeout += 1;
            if !matches!(action, Action::Budget(_)) {
                bad("timed out without a budget");
            }
        }
        Err(CallError::WorkerLost) => {
            t.worker_lost += 1;
        }
        Err(_) => bad("unexpected error"),
    }
    // Outcomes the task itself produced mean it ran.
    if matches!(
        r,
        Ok(_) | Err(CallError::Task(_)) | Err(CallError::Panicked(_))
    ) && RUNS[id].load(Ordering::SeqCst) != 1
    {
        bad("a result without exactly one run");
    }
    if cancelled == Some(Cancelled::WhileRunning) && RUNS[id].load(Ordering::SeqCst) != 1 {
        bad("cancelled while running, but it did not run once");
    }
}

#[test]
fn every_call_settles_exactly_once() {
    // Tens of thousands of planned panics: keep the default hook from printing
    // each one (other panics still print).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("call ") && m.ends_with(" panicked"));
        if !planned {
            default_hook(info);
        }
    }));
    let stubborn_every = CALLS / 4;
    let pool = create_pool(PoolOptions {
        threads: 4,
        hard_timeout: Some(Duration::from_millis(100)),
        worker_spin: Duration::from_micros(5),
        caller_spin: Duration::from_micros(5),
        ..Default::default()
    })
    .unwrap();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let pool = &pool;
                s.spawn(move || {
                    let mut tally = Tally::default();
                    let ids: Vec<usize> = (caller..CALLS).step_by(CALLERS).collect();
                    for chunk in ids.chunks(IN_FLIGHT) {
                        let calls: Vec<_> = chunk
                            .iter()
                            .map(|&id| {
                                let (kind, action) = plan(id, stubborn_every);
                                let call = pool.call.work((id as u32, kind));
                                let call = match action {
                                    Action::Budget(us) => call.timeout(Duration::from_micros(us)),
                                    _ => call,
                                };
                                let cancelled = match action {
                                    Action::Cancel => Some(call.cancel()),
                                    Action::Abort => {
                                        call.request_stop();
                                        None
                                    }
                                    _ => None,
                                };
                                (id, kind, action, cancelled, call)
                            })
                            .collect();
                        for (id, kind, action, cancelled, call) in calls {
                            let r = call
                                .wait_for(Duration::from_secs(60))
                                .unwrap_or_else(|_| panic!("call {id} never settled"));
                            check(id, kind, action, cancelled, r, &mut tally);
                        }
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    pool.shutdown();

    let mut total = Tally::default();
    for t in tallies {
        total.ok += t.ok;
        total.task += t.task;
        total.panicked += t.panicked;
        total.aborted += t.aborted;
        total.timeout += t.timeout;
        total.worker_lost += t.worker_lost;
        total.cancelled_before_run.extend(t.cancelled_before_run);
    }
    let settled =
        total.ok + total.task + total.panicked + total.aborted + total.timeout + total.worker_lost;
    assert_eq!(settled, CALLS as u64, "{total:?}");
    // No call ran twice; none cancelled while queued ran at all.
    assert!(RUNS.iter().all(|r| r.load(Ordering::SeqCst) <= 1));
    for &id in &total.cancelled_before_run {
        assert_eq!(
            RUNS[id].load(Ordering::SeqCst),
            0,
            "call {id} was cancelled while queued but ran"
        );
    }
    // Every kind of outcome happened.
    assert!(total.task > 0 && total.panicked > 0 && total.aborted > 0 && total.timeout > 0);
    assert!(!total.cancelled_before_run.is_empty());
    // The pool's own count agrees with ours.
    let stats = pool.stats();
    assert_eq!(stats.completed, total.ok);
    assert_eq!(stats.failed.task, total.task);
    assert_eq!(stats.failed.panicked, total.panicked);
    assert_eq!(stats.failed.aborted, total.aborted);
    assert_eq!(stats.failed.timeout, total.timeout);
    assert_eq!(stats.failed.worker_lost, total.worker_lost);
    assert_eq!(stats.failed.total() + stats.completed, CALLS as u64);
    assert_eq!(stats.in_flight, 0);
    let stubborn_ran = (0..CALLS)
        .filter(|&id| {
            plan(id, stubborn_every).0 == STUBBORN && RUNS[id].load(Ordering::SeqCst) == 1
        })
        .count() as u64;
    // Every stubborn run got its lane replaced. On a loaded 2-core machine a
    // worker can also be descheduled past the hard timeout in the middle of an
    // expired call, which rightly counts as stuck too.
    assert!(
        stats.stuck_lanes >= stubborn_ran,
        "{} < {stubborn_ran}",
        stats.stuck_lanes
    );
    assert!(stubborn_ran > 0, "no lane was ever declared stuck");
    assert_eq!(
        stats.lanes.iter().map(|l| l.restarts).sum::<u64>(),
        stats.stuck_lanes + stats.lost_workers
    );
    let before_run = total.cancelled_before_run.len();
    total.cancelled_before_run.clear();
    eprintln!("{total:?}, {before_run} of them cancelled before running; {stats:?}");
}
