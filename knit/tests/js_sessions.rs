//! JS sessions and per-worker contexts: a session keeps its state on its one worker, apart from other sessions and pool.eval; the bootstrap ran on every worker.
#![cfg(feature = "js")]

use std::collections::BTreeSet;

use knit::js::{JsModule, JsOptions};
use knit::{create_pool, Call, CallError, InlinePosition, Inliner, Pool, PoolOptions, TaskCx};

/// The lane the calling JS runs on (a host function).
#[knit::task]
fn lane_here(cx: &TaskCx) -> usize {
    cx.lane_id()
}

const BOOTSTRAP: &str = r#"
globalThis.booted = "yes";
globalThis.evals = 0;
globalThis.sleep = (ms) => new Promise((r) => setTimeout(r, ms));
"#;

fn pool_with(threads: usize, inliner: Option<Inliner>) -> Pool {
    create_pool(PoolOptions {
        threads,
        inliner,
        js: Some(JsOptions {
            modules: vec![JsModule::source(
                "m",
                "import { lane_here } from 'knit:host';\n\
                 export const lane = () => lane_here();\n\
                 export const twice = (x) => 2 * x;",
            )],
            bootstrap: Some(BOOTSTRAP.into()),
            expose: vec!["lane_here".into()],
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap()
}

/// A script that says which lane it runs on.
const WHERE: &str = "(await import('knit:host')).lane_here()";

#[test]
fn a_session_keeps_its_state_on_its_lane() {
    let pool = pool_with(2, None);
    let session = pool.session().unwrap();
    let lane = session.lane();
    assert!(lane < 2, "{lane}");
    session
        .eval::<()>("globalThis.n = 0; var total = 100;")
        .wait()
        .unwrap();
    for i in 1..=20 {
        let n: i64 = session.eval("++n").wait().unwrap();
        assert_eq!(n, i);
        let here: usize = session.eval(WHERE).wait().unwrap();
        assert_eq!(here, lane, "a session's eval ran off its lane");
    }
    // `var` and function declarations at the top level stay too, and
    // top-level await works in a session.
    session
        .eval::<()>("function bump(k) { total += k; }")
        .wait()
        .unwrap();
    let t: i64 = session
        .eval("await sleep(5); bump(5); total")
        .wait()
        .unwrap();
    assert_eq!(t, 105);
    // It sees the bootstrap's globals and can import registered modules.
    let b: String = session.eval("booted").wait().unwrap();
    assert_eq!(b, "yes");
    let four: i64 = session.eval("(await import('m')).twice(2)").wait().unwrap();
    assert_eq!(four, 4);
    // Its errors are its calls' errors, and it goes on after them.
    let e: Result<(), CallError> = session.eval("throw new Error('in session')").wait();
    assert!(
        matches!(e, Err(CallError::Js(ref j)) if j.message == "in session"),
        "{e:?}"
    );
    let n: i64 = session.eval("n").wait().unwrap();
    assert_eq!(n, 20);
}

#[test]
fn session_globals_are_invisible_elsewhere() {
    let pool = pool_with(2, None);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    a.eval::<()>("globalThis.secret = 'a'; booted = 'changed by a';")
        .wait()
        .unwrap();
    b.eval::<()>("globalThis.secret = 'b'").wait().unwrap();
    let sa: String = a.eval("secret").wait().unwrap();
    let sb: String = b.eval("secret").wait().unwrap();
    assert_eq!((sa.as_str(), sb.as_str()), ("a", "b"));
    // A new session on the same lane starts fresh.
    let c = pool.session().unwrap();
    let seen: (String, String) = c.eval("[typeof secret, booted]").wait().unwrap();
    assert_eq!(seen, ("undefined".to_string(), "yes".to_string()));
    // pool.eval runs in each worker's own context, which never saw them.
    let calls: Vec<Call<(String, String)>> =
        pool.eval_batch((0..8).map(|_| "[typeof secret, booted]"));
    for call in calls {
        assert_eq!(
            call.wait().unwrap(),
            ("undefined".to_string(), "yes".to_string())
        );
    }
    // And a global pool.eval sets is not in a session either.
    for _ in 0..4 {
        pool.eval::<()>("globalThis.fromPool = 1").wait().unwrap();
    }
    let t: String = a.eval("typeof fromPool").wait().unwrap();
    assert_eq!(t, "undefined");
}

#[test]
fn the_bootstrap_ran_on_every_worker() {
    let pool = pool_with(3, None);
    // Round robin spreads the evals over all three workers; each counts its
    // own evals in the global the bootstrap made.
    let calls: Vec<Call<(String, usize, u32)>> =
        pool.eval_batch((0..30).map(|_| format!("[booted, {WHERE}, ++globalThis.evals]")));
    let mut lanes = BTreeSet::new();
    let mut per_lane = [0u32; 3];
    for call in calls {
        let (booted, lane, count) = call.wait().unwrap();
        assert_eq!(booted, "yes");
        lanes.insert(lane);
        per_lane[lane] += 1;
        assert_eq!(count, per_lane[lane], "lane {lane}'s counter is its own");
    }
    assert_eq!(lanes, BTreeSet::from([0, 1, 2]));
    // Every lane's export calls see the same modules.
    let stats = pool.stats();
    assert!(
        stats.lanes.iter().all(|l| l.js_calls >= 1),
        "{:?}",
        stats.lanes
    );
}

#[test]
fn sessions_spread_over_lanes_and_name_theirs() {
    let pool = pool_with(2, None);
    // A session goes to the least busy worker: keep lane 0's busy.
    let first = pool.session().unwrap();
    let busy: Call<()> = first.eval("await sleep(300)");
    let second = pool.session().unwrap();
    assert_ne!(first.lane(), second.lane());
    for s in [&first, &second] {
        let here: usize = s.eval(WHERE).wait().unwrap();
        assert_eq!(here, s.lane());
    }
    busy.wait().unwrap();
}

#[test]
fn session_lane_uses_the_balancers_numbering_with_an_inline_lane() {
    // The inline lane comes first, so workers are lanes 1 and 2.
    let pool = pool_with(
        2,
        Some(Inliner {
            position: InlinePosition::First,
            ..Default::default()
        }),
    );
    let session = pool.session().unwrap();
    let here: usize = session.eval(WHERE).wait().unwrap();
    assert_eq!(here, session.lane());
    assert!(session.lane() >= 1, "{}", session.lane());
}

#[test]
fn many_sessions_come_and_go() {
    let pool = pool_with(1, None);
    for i in 0..50 {
        let s = pool.session().unwrap();
        let v: usize = s
            .eval(format!(
                "globalThis.big = 'x'.repeat(100000); big.length + {i}"
            ))
            .wait()
            .unwrap();
        assert_eq!(v, 100_000 + i);
    }
    // The worker still answers, and its engine's memory did not keep 50
    // contexts with 100 kB strings each (5 MB).
    let v: i64 = pool.eval("1").wait().unwrap();
    assert_eq!(v, 1);
    let mem = pool.stats().lanes[0].js_memory_bytes;
    assert!(
        mem < 5_000_000,
        "{mem} bytes after the sessions were dropped"
    );
}

#[test]
fn no_session_on_a_closed_pool() {
    let pool = pool_with(1, None);
    let s = pool.session().unwrap();
    pool.shutdown();
    assert!(matches!(pool.session(), Err(CallError::Closed)));
    let r: Result<i64, CallError> = s.eval("1").wait();
    assert_eq!(r, Err(CallError::Closed));
}
