//! A worker thread echoing messages through one shared-memory lane.
//!
//! `cargo run --release --example lane_echo`

use std::time::Instant;

use knit_transport::{lane, Envelope, LaneConfig};

fn main() {
    let (mut host, mut worker) = lane(&LaneConfig::default()).expect("map a lane");
    let echo = std::thread::spawn(move || {
        let mut served = 0u64;
        while let Ok(env) = worker.requests.recv(|f| f.envelope()) {
            worker
                .responses
                .send(env, &env.call_id.to_le_bytes())
                .expect("reply");
            served += 1;
        }
        served
    });
    let calls = 200_000u64;
    let start = Instant::now();
    for id in 0..calls {
        let env = Envelope {
            call_id: id,
            task_id: 1,
            flags: 0,
        };
        host.requests.send(env, b"ping").expect("send");
        let back = host
            .responses
            .recv(|f| u64::from_le_bytes(f.payload().try_into().unwrap()))
            .expect("receive");
        assert_eq!(back, id);
    }
    let elapsed = start.elapsed();
    drop(host);
    let served = echo.join().unwrap();
    println!(
        "{served} round trips through one lane in {elapsed:?} ({:.0} ns each)",
        elapsed.as_nanos() as f64 / calls as f64
    );
}
