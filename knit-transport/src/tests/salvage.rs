//! Taking back unconsumed work from the producer's side.

use super::{env, pattern, small_lane};

/// Sends `count` messages starting at `first`, sizes cycling through inline and
/// overflow payloads.
fn send_run(host: &mut crate::HostEnd, first: u64, count: u64) {
    for id in first..first + count {
        let len = [0, 8, 100, 300][id as usize % 4];
        host.requests.send(env(id), &pattern(id, len)).unwrap();
    }
}

#[test]
fn salvage_sees_exactly_the_unconsumed_messages_in_order() {
    // Over several laps of the ring, so salvage starts at every kind of offset
    // (after pads and skips too).
    let (mut host, mut worker) = small_lane();
    let mut next = 0u64;
    for consumed in 0..12u64 {
        send_run(&mut host, next, 12);
        for _ in 0..consumed {
            let id = worker.requests.recv(|f| f.envelope().call_id).unwrap();
            assert_eq!(id, next);
            next += 1;
        }
        let mut seen = Vec::new();
        let n = host
            .requests
            .salvage(|f| {
                let id = f.envelope().call_id;
                assert_eq!(f.envelope(), env(id));
                assert_eq!(f.payload(), pattern(id, f.payload().len()));
                seen.push(id);
            })
            .unwrap();
        let expected: Vec<u64> = (next..next + 12 - consumed).collect();
        assert_eq!(seen, expected);
        assert_eq!(n, expected.len());
        // Salvage consumed nothing: the consumer still gets the rest.
        for _ in consumed..12 {
            let id = worker.requests.recv(|f| f.envelope().call_id).unwrap();
            assert_eq!(id, next);
            next += 1;
        }
    }
}

#[test]
fn salvage_of_an_empty_ring_finds_nothing() {
    let (mut host, _worker) = small_lane();
    assert_eq!(
        host.requests.salvage(|_| panic!("nothing to see")).unwrap(),
        0
    );
}

#[test]
fn salvage_after_the_consumer_is_gone_keeps_the_region_usable() {
    let (mut host, worker) = small_lane();
    send_run(&mut host, 0, 5);
    drop(worker);
    let mut seen = 0;
    host.requests.salvage(|_| seen += 1).unwrap();
    assert_eq!(seen, 5);
    // Salvaging twice reads the same frames again (nothing was consumed).
    host.requests.salvage(|_| seen += 1).unwrap();
    assert_eq!(seen, 10);
}
