//! The knit pool against its floors and its peers: hot round trips, batches
//! of 10/100/1000, cold (parked) calls and an idle pool's CPU use (result
//! `pool`); the inline lane on and off (result `inline`).
//!
//! `cargo bench --bench pool [-- --quick] [--filter NAME] [--json] [--out DIR]`
//!
//! Every system has one worker thread pinned to core 1, the caller on core 0,
//! and runs the same no-op task.

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/peers/mod.rs"]
mod peers;
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::time::{Duration, Instant};

use knit::{create_pool, Inliner, PoolOptions};
use knit_bench::cli::Args;
use knit_bench::lane_echo::{self, Publish};
use knit_bench::machine::online_cores;
use knit_bench::results::Role;
use knit_bench::{floors, work};
use peers::{add_group, Contender, Group, Shape, Work};
use suite::{spec, Bench, Meta};

#[knit::task]
fn noop(x: u64) -> u64 {
    x
}

#[knit::task]
fn spin(iters: u64) -> u64 {
    work::spin(iters)
}

const NOOP: Work<u64, u64> = Work {
    task: |c, x| c.noop(x),
    plain: noop,
};

const SPIN: Work<u64, u64> = Work {
    task: |c, x| c.spin(x),
    plain: spin,
};

/// The transport floors beside the batch groups (see `knit_bench::lane_echo`).
const ECHO_PER_BURST: &str = "lane echo, a publish per batch";
const ECHO_PER_MESSAGE: &str = "lane echo, a publish per message";

/// Long enough after a call for every system's threads to spin out and park.
const COLD_PAUSE: Duration = Duration::from_millis(1);

fn pool(args: &Args) -> std::io::Result<()> {
    let rounds = args.pick(3, 15);
    let (hot, batch, cold) = args.pick((5_000, 10_000, 20), (200_000, 400_000, 200));
    let about = "One worker thread pinned to core 1, the caller on core 0, a no-op task \
         (`u64` in, the same `u64` out). Each round starts a fresh pool per system and \
         times it after a warm-up; rounds are interleaved across systems. Batches put every \
         call in flight before waiting for any; figures are per call. A cold call follows \
         a 1 ms pause (untimed), after which every system's threads have parked. \
         Peers: a crossbeam-channel pool (one shared request queue, one reply channel \
         shared by all calls), the same pool with a one-slot reply channel made per call \
         (so each call has its own handle, as a knit `Call` does), \
         a std mpsc pool (one queue per worker), rayon (`spawn`, reply on a channel) and \
         tokio (`spawn_blocking` on a current-thread runtime, awaited with `block_on`). \
         Floors beside the batches: knit-transport alone echoing as many 8-byte messages \
         in flight (no pool: no call slots, no task, no encoding), with one publish per \
         batch at each end (its best case) or one per message (as independent calls \
         publish). p99 is over round means.";
    let meta = Meta {
        name: "pool",
        title: "Pool: round trips, batches, cold calls",
        about,
        rounds,
        ..Meta::default()
    };
    let mut bench = Bench::new(args, meta);
    let all = Contender::with_peers(Contender::knit());
    let group = Group::new;
    let hot_group = "round trip (batch 1)";
    bench.add(
        spec(hot_group, "atomic ping-pong", Role::Floor),
        hot,
        floors::atomic_ping_pong,
    );
    add_group(
        &mut bench,
        group(hot_group, Shape::RoundTrips, hot),
        &all,
        NOOP,
        |i| i,
    );
    for (name, n) in [("batch 10", 10), ("batch 100", 100), ("batch 1000", 1000)] {
        // What knit-transport alone costs for the same number of messages in
        // flight: no pool sending a frame per call can go below it.
        for (system, publish) in [
            (ECHO_PER_BURST, Publish::PerBurst),
            (ECHO_PER_MESSAGE, Publish::PerMessage),
        ] {
            bench.add_in_steps(spec(name, system, Role::Floor), batch, n, move |m| {
                lane_echo::bursts(m, n, publish)
            });
        }
        add_group(
            &mut bench,
            group(name, Shape::Batches(n), batch),
            &all,
            NOOP,
            |i| i,
        );
    }
    let cold_group = "cold call (1 ms idle before each)";
    bench.add(
        spec(cold_group, "futex ping-pong", Role::Floor),
        cold,
        floors::futex_ping_pong,
    );
    add_group(
        &mut bench,
        group(cold_group, Shape::Cold(COLD_PAUSE), cold),
        &all,
        NOOP,
        |i| i,
    );
    let parked = "parked call (spin budgets 0)";
    let no_spin = Contender::knit_with(
        "knit",
        PoolOptions {
            worker_spin: Duration::ZERO,
            caller_spin: Duration::ZERO,
            ..PoolOptions::default()
        },
    );
    bench.add(
        spec(parked, "futex ping-pong", Role::Floor),
        cold,
        floors::futex_ping_pong,
    );
    add_group(
        &mut bench,
        group(parked, Shape::RoundTrips, cold),
        &[no_spin],
        NOOP,
        |i| i,
    );
    if bench.wants("idle") {
        let threads = online_cores().saturating_sub(1).max(1);
        if let Some(p) = idle_cpu_percent(threads) {
            bench.extra(
                &format!("idle pool (workers: {threads}), CPU over 1 s"),
                p,
                "% of a core",
            );
        }
    }
    bench.finish()
}

fn inline(args: &Args) -> std::io::Result<()> {
    let rounds = args.pick(3, 15);
    let (hot, batch) = args.pick((5_000, 10_000), (200_000, 400_000));
    let about =
        "knit with one worker (core 1) and the inline lane off or on (`Inliner::default()`: \
         the calling thread is an extra lane, last in round-robin order, eligible once a call \
         is in flight), against the crossbeam pool with one worker. \
         Tasks: a no-op, and `spin` for about 1 µs of arithmetic.";
    let meta = Meta {
        name: "inline",
        title: "Inline lane on and off",
        about,
        rounds,
        ..Meta::default()
    };
    let mut bench = Bench::new(args, meta);
    let on = PoolOptions {
        inliner: Some(Inliner::default()),
        ..PoolOptions::default()
    };
    let systems = [
        Contender::knit_with("knit, inline off", PoolOptions::default()),
        Contender::knit_with("knit, inline on", on),
        Contender::Crossbeam,
    ];
    let group = Group::new;
    add_group(
        &mut bench,
        group("no-op, batch 1", Shape::RoundTrips, hot),
        &systems,
        NOOP,
        |i| i,
    );
    add_group(
        &mut bench,
        group("no-op, batch 100", Shape::Batches(100), batch),
        &systems,
        NOOP,
        |i| i,
    );
    add_group(
        &mut bench,
        group("1 µs tasks, batch 100", Shape::Batches(100), batch / 10),
        &systems,
        SPIN,
        |_| work::SPIN_PER_MICROSECOND,
    );
    bench.finish()
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
    pool.shutdown();
    Some(100.0 * used.as_secs_f64() / start.elapsed().as_secs_f64())
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    pool(&args)?;
    inline(&args)
}
