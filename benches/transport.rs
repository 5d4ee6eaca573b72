//! knit-transport against the floors, in one run, rounds interleaved.
//!
//! `cargo bench --bench transport [-- --quick] [--filter NAME] [--json] [--out DIR]`
//!
//! * `atomic ping-pong`: bare two-thread round trip on two atomics (the floor).
//! * `lane ping-pong`: one 8-byte message to a worker and one back, both ends hot.
//! * `lane burst 1000`: 1000 messages published as one batch, echoed back as
//!   batches; reported per message.
//! * `futex ping-pong`: both sides sleep on a futex every time (the parked floor).
//! * `lane parked`: a round trip with spin budgets of zero, so both ends park.

// Shared by every bench binary; each uses only part of it.
#[allow(dead_code)]
#[path = "support/suite/mod.rs"]
mod suite;

use std::time::Duration;

use knit_suite::cli::Args;
use knit_suite::results::Role;
use knit_suite::runner::timed;
use knit_suite::{floors, pin_to};
use knit_transport::{lane, Envelope, HostEnd, LaneConfig};
use suite::{spec, Bench, Meta};

/// Starts an echo worker on core 1 and returns the host end and its join handle.
fn echo_lane(spin: Duration) -> (HostEnd, std::thread::JoinHandle<()>) {
    let config = LaneConfig {
        spin,
        ..LaneConfig::default()
    };
    let (host, mut worker) = lane(&config).unwrap();
    let handle = std::thread::spawn(move || {
        pin_to(1);
        let mut replies = Vec::with_capacity(1024);
        loop {
            replies.clear();
            let got = worker.requests.drain(1024, |f| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&f.payload()[..8]);
                replies.push((f.envelope(), word));
            });
            match got {
                Ok(0) => {
                    if worker.requests.wait(None) == knit_transport::WaitOutcome::Closed {
                        return;
                    }
                }
                Ok(_) => {
                    let mut batch = worker.responses.batch();
                    for (env, word) in &replies {
                        if batch.try_push(*env, word).is_err() {
                            drop(batch);
                            worker.responses.send(*env, word).unwrap();
                            batch = worker.responses.batch();
                        }
                    }
                }
                Err(_) => return,
            }
        }
    });
    pin_to(0);
    (host, handle)
}

/// The envelope of request `i` (the echo worker sends it back as it came).
fn request(i: u64) -> Envelope {
    Envelope {
        call_id: i,
        task_id: 1,
        flags: 0,
    }
}

fn ping_pong(iters: u64, spin: Duration) -> Duration {
    let (mut host, worker) = echo_lane(spin);
    let elapsed = timed(iters / 10 + 10, iters, |i| {
        host.requests.send(request(i), &i.to_le_bytes()).unwrap();
        let back = host.responses.recv(|f| f.envelope().call_id).unwrap();
        assert_eq!(back, i);
    });
    drop(host);
    worker.join().unwrap();
    elapsed
}

/// `messages` messages in bursts of 1000; returns the total time.
fn bursts(messages: u64) -> Duration {
    const BURST: u64 = 1000;
    let (mut host, worker) = echo_lane(LaneConfig::default().spin);
    let elapsed = timed(10, messages / BURST, |_| {
        let mut batch = host.requests.batch();
        for i in 0..BURST {
            batch.try_push(request(i), &i.to_le_bytes()).unwrap();
        }
        batch.publish();
        let mut received = 0;
        while received < BURST {
            host.responses.wait(None);
            received += host.responses.drain(usize::MAX, |_| ()).unwrap() as u64;
        }
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
                 echoes them back in batches; figures are per message. Parked: spin budgets \
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
    bench.add_in_steps(lane(burst_group), burst, 1000, bursts);
    let futex = spec(parked_group, "futex ping-pong", Role::Floor);
    bench.add(futex, parked, floors::futex_ping_pong);
    bench.add(lane(parked_group), parked, |n| ping_pong(n, Duration::ZERO));
    bench.finish()
}
