//! Strict calls and their pristine engines: grants hold per call whether the call's engine was the spare built ahead (host functions installed before its call was known) or one built for it in a burst; no state passes from call to call; a stack overflow the script catches is still the call's stack limit.
#![cfg(feature = "js")]

use knit::js::{JsOptions, Limits};
use knit::{create_pool, Call, CallError, LimitKind, Pool, PoolOptions};

#[knit::task]
fn double(x: i64) -> i64 {
    2 * x
}

#[knit::task]
fn negate(x: i64) -> i64 {
    -x
}

const USES_HOST: &str = r#"
import { double, negate } from "knit:host";
export default (x) => double(x);
export const neg = (x) => negate(x);
"#;

fn pool() -> Pool {
    create_pool(PoolOptions {
        threads: 1,
        js: Some(JsOptions {
            expose: vec!["double".into(), "negate".into()],
            ..JsOptions::default()
        }),
        ..PoolOptions::default()
    })
    .expect("a pool with JS")
}

/// The message of a call's JS error.
fn js_message<T: std::fmt::Debug>(r: Result<T, CallError>) -> String {
    match r {
        Err(CallError::Js(e)) => format!("{}: {}", e.name, e.message),
        other => panic!("expected a JS error, got {other:?}"),
    }
}

#[test]
fn grants_hold_per_call_one_at_a_time_and_in_bursts() {
    let pool = pool();
    let none = pool
        .untrusted(USES_HOST, Limits::default())
        .expect("compiles");
    let double = none.with_grants(["double"]).expect("double is exposed");
    let both = none
        .with_grants(["double", "negate"])
        .expect("both are exposed");
    for _ in 0..3 {
        // One at a time: each call gets the spare built while idle.
        assert_eq!(double.call::<_, i64>(21).wait().expect("granted"), 42);
        let refused = js_message(none.call::<_, i64>(21).wait());
        assert!(
            refused.contains("TypeError") && refused.contains("not granted"),
            "{refused}"
        );
        let refused = js_message(double.export("neg").call::<_, i64>(5).wait());
        assert!(refused.contains("not granted"), "{refused}");
        assert_eq!(
            both.export("neg")
                .call::<_, i64>(5)
                .wait()
                .expect("granted"),
            -5
        );
    }
    // In a burst: most calls find no spare and get an engine of their own.
    let calls: Vec<(usize, Call<i64>)> = (0..60)
        .map(|i| match i % 3 {
            0 => (0, none.call(i as i64)),
            1 => (1, double.call(i as i64)),
            _ => (2, both.export("neg").call(i as i64)),
        })
        .collect();
    for (i, (kind, call)) in calls.into_iter().enumerate() {
        let r = call.wait();
        match kind {
            0 => assert!(js_message(r).contains("not granted")),
            1 => assert_eq!(r.expect("granted"), 2 * i as i64),
            _ => assert_eq!(r.expect("granted"), -(i as i64)),
        }
    }
    pool.shutdown();
}

#[test]
fn no_state_passes_from_call_to_call() {
    let pool = pool();
    let counter = pool
        .untrusted(
            "export default () => (globalThis.n = (globalThis.n ?? 0) + 1);",
            Limits::default(),
        )
        .expect("compiles");
    for _ in 0..5 {
        assert_eq!(counter.apply::<_, i64>(()).wait().expect("a call"), 1);
    }
    let burst: Vec<Call<i64>> = (0..40).map(|_| counter.apply(())).collect();
    for c in burst {
        assert_eq!(c.wait().expect("a call"), 1);
    }
    pool.shutdown();
}

#[test]
fn a_caught_stack_overflow_is_still_the_stack_limit() {
    let pool = pool();
    let deep = pool
        .untrusted(
            "const f = (n) => f(n + 1) + 1; \
             export default () => { try { return f(0); } catch (e) { return -1; } };",
            Limits {
                stack_bytes: 64 << 10,
                ..Limits::default()
            },
        )
        .expect("compiles");
    for _ in 0..3 {
        let e = deep.apply::<_, i64>(()).wait().unwrap_err();
        assert!(
            matches!(
                e,
                CallError::Limit {
                    kind: LimitKind::Stack,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // And the worker goes on.
    let ok = pool
        .untrusted("export default (x) => x + 1;", Limits::default())
        .expect("compiles");
    assert_eq!(ok.call::<_, i64>(1).wait().expect("a call"), 2);
    pool.shutdown();
}

/// One `Script` serves many threads: it is `Send + Sync` and cheap to
/// clone, and clones called from several threads at once all get their own
/// pristine engine and the right answer.
#[test]
fn a_script_is_shared_by_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<knit::Script>();
    shareable::<knit::ScriptExport>();
    let pool = create_pool(PoolOptions {
        threads: 2,
        js: Some(JsOptions::default()),
        ..Default::default()
    })
    .unwrap();
    let script = pool
        .untrusted(
            "let calls = 0; export default (x) => { calls += 1; return [x * 2, calls]; };",
            Limits::default(),
        )
        .unwrap();
    let threads: Vec<_> = (0..4i64)
        .map(|t| {
            let script = script.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let x = t * 100 + i;
                    let got: (i64, i64) = script.call(x).wait().unwrap();
                    // Module state starts over with every call.
                    assert_eq!(got, (x * 2, 1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
