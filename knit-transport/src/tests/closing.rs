use super::*;
use crate::{LaneRegion, TransportError, WaitOutcome};

#[test]
fn a_closed_lane_refuses_sends_but_delivers_what_was_published() {
    let (mut host, mut worker) = small_lane();
    host.requests.try_send(env(1), &pattern(1, 3)).unwrap();
    host.requests.try_send(env(2), &pattern(2, 300)).unwrap();
    host.requests.region().close();
    assert!(matches!(
        host.requests.try_send(env(3), b"x"),
        Err(TransportError::Closed)
    ));
    expect_message(&mut worker, 1, 3);
    expect_message(&mut worker, 2, 300);
    assert!(matches!(
        worker.requests.try_recv(|_| ()),
        Err(TransportError::Closed)
    ));
    assert!(matches!(
        worker.requests.recv(|_| ()),
        Err(TransportError::Closed)
    ));
}

#[test]
fn dropping_an_end_closes_the_lane() {
    let (host, mut worker) = small_lane();
    drop(host);
    assert!(worker.requests.region().is_closed());
    assert!(matches!(
        worker.responses.try_send(env(1), b"late"),
        Err(TransportError::Closed)
    ));
}

#[test]
fn each_end_can_be_taken_once() {
    let region = LaneRegion::anonymous(&small_config()).unwrap();
    let _host = region.host_end().unwrap();
    assert!(matches!(
        region.host_end(),
        Err(TransportError::AlreadyClaimed("host"))
    ));
    let _worker = region.worker_end().unwrap();
    assert!(matches!(
        region.worker_end(),
        Err(TransportError::AlreadyClaimed("worker"))
    ));
}

#[test]
fn a_receive_with_a_deadline_times_out_when_nothing_comes() {
    let (_host, mut worker) = small_lane();
    let deadline = std::time::Instant::now() + Duration::from_millis(2);
    assert_eq!(
        worker
            .requests
            .recv_deadline(Some(deadline), |_| ())
            .unwrap(),
        None
    );
    assert_eq!(worker.requests.wait(Some(deadline)), WaitOutcome::TimedOut);
}

#[test]
fn closing_wakes_a_parked_receiver() {
    let (host, mut worker) = small_lane();
    let waiter = std::thread::spawn(move || worker.requests.recv(|_| ()));
    // Whether the close lands before or after the receiver parks, it must return.
    std::thread::sleep(Duration::from_millis(5));
    host.requests.region().close();
    assert!(matches!(
        waiter.join().unwrap(),
        Err(TransportError::Closed)
    ));
}

#[test]
fn closing_wakes_a_sender_waiting_for_room() {
    let (mut host, worker) = small_lane();
    while host.requests.try_send(env(0), &[0; 100]).is_ok() {}
    let region = worker.requests.region().clone();
    let sender = std::thread::spawn(move || host.requests.send(env(1), &[1; 100]));
    std::thread::sleep(Duration::from_millis(5));
    region.close();
    assert!(matches!(
        sender.join().unwrap(),
        Err(TransportError::Closed)
    ));
    drop(worker);
}

#[test]
fn invalid_configs_are_refused() {
    let bad = [
        LaneConfig {
            ring_bytes: 1000,
            ..small_config()
        },
        LaneConfig {
            ring_bytes: 512,
            ..small_config()
        },
        LaneConfig {
            inline_max_bytes: 1024,
            ..small_config()
        },
        LaneConfig {
            overflow_max_bytes: 100,
            ..small_config()
        },
        LaneConfig {
            overflow_initial_bytes: 0,
            ..small_config()
        },
        LaneConfig {
            max_message_bytes: Some(1 << 20),
            ..small_config()
        },
    ];
    for config in bad {
        assert!(matches!(
            LaneRegion::anonymous(&config),
            Err(TransportError::InvalidConfig(_))
        ));
    }
}

/// A second mapping of the same file sees the same lane: offsets, not pointers,
/// and process-shared futexes (a private futex would not wake across mappings).
#[test]
#[cfg_attr(miri, ignore = "file mappings and raw futex syscalls are outside Miri")]
#[cfg(target_os = "linux")]
fn a_file_backed_region_works_through_a_second_mapping() {
    let file = tempfile::tempfile().unwrap();
    let created = LaneRegion::create_in(&file, &small_config()).unwrap();
    let opened = LaneRegion::open(&file).unwrap();
    assert_eq!(opened.config().ring_bytes, 1024);
    let mut host = created.host_end().unwrap();
    // The claim is in the shared header, so the other mapping sees it.
    assert!(matches!(
        opened.host_end(),
        Err(TransportError::AlreadyClaimed("host"))
    ));
    let mut worker = opened.worker_end().unwrap();
    let echo = std::thread::spawn(move || {
        let mut served = 0;
        while let Ok((e, bytes)) = worker
            .requests
            .recv(|f| (f.envelope(), f.payload().to_vec()))
        {
            worker.responses.send(e, &bytes).unwrap();
            served += 1;
        }
        served
    });
    for id in 0..200u64 {
        let len = [0usize, 17, 700, 2048][id as usize % 4];
        host.requests.send(env(id), &pattern(id, len)).unwrap();
        let (e, bytes) = host
            .responses
            .recv(|f| (f.envelope(), f.payload().to_vec()))
            .unwrap();
        assert_eq!(e, env(id));
        assert!(bytes == pattern(id, len));
    }
    drop(host);
    assert_eq!(echo.join().unwrap(), 200);
}

#[test]
#[cfg_attr(miri, ignore = "file mappings are outside Miri")]
fn opening_a_file_that_is_not_a_region_fails_cleanly() {
    use std::io::Write;
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&[0u8; 8192]).unwrap();
    assert!(matches!(
        LaneRegion::open(&file),
        Err(TransportError::BadRegion("bad magic"))
    ));
}
