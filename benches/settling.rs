//! Settling many calls at once, and many threads sending at once: what an
//! early settle costs when 20,000 calls are queued (cancels, `shutdown_now`,
//! timeouts), and what a lane's send lock costs when several threads share
//! it. knit only: the channel pools have no cancel, timeout or early
//! shutdown to compare with.
//!
//! `cargo bench --bench settling [-- --quick] [--filter NAME] [--json] [--out DIR]`

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/peers/mod.rs"]
mod peers;
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use knit::{create_pool, CallError, Pool, PoolOptions};
use knit_bench::cli::Args;
use knit_bench::results::{Chart, Role};
use suite::{spec, Bench, Meta};

#[knit::task]
fn settle_noop(x: u64) -> u64 {
    x
}

/// Opened by [`Gate::open`]: a `hold(n)` call returns once the gate has been
/// opened `n` times.
static OPENED: AtomicU64 = AtomicU64::new(0);

#[knit::task]
fn hold(n: u64) -> u64 {
    while OPENED.load(Ordering::Acquire) < n {
        std::thread::sleep(Duration::from_micros(100));
    }
    n
}

/// Keeps a pool's only worker busy until it is opened, so calls queue.
struct Gate(u64);

impl Gate {
    fn close(pool: &Pool) -> (Gate, knit::Call<u64>) {
        let n = OPENED.load(Ordering::Acquire) + 1;
        (Gate(n), pool.call.hold(n))
    }

    fn open(self) {
        OPENED.store(self.0, Ordering::Release);
    }
}

/// One worker, a ring big enough for every queued call.
fn one_worker() -> Pool {
    create_pool(PoolOptions {
        threads: 1,
        ring_bytes: 8 << 20,
        ..PoolOptions::default()
    })
    .expect("a pool")
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let queued: u64 = args.pick(2_000, 20_000);
    let about = format!(
        "One worker (pinned, as by default) is held busy while {queued} no-op \
         calls queue behind it; then they are all settled early, and the time that takes is \
         divided by {queued}. Cancels: `Call::cancel` on each, one at a time (each reports \
         whether its call started, so each runs its own heavy fence). `shutdown_now`: one call \
         settles them all. Timeouts: each call has a 5 ms budget; the time runs from the \
         budget's end until the last call has settled (the watchdog settles them). Contended: \
         1, 2 or 4 threads each send batches of 100 no-op calls to one worker lane and collect \
         them; figures are per call over all threads. knit only: the channel pools have no \
         cancel, timeout or early shutdown."
    );
    let meta = Meta {
        name: "settling",
        title: "Settling queued calls early; threads sharing a lane",
        about: &about,
        rounds: args.pick(3, 9),
        primary: "Call::cancel",
        chart: Chart::Ratios,
    };
    let mut bench = Bench::new(&args, meta);

    let pool = one_worker();
    let s = spec("queued calls settled early", "Call::cancel", Role::Knit);
    bench.add_in_steps(s, queued, queued, move |iters| {
        let mut spent = Duration::ZERO;
        for _ in 0..iters / queued {
            let (gate, held) = Gate::close(&pool);
            let calls: Vec<_> = (0..queued).map(|i| pool.call.settle_noop(i)).collect();
            let start = Instant::now();
            for call in &calls {
                assert_eq!(call.cancel(), knit::Cancelled::BeforeRun);
            }
            spent += start.elapsed();
            gate.open();
            held.wait().expect("the holding call");
            for call in calls {
                assert_eq!(call.wait(), Err(CallError::Aborted));
            }
        }
        spent
    });

    let s = spec("queued calls settled early", "shutdown_now", Role::Knit);
    bench.add_in_steps(s, queued, queued, move |iters| {
        let mut spent = Duration::ZERO;
        for _ in 0..iters / queued {
            let pool = one_worker();
            let (gate, held) = Gate::close(&pool);
            let calls: Vec<_> = (0..queued).map(|i| pool.call.settle_noop(i)).collect();
            let start = Instant::now();
            pool.shutdown_now();
            spent += start.elapsed();
            gate.open();
            let _ = held.wait();
            for (i, call) in calls.into_iter().enumerate() {
                let got = call.wait();
                assert!(
                    got.is_err(),
                    "queued call {i} ran after shutdown_now: {got:?}"
                );
            }
        }
        spent
    });

    let pool = one_worker();
    let s = spec("queued calls settled early", "timeouts", Role::Knit);
    bench.add_in_steps(s, queued, queued, move |iters| {
        const BUDGET: Duration = Duration::from_millis(5);
        let mut spent = Duration::ZERO;
        for _ in 0..iters / queued {
            let (gate, held) = Gate::close(&pool);
            let start = Instant::now();
            let calls: Vec<_> = (0..queued)
                .map(|i| pool.call.settle_noop(i).timeout(BUDGET))
                .collect();
            // The last call's budget ends no earlier than this.
            let due = start + BUDGET;
            let mut timed_out = 0;
            for call in calls {
                if call.wait() == Err(CallError::Timeout) {
                    timed_out += 1;
                }
            }
            spent += Instant::now().saturating_duration_since(due);
            gate.open();
            held.wait().expect("the holding call");
            assert_eq!(timed_out, queued, "every queued call timed out");
        }
        spent
    });

    for threads in [1u64, 2, 4] {
        let group = format!(
            "{threads} thread{} sending",
            if threads == 1 { "" } else { "s" }
        );
        let s = spec(&group, "contended lane", Role::Knit);
        let pool = create_pool(PoolOptions {
            threads: 1,
            ..PoolOptions::default()
        })
        .expect("a pool");
        const BATCH: u64 = 100;
        let step = BATCH * threads;
        bench.add_in_steps(s, step * args.pick(20, 2_000), step, move |iters| {
            let per_thread = iters / threads;
            let start = Instant::now();
            std::thread::scope(|scope| {
                for t in 0..threads {
                    let call = &pool.call;
                    scope.spawn(move || {
                        for b in 0..per_thread / BATCH {
                            let base = (t << 40) + b * BATCH;
                            let calls: Vec<_> =
                                (0..BATCH).map(|i| call.settle_noop(base + i)).collect();
                            for (i, c) in calls.into_iter().enumerate() {
                                assert_eq!(c.wait(), Ok(base + i as u64));
                            }
                        }
                    });
                }
            });
            start.elapsed()
        });
    }
    bench.finish()
}
