use super::*;
use crate::{TransportError, FRAME_HEADER_BYTES};

#[test]
fn envelope_and_payload_round_trip_for_every_inline_size() {
    let (mut host, mut worker) = small_lane();
    for len in 0..=128 {
        host.requests
            .try_send(env(len as u64), &pattern(len as u64, len))
            .unwrap();
        expect_message(&mut worker, len as u64, len);
    }
    assert!(worker.requests.try_recv(|_| ()).unwrap().is_none());
}

/// Moves both cursors of a fresh lane to ring offset `k` with filler frames.
fn lane_at_offset(k: usize) -> (HostEnd, WorkerEnd) {
    let (mut host, mut worker) = small_lane();
    let mut remaining = k;
    let mut id = 1_000_000;
    while remaining > 0 {
        let frame = if remaining <= 160 {
            remaining
        } else if remaining - 160 >= FRAME_HEADER_BYTES {
            160
        } else {
            remaining - FRAME_HEADER_BYTES
        };
        let len = frame - FRAME_HEADER_BYTES;
        host.requests.try_send(env(id), &pattern(id, len)).unwrap();
        expect_message(&mut worker, id, len);
        remaining -= frame;
        id += 1;
    }
    (host, worker)
}

#[test]
fn frames_wrap_at_every_offset_near_the_end() {
    // Every 8-byte offset in the last 256 bytes of a 1 KiB ring, followed by
    // frames of many sizes: covers the implicit skip (< 32 bytes left), the pad
    // frame (>= 32 left but too few for the frame) and exact fits.
    let sizes = [0usize, 1, 7, 8, 9, 24, 31, 64, 100, 128, 5, 128, 0];
    for k in (1024 - 256..1024).step_by(8) {
        let (mut host, mut worker) = lane_at_offset(k);
        send_then_expect_all(&mut host, &mut worker, &sizes);
        assert!(
            worker.requests.try_recv(|_| ()).unwrap().is_none(),
            "offset {k}"
        );
    }
}

#[test]
fn a_full_ring_refuses_without_writing_anything() {
    let (mut host, mut worker) = small_lane();
    let mut sent = 0u64;
    loop {
        match host.requests.try_send(env(sent), &pattern(sent, 100)) {
            Ok(()) => sent += 1,
            Err(TransportError::Full) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // 1024-byte ring, 136-byte frames: 7 fit.
    assert_eq!(sent, 7);
    expect_message(&mut worker, 0, 100);
    host.requests
        .try_send(env(sent), &pattern(sent, 100))
        .unwrap();
    for id in 1..=sent {
        expect_message(&mut worker, id, 100);
    }
    assert!(worker.requests.try_recv(|_| ()).unwrap().is_none());
}

#[test]
fn a_batch_becomes_visible_only_when_published() {
    let (mut host, mut worker) = small_lane();
    let mut batch = host.requests.batch();
    for id in 0..5 {
        batch
            .try_push(env(id), &pattern(id, id as usize * 3))
            .unwrap();
    }
    assert!(!worker.requests.has_pending());
    batch.publish();
    assert!(worker.requests.has_pending());
    let mut seen = Vec::new();
    let n = worker
        .requests
        .drain(usize::MAX, |f| {
            let id = f.envelope().call_id;
            assert_eq!(f.payload(), &pattern(id, id as usize * 3)[..]);
            seen.push(id);
        })
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}

#[test]
fn drain_stops_at_max_and_keeps_the_rest() {
    let (mut host, mut worker) = small_lane();
    for id in 0..6 {
        host.requests.try_send(env(id), &pattern(id, 10)).unwrap();
    }
    assert_eq!(worker.requests.drain(4, |_| ()).unwrap(), 4);
    expect_message(&mut worker, 4, 10);
    expect_message(&mut worker, 5, 10);
}

#[test]
fn in_place_writes_fill_exactly_the_announced_length() {
    let (mut host, mut worker) = small_lane();
    host.requests
        .try_send_with(env(1), 5, |buf, _| {
            assert_eq!(buf.len(), 5);
            buf.copy_from_slice(&pattern(1, 5));
        })
        .unwrap();
    expect_message(&mut worker, 1, 5);
}

#[test]
fn a_send_on_a_full_lane_gives_up_after_its_timeout_and_succeeds_once_there_is_room() {
    let (mut host, mut worker) = small_lane();
    let mut sent = 0u64;
    while host
        .requests
        .try_send(env(sent), &pattern(sent, 40))
        .is_ok()
    {
        sent += 1;
    }
    let fill = |buf: &mut [u8], _: &mut Envelope| buf.copy_from_slice(&pattern(sent, 40));
    let wait = Some(std::time::Duration::from_millis(2));
    assert!(matches!(
        host.requests.send_with(env(sent), 40, fill, wait),
        Err(TransportError::Full)
    ));
    expect_message(&mut worker, 0, 40);
    host.requests.send_with(env(sent), 40, fill, wait).unwrap();
    for id in 1..=sent {
        expect_message(&mut worker, id, 40);
    }
}

#[test]
fn the_filler_can_amend_the_envelope_it_is_sent_with() {
    let (mut host, mut worker) = small_lane();
    host.requests
        .try_send_with(env(2), 3, |buf, e| {
            buf.copy_from_slice(&[7, 8, 9]);
            e.flags |= 0x8000_0000;
        })
        .unwrap();
    let (got, body) = worker
        .requests
        .try_recv(|f| (f.envelope(), f.payload().to_vec()))
        .unwrap()
        .expect("a message is waiting");
    assert_eq!(got.call_id, 2);
    assert_eq!(got.flags, env(2).flags | 0x8000_0000);
    assert_eq!(body, [7, 8, 9]);
}

#[test]
fn a_panicking_drain_consumes_what_it_finished_and_redelivers_the_rest() {
    let (mut host, mut worker) = small_lane();
    for id in 0..3 {
        host.requests.try_send(env(id), &pattern(id, 4)).unwrap();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker.requests.drain(10, |f| {
            if f.envelope().call_id == 1 {
                panic!("handler failed");
            }
        })
    }));
    assert!(result.is_err());
    expect_message(&mut worker, 1, 4);
    expect_message(&mut worker, 2, 4);
}

#[test]
fn a_panicking_fill_sends_nothing() {
    let (mut host, mut worker) = small_lane();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.requests
            .try_send_with(env(9), 1000, |_, _| panic!("encoder failed"))
    }));
    assert!(result.is_err());
    assert!(!worker.requests.has_pending());
    host.requests.try_send(env(10), &pattern(10, 1000)).unwrap();
    expect_message(&mut worker, 10, 1000);
}

#[test]
fn a_tampered_frame_is_reported_corrupt() {
    let (mut host, mut worker) = small_lane();
    host.requests.try_send(env(1), b"hello").unwrap();
    let data = host.requests.region().ring_data(crate::Direction::Requests);
    // SAFETY: test-only: the frame is published and nobody reads it concurrently;
    // offset 28 is the header's sequence number.
    unsafe { *data.add(28) ^= 0xFF };
    match worker.requests.try_recv(|_| ()) {
        Err(TransportError::Corrupt {
            position: 0,
            reason,
        }) => assert!(reason.contains("sequence")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
