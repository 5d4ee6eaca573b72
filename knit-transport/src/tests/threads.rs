//! Two threads through one lane with parking forced (spin budget zero).

use super::*;

const MESSAGES: u64 = if cfg!(miri) { 60 } else { 20_000 };

#[test]
fn parked_ends_exchange_every_message_in_order() {
    let (mut host, mut worker) = small_lane();
    let echo = std::thread::spawn(move || {
        let mut next = 0u64;
        loop {
            let got = worker.requests.recv(|f| {
                let e = f.envelope();
                assert_eq!(e, env(e.call_id));
                assert!(f.payload() == pattern(e.call_id, f.payload().len()));
                (e.call_id, f.payload().len())
            });
            let Ok((id, len)) = got else { break };
            assert_eq!(id, next, "messages arrive in order");
            next += 1;
            worker.responses.send(env(id), &pattern(id, len)).unwrap();
        }
        next
    });
    // Requests run ahead of responses so both rings fill and both ends wait.
    let mut received = 0u64;
    for id in 0..MESSAGES {
        let len = (id as usize * 37) % 1500;
        host.requests.send(env(id), &pattern(id, len)).unwrap();
        while host.responses.has_pending() || id + 1 - received > 16 {
            let (rid, rlen) = host
                .responses
                .recv(|f| (f.envelope().call_id, f.payload().len()))
                .unwrap();
            assert_eq!(rid, received);
            assert_eq!(rlen, (rid as usize * 37) % 1500);
            received += 1;
        }
    }
    while received < MESSAGES {
        let rid = host.responses.recv(|f| f.envelope().call_id).unwrap();
        assert_eq!(rid, received);
        received += 1;
    }
    drop(host);
    assert_eq!(echo.join().unwrap(), MESSAGES);
}
