//! Unit tests of the rings through their public API (kept Miri-clean: small
//! regions, few threads, no file mappings under Miri).

mod closing;
mod framing;
mod overflow_area;
mod salvage;
mod threads;

use std::time::Duration;

use crate::{lane, Envelope, HostEnd, LaneConfig, WorkerEnd};

/// A lane small enough that tests reach its edges quickly (and Miri stays fast).
pub(crate) fn small_config() -> LaneConfig {
    LaneConfig {
        ring_bytes: 1024,
        inline_max_bytes: 128,
        overflow_initial_bytes: 1024,
        overflow_max_bytes: 16 * 1024,
        max_message_bytes: None,
        spin: Duration::ZERO,
    }
}

pub(crate) fn small_lane() -> (HostEnd, WorkerEnd) {
    lane(&small_config()).unwrap()
}

pub(crate) fn env(call_id: u64) -> Envelope {
    Envelope {
        call_id,
        task_id: call_id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        flags: call_id as u32 ^ 0xA5A5,
    }
}

/// Deterministic payload for a message: its bytes depend on the call id and length.
pub(crate) fn pattern(call_id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (call_id as usize).wrapping_mul(31).wrapping_add(i * 7) as u8)
        .collect()
}

/// Sends message `i` with `pattern(i, sizes[i])` for every entry of `sizes`,
/// then receives and checks them all, in order.
pub(crate) fn send_then_expect_all(host: &mut HostEnd, worker: &mut WorkerEnd, sizes: &[usize]) {
    for (i, &len) in sizes.iter().enumerate() {
        host.requests
            .try_send(env(i as u64), &pattern(i as u64, len))
            .unwrap();
    }
    for (i, &len) in sizes.iter().enumerate() {
        expect_message(worker, i as u64, len);
    }
}

/// Receives one message and checks it is `call_id` with the expected payload.
pub(crate) fn expect_message(worker: &mut WorkerEnd, call_id: u64, len: usize) {
    let got = worker
        .requests
        .try_recv(|f| (f.envelope(), f.payload().to_vec()))
        .unwrap()
        .expect("a message is waiting");
    assert_eq!(got.0, env(call_id));
    assert_eq!(got.1.len(), len);
    assert!(
        got.1 == pattern(call_id, len),
        "payload of call {call_id} differs"
    );
}
