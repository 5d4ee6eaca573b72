//! Stress: cancels landing around the moment a worker starts a laned
//! call, with lanes replaced underneath (workers killed by a panic payload
//! whose Drop panics, and lanes declared stuck), so frames get redelivered and
//! met by retired workers. Invariants: runs <= 1; BeforeRun => 0 runs;
//! WhileRunning => 1 run; a task outcome => 1 run; everything settles.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use knit::{create_pool, CallError, Cancelled, PoolOptions};

const CALLS: usize = 100_000;
static RUNS: [AtomicU8; CALLS] = [const { AtomicU8::new(0) }; CALLS];

#[knit::task]
fn job(spec: (u32, u8)) -> u32 {
    let (id, kind) = spec;
    RUNS[id as usize].fetch_add(1, Ordering::SeqCst);
    match kind {
        1 => knit_suite::faults::kill_thread(),
        2 => {
            std::thread::sleep(Duration::from_millis(150));
            id
        }
        3 => {
            let until = Instant::now() + Duration::from_micros(20);
            while Instant::now() < until {}
            id
        }
        _ => id,
    }
}

#[knit::task(timeout_ms = 2)]
fn stuck(id: u32) -> u32 {
    RUNS[id as usize].fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(150));
    id
}

/// Call `id`'s run count once it is not 0, or after 10 s.
fn eventually_runs(id: usize) -> u8 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let runs = RUNS[id].load(Ordering::SeqCst);
        if runs != 0 || Instant::now() >= until {
            return runs;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

#[test]
fn cancels_around_the_moment_a_worker_starts_a_call_report_the_truth() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| *m == knit_suite::faults::BOMB_MESSAGE)
            || info
                .payload()
                .downcast_ref::<knit_suite::faults::Bomb>()
                .is_some();
        if !planned {
            default_hook(info);
        }
    }));
    let pool = create_pool(PoolOptions {
        threads: 3,
        hard_timeout: Some(Duration::from_millis(20)),
        worker_spin: Duration::from_micros(2),
        caller_spin: Duration::from_micros(2),
        ..Default::default()
    })
    .unwrap();
    let callers = 2;
    let counts: Vec<(u64, u64, u64, Vec<usize>)> = std::thread::scope(|s| {
        (0..callers)
            .map(|c| {
                let pool = &pool;
                s.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
                    let mut next = || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let (mut before, mut during, mut late) = (0, 0, 0);
                    let mut never_ran = Vec::new();
                    let ids: Vec<usize> = (c..CALLS).step_by(callers).collect();
                    for chunk in ids.chunks(64) {
                        let mut calls = Vec::new();
                        for &id in chunk {
                            let r = next() % 100_000;
                            let kind = if r < 3 { 1 } else if r < 5 { 4 } else if r < 6 { 2 } else if r < 30_000 { 3 } else { 0 };
                            let call = if kind == 4 {
                                pool.call.stuck(id as u32)
                            } else {
                                pool.call.job((id as u32, kind))
                            };
                            calls.push((id, kind, next() % 4 != 0, next() % 3_000, call));
                        }
                        let mut cancels = Vec::new();
                        for (id, kind, cancel, spin, call) in calls {
                            let cancelled = if cancel {
                                for _ in 0..spin {
                                    std::hint::spin_loop();
                                }
                                Some(call.cancel())
                            } else {
                                None
                            };
                            cancels.push((id, kind, cancelled, call));
                        }
                        for (id, kind, cancelled, call) in cancels {
                            let r = call
                                .wait_for(Duration::from_secs(60))
                                .unwrap_or_else(|_| panic!("call {id} never settled"));
                            let runs = RUNS[id].load(Ordering::SeqCst);
                            assert!(runs <= 1, "call {id} ran {runs} times");
                            match cancelled {
                                Some(Cancelled::BeforeRun) => {
                                    before += 1;
                                    never_ran.push(id);
                                    assert_eq!(r, Err(CallError::Aborted), "{id}");
                                    // It must never run, even later.
                                    assert_eq!(runs, 0, "call {id} cancelled BeforeRun but ran (kind {kind})");
                                }
                                Some(Cancelled::WhileRunning) => {
                                    during += 1;
                                    assert_eq!(r, Err(CallError::Aborted), "{id}");
                                    // The worker had decided to run it; the early
                                    // error can reach the caller before the task's
                                    // first line does (a preempted worker), so the
                                    // run may show up a little later.
                                    let ran = eventually_runs(id);
                                    assert_eq!(ran, 1, "call {id} cancelled WhileRunning but did not run (kind {kind})");
                                }
                                _ => {
                                    late += 1;
                                    if r.is_ok() {
                                        assert_eq!(runs, 1, "{id}");
                                    }
                                }
                            }
                        }
                    }
                    (before, during, late, never_ran)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    // Give late runs a chance to show up (a BeforeRun call must stay at 0).
    std::thread::sleep(Duration::from_millis(400));
    pool.shutdown();
    let stats = pool.stats();
    let tally: Vec<_> = counts.iter().map(|(b, d, l, _)| (b, d, l)).collect();
    eprintln!("(BeforeRun, WhileRunning, late) per caller: {tally:?} {stats:?}");
    for id in counts.iter().flat_map(|c| &c.3) {
        let runs = RUNS[*id].load(Ordering::SeqCst);
        assert_eq!(runs, 0, "call {id} cancelled BeforeRun ran later");
    }
    assert!(RUNS.iter().all(|r| r.load(Ordering::SeqCst) <= 1));
    assert_eq!(stats.in_flight, 0);
}
