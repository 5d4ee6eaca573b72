//! Loom models of the publish / consume / park / wake protocol.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p knit-transport --test loom --release`
//!
//! Spin budgets are zero, so every wait goes straight to the announce / fence /
//! re-check / sleep path; the futex is modelled by a mutex + condvar (see
//! `futex.rs`), so a lost wake-up would leave a thread asleep forever, which loom
//! reports as a deadlock. Payload contents are checked to catch torn messages.
#![cfg(loom)]

use std::time::Duration;

use knit_transport::{lane, Envelope, LaneConfig, TransportError};
use loom::thread;

fn config() -> LaneConfig {
    LaneConfig {
        ring_bytes: 1024,
        inline_max_bytes: 224,
        overflow_initial_bytes: 256,
        overflow_max_bytes: 256,
        max_message_bytes: Some(256),
        spin: Duration::ZERO,
    }
}

fn env(id: u64) -> Envelope {
    Envelope {
        call_id: id,
        task_id: id + 100,
        flags: id as u32,
    }
}

fn payload(id: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (id as usize * 13 + i) as u8).collect()
}

/// Sends one message per entry of `sizes` from one thread and receives them on another.
fn exchange(sizes: &'static [usize]) {
    loom::model(move || {
        let (mut host, mut worker) = lane(&config()).unwrap();
        let producer = thread::spawn(move || {
            for (id, &len) in sizes.iter().enumerate() {
                host.requests
                    .send(env(id as u64), &payload(id as u64, len))
                    .unwrap();
            }
            host
        });
        for (id, &len) in sizes.iter().enumerate() {
            let (e, bytes) = worker
                .requests
                .recv(|f| (f.envelope(), f.payload().to_vec()))
                .unwrap();
            assert_eq!(e, env(id as u64));
            assert_eq!(bytes, payload(id as u64, len));
        }
        let host = producer.join().unwrap();
        drop((host, worker));
    });
}

#[test]
fn a_parked_consumer_is_always_woken_by_a_publish() {
    exchange(&[3, 0, 5]);
}

#[test]
fn a_producer_parked_on_a_full_ring_is_always_woken_by_a_release() {
    // Four 256-byte frames fill the 1 KiB ring: the fifth send must wait.
    exchange(&[224, 224, 224, 224, 224]);
}

#[test]
fn a_producer_parked_on_a_full_overflow_area_is_always_woken() {
    // The overflow area holds one 256-byte block: the second must wait for the first.
    exchange(&[256, 250]);
}

#[test]
fn closing_always_wakes_a_parked_consumer() {
    loom::model(|| {
        let (host, mut worker) = lane(&config()).unwrap();
        let region = host.requests.region().clone();
        let closer = thread::spawn(move || region.close());
        assert!(matches!(
            worker.requests.recv(|_| ()),
            Err(TransportError::Closed)
        ));
        closer.join().unwrap();
        drop((host, worker));
    });
}

#[test]
fn a_message_published_before_closing_is_still_delivered() {
    loom::model(|| {
        let (mut host, mut worker) = lane(&config()).unwrap();
        let producer = thread::spawn(move || {
            host.requests.send(env(7), &payload(7, 9)).unwrap();
            host.requests.region().close();
            host
        });
        let got = worker.requests.recv(|f| f.payload().to_vec()).unwrap();
        assert_eq!(got, payload(7, 9));
        assert!(matches!(
            worker.requests.recv(|_| ()),
            Err(TransportError::Closed)
        ));
        drop((producer.join().unwrap(), worker));
    });
}
