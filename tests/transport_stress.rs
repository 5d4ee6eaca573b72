//! A million messages each way through one lane, with random sizes from 0 B to
//! 1 MiB, every byte and the order checked, while every thread randomly sleeps
//! longer than the spin budget so that both ends park thousands of times.

use std::time::Duration;

use knit_transport::{lane, Envelope, LaneConfig};

const MESSAGES: u64 = 1_000_000;

/// splitmix64: a tiny, well-mixed generator so sizes and contents are reproducible.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Mostly small messages, some around the inline/overflow boundary, a few up to
/// 1 MiB: the full range is covered without moving terabytes.
fn size_of_message(id: u64, salt: u64) -> usize {
    let r = mix(id ^ salt);
    let pick = r % 1000;
    let span = match pick {
        0 => 1 << 20,         // 0.1%: up to 1 MiB (overflow area)
        1..=49 => 32 * 1024,  // 4.9%: up to 32 KiB (mostly overflow)
        50..=199 => 9 * 1024, // 15%: around the 8 KiB inline limit
        _ => 256,             // 80%: small inline messages
    };
    ((r >> 20) % (span as u64 + 1)) as usize
}

fn fill(buf: &mut Vec<u8>, id: u64, len: usize, salt: u64) {
    buf.clear();
    let mut chunk = 0u64;
    while buf.len() < len {
        let word = mix(id.wrapping_mul(0x1000_0000_01B3) ^ salt ^ chunk).to_le_bytes();
        let take = (len - buf.len()).min(8);
        buf.extend_from_slice(&word[..take]);
        chunk += 1;
    }
}

fn envelope(id: u64, salt: u64) -> Envelope {
    Envelope {
        call_id: id,
        task_id: mix(id ^ salt),
        flags: (id as u32) ^ (salt as u32),
    }
}

/// Sleeps 60-300 µs about once every 400 messages: past the 50 µs spin budget, so
/// the other end runs out of spinning and parks.
fn maybe_sleep(rng: &mut u64) {
    *rng = mix(*rng);
    if rng.is_multiple_of(400) {
        std::thread::sleep(Duration::from_micros(60 + (*rng >> 40) % 240));
    }
}

const REQUEST_SALT: u64 = 0x5EED_0001;
const RESPONSE_SALT: u64 = 0x5EED_0002;

#[test]
fn a_million_messages_each_way_arrive_whole_and_in_order() {
    let config = LaneConfig::default();
    assert_eq!(config.spin, Duration::from_micros(50));
    let (host, worker) = lane(&config).unwrap();
    let (mut requests, mut responses) = (host.requests, host.responses);

    let sender = std::thread::spawn(move || {
        let (mut rng, mut buf) = (1u64, Vec::new());
        for id in 0..MESSAGES {
            let len = size_of_message(id, REQUEST_SALT);
            fill(&mut buf, id, len, REQUEST_SALT);
            requests.send(envelope(id, REQUEST_SALT), &buf).unwrap();
            maybe_sleep(&mut rng);
        }
        (requests.park_count(), requests)
    });

    let echo = std::thread::spawn(move || {
        let mut worker = worker;
        let (mut rng, mut expected, mut reply) = (2u64, Vec::new(), Vec::new());
        for id in 0..MESSAGES {
            let len = size_of_message(id, REQUEST_SALT);
            fill(&mut expected, id, len, REQUEST_SALT);
            worker
                .requests
                .recv(|f| {
                    assert_eq!(
                        f.envelope(),
                        envelope(id, REQUEST_SALT),
                        "request {id} out of order"
                    );
                    assert!(f.payload() == &expected[..], "request {id} payload differs");
                })
                .unwrap();
            let reply_len = size_of_message(id, RESPONSE_SALT);
            fill(&mut reply, id, reply_len, RESPONSE_SALT);
            worker
                .responses
                .send(envelope(id, RESPONSE_SALT), &reply)
                .unwrap();
            maybe_sleep(&mut rng);
        }
        (
            worker.requests.park_count(),
            worker.responses.park_count(),
            worker,
        )
    });

    let (mut rng, mut expected) = (3u64, Vec::new());
    let mut overflowed = 0u64;
    for id in 0..MESSAGES {
        let len = size_of_message(id, RESPONSE_SALT);
        fill(&mut expected, id, len, RESPONSE_SALT);
        responses
            .recv(|f| {
                assert_eq!(
                    f.envelope(),
                    envelope(id, RESPONSE_SALT),
                    "response {id} out of order"
                );
                assert!(
                    f.payload() == &expected[..],
                    "response {id} payload differs"
                );
                overflowed += f.overflowed() as u64;
            })
            .unwrap();
        maybe_sleep(&mut rng);
    }
    let (request_send_parks, requests) = sender.join().unwrap();
    let (request_recv_parks, response_send_parks, worker) = echo.join().unwrap();
    let response_recv_parks = responses.park_count();
    let parks = [
        request_send_parks,
        request_recv_parks,
        response_send_parks,
        response_recv_parks,
    ];
    println!("parks (request send/recv, response send/recv): {parks:?}; overflowed responses: {overflowed}");
    assert!(overflowed > 1000, "the overflow path was exercised");
    assert!(
        parks.iter().sum::<u64>() >= 1000,
        "the park path was exercised: {parks:?}"
    );
    drop((requests, responses, worker));
}
