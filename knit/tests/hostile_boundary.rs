//! The boundary of strict mode on threads: a builtin that never polls the interrupt handler is abandoned (the caller times out, `hard_timeout` replaces the lane) and the pool goes on serving.
#![cfg(feature = "js")]

use std::time::{Duration, Instant};

use knit::js::Limits;
use knit::CallError;

#[test]
fn a_builtin_that_never_polls_is_abandoned_and_its_lane_replaced() {
    let pool = knit::create_pool(knit::PoolOptions {
        threads: 1,
        hard_timeout: Some(Duration::from_millis(200)),
        js: Some(Default::default()),
        ..Default::default()
    })
    .unwrap();
    let limits = Limits {
        cpu: Duration::from_millis(50),
        wall: Duration::from_millis(100),
        ..Limits::default()
    };
    // A join over a huge array-like object: minutes of work in one C call
    // that neither polls the interrupt handler nor allocates.
    let stuck = pool
        .untrusted(
            "export default () => Array.prototype.join.call({ length: 2 ** 31 }, '');",
            limits,
        )
        .unwrap();
    let started = Instant::now();
    let e = stuck.apply::<_, String>(()).wait().unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e, CallError::Timeout);
    // The caller gave up one second past the wall budget, not minutes later.
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // The lane was replaced: the pool serves the next call.
    let ok = pool
        .untrusted("export default (x) => x * 3;", Limits::default())
        .unwrap();
    let mut answer = None;
    let give_up = Instant::now() + Duration::from_secs(30);
    while Instant::now() < give_up {
        match ok.call::<_, i64>(14).wait() {
            Ok(v) => {
                answer = Some(v);
                break;
            }
            Err(CallError::WorkerLost | CallError::Timeout) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(answer, Some(42));
}
