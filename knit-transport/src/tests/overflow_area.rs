use super::*;
use crate::TransportError;

#[test]
fn large_payloads_travel_through_the_overflow_area() {
    let (mut host, mut worker) = small_lane();
    for len in [129usize, 500, 1024, 2048] {
        host.requests
            .try_send(env(len as u64), &pattern(len as u64, len))
            .unwrap();
        let overflowed = worker
            .requests
            .try_recv(|f| {
                assert_eq!(f.payload(), &pattern(len as u64, len)[..]);
                f.overflowed()
            })
            .unwrap()
            .unwrap();
        assert!(overflowed, "{len} bytes should overflow");
    }
}

#[test]
fn consumed_blocks_are_reused_so_the_area_does_not_grow() {
    let (mut host, mut worker) = small_lane();
    assert_eq!(host.requests.overflow_capacity(), 1024);
    for id in 0..200 {
        host.requests.try_send(env(id), &pattern(id, 700)).unwrap();
        expect_message(&mut worker, id, 700);
    }
    assert_eq!(host.requests.overflow_capacity(), 1024);
}

#[test]
fn the_area_grows_on_demand_up_to_its_maximum_then_reports_full() {
    let (mut host, mut worker) = small_lane();
    let mut sent = 0u64;
    let mut capacities = vec![host.requests.overflow_capacity()];
    loop {
        match host.requests.try_send(env(sent), &pattern(sent, 2048)) {
            Ok(()) => sent += 1,
            Err(TransportError::Full) => break,
            Err(e) => panic!("unexpected {e}"),
        }
        capacities.push(host.requests.overflow_capacity());
    }
    // 16 KiB maximum, 2 KiB blocks: 8 fit, and the span doubled on the way.
    assert_eq!(sent, 8);
    assert_eq!(*capacities.last().unwrap(), 16 * 1024);
    assert!(capacities
        .windows(2)
        .all(|w| w[1] == w[0] || w[1] == w[0] * 2));
    // Releasing one block makes room for exactly one more.
    expect_message(&mut worker, 0, 2048);
    host.requests
        .try_send(env(sent), &pattern(sent, 2048))
        .unwrap();
    assert!(matches!(
        host.requests.try_send(env(99), &pattern(99, 2048)),
        Err(TransportError::Full)
    ));
    for id in 1..=sent {
        expect_message(&mut worker, id, 2048);
    }
}

#[test]
fn oversized_payloads_are_refused_before_anything_is_written() {
    let (mut host, mut worker) = small_lane();
    let max = host.requests.max_message();
    assert_eq!(max, 2048);
    match host.requests.try_send(env(1), &vec![0u8; max + 1]) {
        Err(TransportError::TooLarge { len, max: m }) => {
            assert_eq!((len, m), (max + 1, max));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(!worker.requests.has_pending());
    // The lane is untouched: the next message gets the next sequence number.
    host.requests.try_send(env(2), &pattern(2, max)).unwrap();
    expect_message(&mut worker, 2, max);
}

#[test]
fn inline_and_overflow_messages_interleave_in_order() {
    let (mut host, mut worker) = small_lane();
    let sizes = [10usize, 1500, 0, 129, 128, 2000, 64];
    for _round in 0..20 {
        send_then_expect_all(&mut host, &mut worker, &sizes);
    }
}
