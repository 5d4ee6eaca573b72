//! knit-transport against the floors, in one run, rounds interleaved.
//!
//! `cargo bench --bench transport [-- --quick] [--filter NAME] [--json] [--out DIR]`
//!
//! * `atomic ping-pong`: bare two-thread round trip on two atomics (the floor).
//! * `lane ping-pong`: one 8-byte message to a worker and one back, both ends hot.
//! * `lane burst 1000`: 1000 messages published as one batch, echoed back as
//!   batches; reported per message. The same with every message published on
//!   its own at both ends (as independent calls are).
//! * `futex ping-pong`: both sides sleep on a futex every time (the parked floor).
//! * `lane parked`: a round trip with spin budgets of zero, so both ends park.

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::time::Duration;

use knit_bench::cli::Args;
use knit_bench::floors;
use knit_bench::lane_echo::{bursts, echo_lane, request, Publish};
use knit_bench::results::Role;
use knit_bench::runner::timed;
use knit_transport::LaneConfig;
use suite::{spec, Bench, Meta};

fn ping_pong(iters: u64, spin: Duration) -> Duration {
    let (mut host, worker) = echo_lane(spin, Publish::PerBurst);
    let elapsed = timed(iters / 10 + 10, iters, |i| {
        host.requests.send(request(i), &i.to_le_bytes()).unwrap();
        let back = host.responses.recv(|f| f.envelope().call_id).unwrap();
        assert_eq!(back, i);
    });
    drop(host);
    worker.join().unwrap();
    elapsed
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (hot, burst, parked) = args.pick((20_000, 20_000, 300), (200_000, 200_000, 3_000));
    let about = "Fresh threads each round, the worker pinned to core 1 and the caller to \
                 core 0, warm-up excluded; rounds interleaved. The lane carries an 8-byte \
                 message each way. Bursts publish 1000 messages as one batch and the worker \
                 echoes them back in batches; figures are per message (\"a publish per \
                 message\": both ends publish each message as they write it). Parked: spin budgets \
                 of zero, so both ends sleep on the futex every time.";
    let meta = Meta {
        name: "transport",
        title: "knit-transport lanes against the floors",
        about,
        rounds: args.pick(3, 15),
        primary: "atomic ping-pong",
        ..Meta::default()
    };
    let mut bench = Bench::new(&args, meta);
    let (hot_group, burst_group, parked_group) = (
        "round trip (hot)",
        "bursts of 1000 (per message)",
        "round trip (both ends parked)",
    );
    let floor = |group| spec(group, "atomic ping-pong", Role::Floor);
    let lane = |group| spec(group, "lane", Role::Knit);
    bench.add(floor(hot_group), hot, floors::atomic_ping_pong);
    bench.add(lane(hot_group), hot, |n| {
        ping_pong(n, LaneConfig::default().spin)
    });
    bench.add(floor(burst_group), burst, floors::atomic_ping_pong);
    bench.add_in_steps(lane(burst_group), burst, 1000, |n| {
        bursts(n, 1000, Publish::PerBurst)
    });
    let each = spec(burst_group, "lane, a publish per message", Role::Knit);
    bench.add_in_steps(each, burst, 1000, |n| bursts(n, 1000, Publish::PerMessage));
    let futex = spec(parked_group, "futex ping-pong", Role::Floor);
    bench.add(futex, parked, floors::futex_ping_pong);
    bench.add(lane(parked_group), parked, |n| ping_pong(n, Duration::ZERO));
    bench.finish()
}
