//! The timers on a bare engine: firing order, arguments, clearing,
//! intervals, owners, failures, and an event loop of jobs and timers.

use std::time::{Duration, Instant};

use rquickjs::{Context, Runtime};

use super::Timers;

fn engine() -> (Runtime, Context, Timers) {
    let rt = Runtime::new().unwrap();
    let ctx = Context::full(&rt).unwrap();
    let timers = Timers::default();
    ctx.with(|ctx| timers.install(&ctx)).unwrap();
    (rt, ctx, timers)
}

fn eval<T: for<'js> rquickjs::FromJs<'js>>(ctx: &Context, src: &str) -> T {
    ctx.with(|ctx| ctx.eval::<T, _>(src)).unwrap()
}

/// Runs jobs and due timers until nothing is left (at most `limit`).
fn drive(rt: &Runtime, ctx: &Context, timers: &Timers, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        while rt.execute_pending_job().unwrap() {}
        let failures = ctx.with(|ctx| timers.fire_due(&ctx, Instant::now()).len());
        assert_eq!(failures, 0);
        if rt.is_job_pending() {
            continue;
        }
        match timers.next_deadline() {
            None => return,
            Some(at) => {
                assert!(Instant::now() < until, "the loop did not finish");
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
        }
    }
}

#[test]
fn timeouts_fire_in_deadline_order_with_their_arguments() {
    let (rt, ctx, timers) = engine();
    let ids: Vec<u32> = eval(
        &ctx,
        "globalThis.order = [];
         [setTimeout((a, b) => order.push(a + b), 20, 'late', '!'),
          setTimeout(() => order.push('soon'), 0),
          setTimeout(() => order.push('mid'), 10)]",
    );
    assert!(ids.iter().all(|&id| id != 0));
    assert_eq!(ids.len(), 3);
    assert_eq!(timers.len(), 3);
    drive(&rt, &ctx, &timers, Duration::from_secs(5));
    let order: Vec<String> = eval(&ctx, "order");
    assert_eq!(order, ["soon", "mid", "late!"]);
    assert_eq!(timers.len(), 0);
    timers.clear_all();
}

#[test]
fn cleared_timers_never_fire_and_intervals_repeat_until_cleared() {
    let (rt, ctx, timers) = engine();
    eval::<()>(
        &ctx,
        "globalThis.n = 0; globalThis.fired = false;
         clearTimeout(setTimeout(() => { fired = true; }, 0));
         clearTimeout(undefined); clearTimeout('x'); clearInterval(-1);
         const id = setInterval(() => { if (++n === 3) clearInterval(id); }, 1);",
    );
    drive(&rt, &ctx, &timers, Duration::from_secs(5));
    assert_eq!(eval::<i32>(&ctx, "n"), 3);
    assert!(!eval::<bool>(&ctx, "fired"));
    timers.clear_all();
}

#[test]
fn a_zero_delay_interval_fires_once_per_turn() {
    let (_rt, ctx, timers) = engine();
    eval::<()>(&ctx, "globalThis.n = 0; setInterval(() => n++, 0);");
    for turn in 1..=3 {
        let later = Instant::now() + Duration::from_millis(1);
        ctx.with(|ctx| assert!(timers.fire_due(&ctx, later).is_empty()));
        assert_eq!(eval::<i32>(&ctx, "n"), turn);
    }
    timers.clear_all();
}

#[test]
fn an_async_function_awaits_a_timer_and_many_overlap() {
    let (rt, ctx, timers) = engine();
    eval::<()>(
        &ctx,
        "globalThis.sleep = (ms) => new Promise(r => setTimeout(r, ms));
         globalThis.done = 0;
         for (let i = 0; i < 100; i++) (async () => { await sleep(i % 10); done++; })();
         queueMicrotask(() => { globalThis.micro = true; });",
    );
    drive(&rt, &ctx, &timers, Duration::from_secs(5));
    assert_eq!(eval::<i32>(&ctx, "done"), 100);
    assert!(eval::<bool>(&ctx, "micro"));
    timers.clear_all();
}

#[test]
fn a_throwing_callback_is_reported_with_its_owner_and_owners_clear_their_own() {
    let (_rt, ctx, timers) = engine();
    timers.set_owner(Some(7));
    eval::<()>(
        &ctx,
        "setTimeout(() => { throw new TypeError('boom'); }, 0);",
    );
    timers.set_owner(Some(8));
    eval::<()>(
        &ctx,
        "globalThis.eight = 0; setTimeout(() => eight++, 0); setTimeout(() => eight++, 0);",
    );
    timers.set_owner(None);
    assert_eq!(timers.clear_owned_by(8), 2);
    let later = Instant::now() + Duration::from_millis(1);
    ctx.with(|ctx| {
        let failures = timers.fire_due(&ctx, later);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].owner, Some(7));
        let message: String = failures[0]
            .thrown
            .as_object()
            .unwrap()
            .get("message")
            .unwrap();
        assert_eq!(message, "boom");
    });
    assert_eq!(eval::<i32>(&ctx, "eight"), 0);
    timers.clear_all();
}

#[test]
fn a_timer_set_by_a_timer_callback_belongs_to_the_same_owner() {
    let (_rt, ctx, timers) = engine();
    timers.set_owner(Some(3));
    eval::<()>(&ctx, "setTimeout(() => setTimeout(() => {}, 1000), 0);");
    timers.set_owner(None);
    let later = Instant::now() + Duration::from_millis(1);
    ctx.with(|ctx| assert!(timers.fire_due(&ctx, later).is_empty()));
    assert_eq!(timers.len(), 1);
    assert_eq!(timers.clear_owned_by(3), 1);
    timers.clear_all();
}

#[test]
fn pending_timers_are_dropped_before_the_runtime() {
    // A timer still set holds JS values; `clear_all` must free them, or
    // freeing the runtime aborts the process (QuickJS asserts on leaks).
    let (rt, ctx, timers) = engine();
    eval::<()>(
        &ctx,
        "setTimeout(() => {}, 60000, {big: 'x'.repeat(1000)}); setInterval(() => {}, 5);",
    );
    assert_eq!(timers.len(), 2);
    timers.clear_all();
    assert_eq!(timers.next_deadline(), None);
    drop(ctx);
    drop(rt);
}
