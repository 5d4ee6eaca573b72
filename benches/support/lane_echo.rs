//! knit-transport on its own, as a floor for anything built on it: a worker
//! that echoes every message of a lane back, and bursts of messages through it.
//!
//! A pool that sends one frame per call and returns one result per call can
//! be no faster per call than this echo: it moves the same frames and adds its
//! own work (a call slot, the task, encoding). The pool benchmark puts these
//! bursts beside its batch groups so that bound is measured in the same run.

use std::thread::JoinHandle;
use std::time::Duration;

use knit_transport::{lane, Envelope, HostEnd, LaneConfig, WaitOutcome};

use crate::pin_to;
use crate::runner::timed;

/// How the two ends of an echo publish what they write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// A whole burst (the host) or a whole drained run (the echo worker) with
    /// one store of the ring's index: the transport's best case.
    PerBurst,
    /// Every message as it is written, as independent calls are.
    PerMessage,
}

/// Starts an echo worker pinned to core 1 (the calling thread is pinned to
/// core 0) that sends every request's envelope and first 8 bytes back until
/// the host end is dropped. Join the handle after dropping the host end.
///
/// ```
/// use knit_bench::lane_echo::{echo_lane, Publish};
/// let (mut host, worker) = echo_lane(std::time::Duration::from_micros(50), Publish::PerMessage);
/// let env = knit_transport::Envelope { call_id: 7, task_id: 1, flags: 0 };
/// host.requests.send(env, &7u64.to_le_bytes()).unwrap();
/// assert_eq!(host.responses.recv(|f| f.envelope().call_id).unwrap(), 7);
/// drop(host);
/// worker.join().unwrap();
/// ```
pub fn echo_lane(spin: Duration, publish: Publish) -> (HostEnd, JoinHandle<()>) {
    let config = LaneConfig {
        spin,
        ..LaneConfig::default()
    };
    let (host, mut worker) = lane(&config).expect("a lane with the default sizes");
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
                    if worker.requests.wait(None) == WaitOutcome::Closed {
                        return;
                    }
                }
                Ok(_) if publish == Publish::PerMessage => {
                    for (env, word) in &replies {
                        if worker.responses.send(*env, word).is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {
                    let mut batch = worker.responses.batch();
                    for (env, word) in &replies {
                        if batch.try_push(*env, word).is_err() {
                            drop(batch);
                            if worker.responses.send(*env, word).is_err() {
                                return;
                            }
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

/// The envelope of request `i`.
pub fn request(i: u64) -> Envelope {
    Envelope {
        call_id: i,
        task_id: 1,
        flags: 0,
    }
}

/// Sends `messages` 8-byte messages through a fresh echo lane in bursts of
/// `burst` (all of a burst written before any reply is read) and returns the
/// time taken, warm-up excluded. A burst must fit in a ring (the default
/// 64 KiB holds 1000 of these messages).
///
/// ```
/// use knit_bench::lane_echo::{bursts, Publish};
/// assert!(bursts(2_000, 100, Publish::PerBurst).as_nanos() > 0);
/// assert!(bursts(2_000, 100, Publish::PerMessage).as_nanos() > 0);
/// ```
pub fn bursts(messages: u64, burst: u64, publish: Publish) -> Duration {
    let burst = burst.max(1);
    let (mut host, worker) = echo_lane(LaneConfig::default().spin, publish);
    let elapsed = timed(10, messages / burst, |_| {
        match publish {
            Publish::PerBurst => {
                let mut batch = host.requests.batch();
                for i in 0..burst {
                    batch
                        .try_push(request(i), &i.to_le_bytes())
                        .expect("a burst fits in the ring");
                }
                batch.publish();
            }
            Publish::PerMessage => {
                for i in 0..burst {
                    host.requests
                        .send(request(i), &i.to_le_bytes())
                        .expect("the echo worker is alive");
                }
            }
        }
        let mut received = 0;
        while received < burst {
            host.responses.wait(None);
            received += host
                .responses
                .drain(usize::MAX, |f| {
                    std::hint::black_box(f.envelope());
                })
                .expect("the echo worker is alive") as u64;
        }
    });
    drop(host);
    worker.join().expect("the echo worker does not panic");
    elapsed
}
