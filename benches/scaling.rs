//! CPU-bound work over more workers: counting primes below N in chunks with
//! 1 … cores workers (result `scaling`), and a skewed batch where 1% of the
//! tasks take 1000× longer, for each knit balancer (result `skewed`).
//!
//! `cargo bench --bench scaling [-- --quick] [--filter NAME] [--json] [--out DIR]`
//!
//! Worker `i` of every system is pinned to core `i + 1` (wrapping), the caller
//! to core 0.

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/peers/mod.rs"]
mod peers;
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::time::Duration;

use knit::{Balancer, PoolOptions};
use knit_bench::cli::Args;
use knit_bench::machine::online_cores;
use knit_bench::results::{Chart, Role};
use knit_bench::runner::timed;
use knit_bench::work;
use peers::{add_group, Contender, Group, Shape, Work};
use suite::{spec, Bench, Meta};

#[knit::task]
fn count_primes(range: (u64, u64)) -> u64 {
    work::count_primes(range.0, range.1)
}

#[knit::task]
fn spin(iters: u64) -> u64 {
    work::spin(iters)
}

const PRIMES: Work<(u64, u64), u64> = Work {
    task: |c, x| c.count_primes(x),
    plain: count_primes,
};

const SPIN: Work<u64, u64> = Work {
    task: |c, x| c.spin(x),
    plain: spin,
};

fn scaling(args: &Args) -> std::io::Result<()> {
    let n: u64 = args.pick(100_000, 400_000);
    const CHUNKS: u64 = 64;
    let jobs: u64 = args.pick(2, 40);
    let about = format!(
        "Count the primes below {n} by trial division, cut into {CHUNKS} chunks sent as one \
         batch; with 1 … {cores} workers (the caller waits on core 0, which worker 2 shares on \
         a 2-core machine). Figures are per chunk; a whole count is {CHUNKS} chunks. \
         `serial` runs the chunks on the calling thread, no pool. knit runs with its \
         defaults, and once more with `caller_spin: 0` (the caller parks at once).",
        cores = online_cores()
    );
    let meta = Meta {
        name: "scaling",
        title: "CPU-bound scaling (count primes)",
        about: &about,
        rounds: args.pick(3, 11),
        chart: Chart::Lines {
            x_label: "workers".into(),
            y_label: "chunks counted per second (median)".into(),
            log: false,
        },
        ..Meta::default()
    };
    let mut bench = Bench::new(args, meta);
    let chunks = work::chunks(n, CHUNKS);
    let serial_chunks = chunks.clone();
    let serial = spec("serial", "caller thread", Role::Floor);
    bench.add_in_steps(serial, CHUNKS * jobs, CHUNKS, move |iters| {
        knit_bench::pin_to(0);
        timed(1, iters / CHUNKS, |_| {
            for &(lo, hi) in &serial_chunks {
                std::hint::black_box(work::count_primes(lo, hi));
            }
        })
    });
    // knit's waiting caller spins before it parks; with a worker on every
    // core that spin competes with the worker sharing the caller's core.
    let no_caller_spin = PoolOptions {
        caller_spin: Duration::ZERO,
        ..PoolOptions::default()
    };
    let mut all = Contender::with_peers(Contender::knit());
    all.insert(
        1,
        Contender::knit_with("knit, caller_spin 0", no_caller_spin),
    );
    for workers in 1..=online_cores() {
        let name = format!("{workers} worker{}", if workers == 1 { "" } else { "s" });
        let group = Group {
            name: &name,
            shape: Shape::Batches(CHUNKS),
            workers,
            iters: CHUNKS * jobs,
            x: Some(workers as f64),
            bytes: None,
        };
        let chunks = chunks.clone();
        add_group(&mut bench, group, &all, PRIMES, move |i| {
            chunks[(i % CHUNKS) as usize]
        });
    }
    bench.finish()
}

/// The knit balancers the skewed batch compares.
fn balancers() -> Vec<(&'static str, Balancer)> {
    vec![
        ("RoundRobin", Balancer::RoundRobin),
        ("FirstIdle", Balancer::FirstIdle),
        ("RandomLane", Balancer::RandomLane),
        ("FirstIdleOrRandom", Balancer::FirstIdleOrRandom),
        ("Shared", Balancer::Shared),
    ]
}

fn skewed(args: &Args) -> std::io::Result<()> {
    const BATCH: u64 = 1000;
    const SHORT: u64 = work::SPIN_PER_MICROSECOND;
    const LONG: u64 = SHORT * 1000;
    let workers = online_cores();
    let batches: u64 = args.pick(2, 40);
    let about = format!(
        "One batch of {BATCH} tasks on {workers} workers; a fixed pseudo-random 1% of them \
         spin 1000× longer (`spin({LONG})` against `spin({SHORT})`, about 1 ms against 1 µs here). \
         The same tasks in the same order for every system. Figures are per task. knit once \
         per balancer; the crossbeam pool shares one queue between its workers (a task waits \
         only for a free worker), std mpsc deals tasks round robin to per-worker queues."
    );
    let meta = Meta {
        name: "skewed",
        title: "Skewed batch (1% of tasks 1000× longer), per balancer",
        about: &about,
        rounds: args.pick(3, 11),
        ..Meta::default()
    };
    let mut bench = Bench::new(args, meta);
    let mut systems: Vec<Contender> = balancers()
        .into_iter()
        .map(|(name, balancer)| {
            let options = PoolOptions {
                balancer,
                ..PoolOptions::default()
            };
            Contender::knit_with(&format!("knit {name}"), options)
        })
        .collect();
    systems.extend(Contender::peers());
    let group = Group {
        name: "1000 tasks, 1% long",
        shape: Shape::Batches(BATCH),
        workers,
        iters: BATCH * batches,
        x: None,
        bytes: None,
    };
    let units = |i: u64| {
        if work::is_long(i % BATCH, 100) {
            LONG
        } else {
            SHORT
        }
    };
    add_group(&mut bench, group, &systems, SPIN, units);
    bench.finish()
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    scaling(&args)?;
    skewed(&args)
}
