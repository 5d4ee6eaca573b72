//! The knit pool against its floors and against channel-based pools, one run,
//! rounds interleaved. `cargo bench --bench pool [-- --quick]`
//!
//! Every pool has one worker thread pinned to core 1 and the caller on core 0,
//! and runs the same no-op task.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use knit::{create_pool, PoolOptions};
use knit_suite::runner::timed;
use knit_suite::{floors, pin_to, Runner, Scenario};

#[knit::task]
fn noop(x: u64) -> u64 {
    x
}

fn knit_pool(spin: Duration) -> knit::Pool {
    pin_to(0);
    create_pool(PoolOptions {
        threads: 1,
        pin: true,
        worker_spin: spin,
        caller_spin: spin,
        ..Default::default()
    })
    .unwrap()
}

fn knit_round_trips(iters: u64, spin: Duration) -> Duration {
    let pool = knit_pool(spin);
    timed(iters / 10 + 10, iters, |i| {
        assert_eq!(pool.call.noop(i).wait(), Ok(i));
    })
}

fn knit_batches(calls: u64) -> Duration {
    let pool = knit_pool(PoolOptions::default().worker_spin);
    timed(10, calls / 1000, |_| {
        let calls: Vec<_> = (0..1000).map(|i| pool.call.noop(i)).collect();
        for c in calls {
            c.wait().unwrap();
        }
    })
}

/// Runs `serve` (a channel echo loop) on core 1 and puts the caller on core 0.
fn echo_worker(serve: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    let worker = std::thread::spawn(move || {
        pin_to(1);
        serve();
    });
    pin_to(0);
    worker
}

/// A request/response pool on crossbeam channels: one shared request channel,
/// one response channel back to the caller.
fn crossbeam_batches(calls: u64) -> Duration {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1024);
    let (resp_tx, resp_rx) = crossbeam_channel::bounded::<u64>(1024);
    let worker = echo_worker(move || {
        while let Ok(x) = req_rx.recv() {
            resp_tx.send(std::hint::black_box(x)).unwrap();
        }
    });
    let elapsed = timed(10, calls / 1000, |_| {
        for i in 0..1000 {
            req_tx.send(i).unwrap();
        }
        for _ in 0..1000 {
            resp_rx.recv().unwrap();
        }
    });
    drop(req_tx);
    worker.join().unwrap();
    elapsed
}

fn crossbeam_round_trips(iters: u64) -> Duration {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1);
    let (resp_tx, resp_rx) = crossbeam_channel::bounded::<u64>(1);
    let worker = echo_worker(move || {
        while let Ok(x) = req_rx.recv() {
            resp_tx.send(x).unwrap();
        }
    });
    let elapsed = timed(iters / 10 + 10, iters, |i| {
        req_tx.send(i).unwrap();
        resp_rx.recv().unwrap();
    });
    drop(req_tx);
    worker.join().unwrap();
    elapsed
}

fn mpsc_batches(calls: u64) -> Duration {
    let (req_tx, req_rx) = mpsc::sync_channel::<u64>(1024);
    let (resp_tx, resp_rx) = mpsc::sync_channel::<u64>(1024);
    let worker = echo_worker(move || {
        while let Ok(x) = req_rx.recv() {
            resp_tx.send(std::hint::black_box(x)).unwrap();
        }
    });
    let elapsed = timed(10, calls / 1000, |_| {
        for i in 0..1000 {
            req_tx.send(i).unwrap();
        }
        for _ in 0..1000 {
            resp_rx.recv().unwrap();
        }
    });
    drop(req_tx);
    worker.join().unwrap();
    elapsed
}

/// CPU time (user + system) of this process, from /proc (Linux).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
}

fn idle_cpu_percent(threads: usize) -> Option<f64> {
    let pool = create_pool(PoolOptions {
        threads,
        ..Default::default()
    })
    .unwrap();
    pool.call.noop(1).wait().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // past every spin budget
    let before = process_cpu()?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = process_cpu()? - before;
    Some(100.0 * used.as_secs_f64() / start.elapsed().as_secs_f64())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, hot, batch, parked) = if quick {
        (3, 10_000, 20_000, 200)
    } else {
        (11, 100_000, 200_000, 2_000)
    };
    let mut runner = Runner::new(rounds);
    runner
        .add(Scenario::new(
            "atomic ping-pong",
            hot,
            floors::atomic_ping_pong,
        ))
        .add(Scenario::new("knit hot round trip", hot, |n| {
            knit_round_trips(n, PoolOptions::default().worker_spin)
        }))
        .add(Scenario::new(
            "crossbeam round trip",
            hot,
            crossbeam_round_trips,
        ))
        .add(Scenario::new(
            "knit batch 1000 (per call)",
            batch,
            knit_batches,
        ))
        .add(Scenario::new(
            "crossbeam batch 1000 (per call)",
            batch,
            crossbeam_batches,
        ))
        .add(Scenario::new(
            "mpsc batch 1000 (per call)",
            batch,
            mpsc_batches,
        ))
        .add(Scenario::new(
            "futex ping-pong",
            parked,
            floors::futex_ping_pong,
        ))
        .add(Scenario::new("knit parked call", parked, |n| {
            knit_round_trips(n, Duration::ZERO)
        }));
    let report = runner.run();
    println!("{}", report.table());
    let ratio = |a, b| report.ratio(a, b).unwrap_or(f64::NAN);
    println!(
        "hot round trip / atomic ping-pong:      {:.2}x (goal <= 1.5x)",
        ratio("knit hot round trip", "atomic ping-pong")
    );
    println!(
        "batch 1000 / crossbeam batch 1000:      {:.2}x (goal <= 0.5x)",
        ratio(
            "knit batch 1000 (per call)",
            "crossbeam batch 1000 (per call)"
        )
    );
    println!(
        "batch 1000 / mpsc batch 1000:           {:.2}x",
        ratio("knit batch 1000 (per call)", "mpsc batch 1000 (per call)")
    );
    println!(
        "parked call / futex ping-pong:          {:.2}x (goal <= 1.3x)",
        ratio("knit parked call", "futex ping-pong")
    );
    match idle_cpu_percent(PoolOptions::default().threads) {
        Some(p) => {
            println!("idle pool CPU over 1 s:                 {p:.1}% of a core (goal <= 2%)")
        }
        None => println!("idle pool CPU: /proc not available"),
    }
}
