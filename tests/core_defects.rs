//! Defects found by hostile and careless use of the core pool, one
//! regression test (or a few) each: every one of these failed before its fix.

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use knit::{
    create_pool, Balancer, Call, CallError, Caller, Inliner, PayloadError, Pool, PoolOptions,
    QueuePolicy,
};
use serde::{Deserialize, Serialize, Serializer};

#[knit::task]
fn take_u64(x: u64) -> u64 {
    x
}

#[knit::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Waits until `done` holds (a liveness bound, not a timing claim).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn drained(pool: &Pool) {
    eventually("the pool never drained", || pool.stats().in_flight == 0);
}

// --- 1. A panicking `Serialize` gives back everything its call took. ---

/// Serializes fine when sized, panics when written.
struct PanicsWhenWritten(Cell<u32>);

impl Serialize for PanicsWhenWritten {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let passes = self.0.get();
        self.0.set(passes + 1);
        if passes >= 1 {
            panic!("PanicsWhenWritten: panicking while writing, as asked");
        }
        s.serialize_u64(7)
    }
}

fn panicking_arguments_leave_nothing_behind(options: PoolOptions, fill_queue: bool) {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        max_in_flight: 8,
        ..options
    })
    .unwrap();
    // With `QueuePolicy::Wait` and the queue full, the argument is encoded
    // right away, to be sent once there is room.
    let blockers: Vec<_> = if fill_queue {
        (0..4).map(|_| pool.call.nap(100)).collect()
    } else {
        Vec::new()
    };
    // More panics than the pool has slots or queue places.
    for i in 0..24 {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let arg = PanicsWhenWritten(Cell::new(0));
            pool.call.by_name::<_, u64>("take_u64", &arg).wait()
        }));
        match r {
            Ok(Err(CallError::Payload(PayloadError::Encode(why)))) => {
                assert!(why.contains("Serialize"), "call {i}: {why}")
            }
            other => panic!("call {i}: {other:?}"),
        }
    }
    for c in blockers {
        assert_eq!(c.wait(), Ok(100));
    }
    for i in 0..20u64 {
        assert_eq!(
            pool.call.take_u64(i).wait(),
            Ok(i),
            "a normal call after the panics"
        );
    }
    drained(&pool);
    assert_eq!(pool.stats().failed.payload, 24);
}

#[test]
fn a_panicking_serialize_on_a_worker_lane_gives_back_its_slot_and_place() {
    let queue = PoolOptions {
        max_queue: Some(4),
        ..PoolOptions::default()
    };
    panicking_arguments_leave_nothing_behind(queue, false);
}

#[test]
fn a_panicking_serialize_on_the_inline_lane_gives_back_its_slot() {
    let inline = PoolOptions {
        inliner: Some(Inliner {
            dispatch_threshold: 0,
            ..Inliner::default()
        }),
        max_queue: Some(4),
        ..PoolOptions::default()
    };
    panicking_arguments_leave_nothing_behind(inline, false);
}

#[test]
fn a_panicking_serialize_on_the_shared_queue_gives_back_its_slot() {
    let shared = PoolOptions {
        balancer: Balancer::Shared,
        max_queue: Some(4),
        ..PoolOptions::default()
    };
    panicking_arguments_leave_nothing_behind(shared, false);
}

#[test]
fn a_panicking_serialize_waiting_for_room_takes_no_place() {
    let waiting = PoolOptions {
        max_queue: Some(4),
        queue_policy: QueuePolicy::Wait,
        ..PoolOptions::default()
    };
    panicking_arguments_leave_nothing_behind(waiting, true);
}

// --- 2. A deeply nested value is a payload error, never a stack overflow. ---

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Nest {
    Leaf,
    Node(Box<Nest>),
}

impl Nest {
    fn deep(levels: u32) -> Nest {
        (0..levels).fold(Nest::Leaf, |inner, _| Nest::Node(Box::new(inner)))
    }

    fn depth(&self) -> u32 {
        let (mut n, mut at) = (0, self);
        while let Nest::Node(inner) = at {
            n += 1;
            at = inner;
        }
        n
    }
}

/// Dropped link by link: the derived drop of a 100,000-deep chain would
/// overflow the stack by itself.
impl Drop for Nest {
    fn drop(&mut self) {
        let Nest::Node(first) = self else { return };
        let mut next = std::mem::replace(first, Box::new(Nest::Leaf));
        // Each link is unhooked from its child before it is dropped.
        while let Nest::Node(child) = &mut *next {
            let child = std::mem::replace(child, Box::new(Nest::Leaf));
            next = child;
        }
    }
}

#[knit::task]
fn nest_depth(n: Nest) -> u32 {
    n.depth()
}

#[knit::task]
fn make_nest(levels: u32) -> Nest {
    Nest::deep(levels)
}

/// The bytes of a `Nest` `levels` deep (bincode's enum tags: a u32 each),
/// written as a flat tuple so the sender itself nests nothing.
struct NestBytes(u32);

impl Serialize for NestBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0 as usize + 1)?;
        for _ in 0..self.0 {
            t.serialize_element(&1u32)?;
        }
        t.serialize_element(&0u32)?;
        t.end()
    }
}

fn is_depth_error(why: &str) -> bool {
    why.contains(&format!("nested deeper than {} levels", knit::MAX_DEPTH))
}

#[test]
fn deeply_nested_arguments_and_results_are_payload_errors() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        ..PoolOptions::default()
    })
    .unwrap();
    let depth = knit::MAX_DEPTH as u32;
    // At the limit, both ways.
    assert_eq!(pool.call.nest_depth(Nest::deep(depth)).wait(), Ok(depth));
    assert_eq!(
        pool.call.make_nest(depth).wait().map(|n| n.depth()),
        Ok(depth)
    );
    // 20,000 deep, arriving at the worker from a sender that did not check.
    match pool
        .call
        .by_name::<_, u32>("nest_depth", &NestBytes(20_000))
        .wait()
    {
        Err(CallError::Payload(PayloadError::Decode(why))) => {
            assert!(is_depth_error(&why), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // 100,000 deep as a result: the worker refuses to encode it.
    match pool.call.make_nest(100_000).wait() {
        Err(CallError::Payload(PayloadError::Encode(why))) => {
            assert!(is_depth_error(&why), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // 100,000 deep as an argument: the caller refuses to encode it.
    match pool.call.nest_depth(Nest::deep(100_000)).wait() {
        Err(CallError::Payload(PayloadError::Encode(why))) => {
            assert!(is_depth_error(&why), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // One past the limit fails too; the worker is still serving.
    assert!(matches!(
        pool.call.nest_depth(Nest::deep(depth + 1)).wait(),
        Err(CallError::Payload(PayloadError::Encode(_)))
    ));
    assert_eq!(pool.call.take_u64(3).wait(), Ok(3));
}

// --- 3. With an inline lane, `wait_for` and `poll` keep to their limits. ---

/// Runs of `counted_nap` on threads that are not workers, by tag (each test
/// its own tag: tests run side by side).
static RAN_ON_CALLERS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn ran_on_callers(tag: u64) -> usize {
    RAN_ON_CALLERS
        .lock()
        .unwrap()
        .iter()
        .filter(|&&t| t == tag)
        .count()
}

#[knit::task]
fn counted_nap(tag_ms: (u64, u64)) -> u64 {
    let on_worker = std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("knit-worker"));
    if !on_worker {
        RAN_ON_CALLERS.lock().unwrap().push(tag_ms.0);
    }
    std::thread::sleep(Duration::from_millis(tag_ms.1));
    tag_ms.1
}

fn inline_pool(batch_size: usize) -> Pool {
    create_pool(PoolOptions {
        threads: 1,
        pin: false,
        inliner: Some(Inliner {
            dispatch_threshold: 0,
            batch_size,
            ..Inliner::default()
        }),
        ..PoolOptions::default()
    })
    .unwrap()
}

#[test]
fn wait_for_starts_no_inline_call_once_its_limit_has_passed() {
    for (tag, batch_size) in [(1, 1), (2, 4)] {
        let pool = inline_pool(batch_size);
        // Round robin over the worker lane and the inline lane: about half
        // of these queue on the inline lane, ahead of the last call.
        let ahead: Vec<_> = (0..20).map(|_| pool.call.counted_nap((tag, 30))).collect();
        let last = pool.call.counted_nap((tag, 30));
        let last = match last.wait_for(Duration::from_millis(1)) {
            Err(still) => still,
            Ok(r) => panic!("settled within 1 ms: {r:?}"),
        };
        // Each inline call takes 30 ms, far past the 1 ms limit: once the
        // first had started, no other may (whatever the batch size).
        let ran = ran_on_callers(tag);
        assert!(
            ran <= 1,
            "wait_for(1 ms) ran {ran} inline calls (batch {batch_size})"
        );
        assert_eq!(last.wait(), Ok(30));
        for c in ahead {
            assert_eq!(c.wait(), Ok(30));
        }
    }
}

#[test]
fn polling_an_inline_call_never_runs_a_task_on_the_polling_thread() {
    let tag = 3;
    let pool = inline_pool(1);
    let mut calls: Vec<Call<u64>> = (0..10).map(|_| pool.call.counted_nap((tag, 5))).collect();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for c in &mut calls {
        // One poll each: an inline call moves to the worker instead of running here.
        if let Poll::Ready(r) = std::pin::Pin::new(c).poll(&mut cx) {
            panic!("settled at its first poll: {r:?}");
        }
    }
    assert_eq!(ran_on_callers(tag), 0, "a poll ran a task");
    for c in calls {
        assert_eq!(futures::executor::block_on(c), Ok(5));
    }
    assert_eq!(ran_on_callers(tag), 0, "an await ran a task");
}

// --- 4. With an inline lane, dropped calls still run. ---

static DROPPED_RAN: AtomicU64 = AtomicU64::new(0);

#[knit::task]
fn count_dropped(_: u64) {
    DROPPED_RAN.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn dropped_inline_calls_run_and_give_back_their_slots() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        max_in_flight: 12_000,
        inliner: Some(Inliner {
            dispatch_threshold: 1,
            ..Inliner::default()
        }),
        ..PoolOptions::default()
    })
    .unwrap();
    for i in 0..10_000 {
        drop(pool.call.count_dropped(i));
    }
    eventually("dropped calls never ran", || {
        DROPPED_RAN.load(Ordering::SeqCst) == 10_000
    });
    drained(&pool);
    // Every slot is back: a full table's worth of calls is accepted again.
    let calls: Vec<_> = (0..12_000).map(|i| pool.call.take_u64(i)).collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.wait(), Ok(i as u64));
    }
}

// --- 6. A task waiting for its own pool never hangs. ---

static NESTED: OnceLock<Caller> = OnceLock::new();

fn nested() -> &'static Caller {
    NESTED.get().expect("the nested pool is made first")
}

fn nested_pool() -> &'static Caller {
    NESTED.get_or_init(|| {
        let pool = create_pool(PoolOptions {
            threads: 1,
            pin: false,
            ..PoolOptions::default()
        })
        .unwrap();
        let caller = pool.call.clone();
        // The pool lives for the whole test binary.
        std::mem::forget(pool);
        caller
    })
}

#[knit::task]
fn plus_one_via_pool(x: u64) -> Result<u64, String> {
    nested()
        .take_u64(x)
        .wait()
        .map(|v| v + 1)
        .map_err(|e| e.to_string())
}

#[knit::task]
fn depth_first(depth: u32) -> Result<u32, String> {
    if depth == 0 {
        return Ok(0);
    }
    let below = nested()
        .depth_first(depth - 1)
        .wait()
        .map_err(|e| e.to_string())?;
    Ok(below + 1)
}

#[knit::task]
fn fan_out(n: u64) -> Result<u64, String> {
    let calls: Vec<_> = (0..n).map(|i| nested().take_u64(i)).collect();
    let mut sum = 0;
    for c in calls {
        sum += c.wait().map_err(|e| e.to_string())?;
    }
    Ok(sum)
}

#[knit::task]
async fn awaits_the_pool(x: u64) -> Result<u64, String> {
    let v = nested().take_u64(x).await.map_err(|e| e.to_string())?;
    Ok(v * 2)
}

#[test]
fn a_task_on_a_one_worker_pool_waits_for_the_tasks_it_calls() {
    let call = nested_pool();
    assert_eq!(call.plus_one_via_pool(41).wait(), Ok(42));
    assert_eq!(call.depth_first(50).wait(), Ok(50));
    assert_eq!(call.fan_out(100).wait(), Ok(4950));
    // More calls than the worker's own ring holds: those that find it full
    // run at once where they are made, instead of waiting for the ring.
    assert_eq!(call.fan_out(5000).wait(), Ok(5000 * 4999 / 2));
    assert_eq!(call.awaits_the_pool(21).wait(), Ok(42));
}

/// A call made outside the pool, handed to a task through a global.
static HANDED_IN: Mutex<Option<Call<u64>>> = Mutex::new(None);

#[knit::task]
fn waits_for_a_handed_in_call() -> String {
    let call = loop {
        if let Some(c) = HANDED_IN.lock().unwrap().take() {
            break c;
        }
        std::thread::yield_now();
    };
    format!("{:?}", call.wait())
}

#[test]
fn a_task_waiting_for_a_call_queued_behind_it_fails_at_once() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        ..PoolOptions::default()
    })
    .unwrap();
    let waiter = pool.call.waits_for_a_handed_in_call();
    // Queued on the only lane, behind the task that will wait for it.
    let behind = pool.call.take_u64(9);
    *HANDED_IN.lock().unwrap() = Some(behind);
    assert_eq!(
        waiter.wait(),
        Ok(format!("{:?}", Err::<u64, _>(CallError::WouldDeadlock)))
    );
    assert_eq!(
        pool.call.take_u64(1).wait(),
        Ok(1),
        "the lane keeps serving"
    );
    drained(&pool);
}

// --- Cancel handles wake what waits for room. ---

#[test]
fn cancelling_a_call_waiting_for_room_wakes_its_waiter() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        max_queue: Some(1),
        queue_policy: QueuePolicy::Wait,
        ..PoolOptions::default()
    })
    .unwrap();
    // Holds the one place for far longer than a cancel takes to be seen.
    let blocker = pool.call.nap(3_000);
    let blocked = pool.call.take_u64(1);
    let polled = pool.call.take_u64(2);
    let (h1, h2) = (blocked.cancel_handle(), polled.cancel_handle());
    let waiting = std::thread::spawn(move || blocked.wait());
    let awaiting = std::thread::spawn(move || futures::executor::block_on(polled));
    // Let both go to sleep for room first.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(h1.cancel(), knit::Cancelled::BeforeRun);
    assert_eq!(h2.cancel(), knit::Cancelled::BeforeRun);
    assert_eq!(waiting.join().unwrap(), Err(CallError::Aborted));
    assert_eq!(awaiting.join().unwrap(), Err(CallError::Aborted));
    assert!(
        !blocker.is_ready(),
        "the waiters woke only once room was made"
    );
    assert_eq!(blocker.wait(), Ok(3_000));
}

// --- 7. Smaller ones. ---

#[test]
fn a_result_the_caller_cannot_decode_is_a_named_payload_failure() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        ..PoolOptions::default()
    })
    .unwrap();
    // A u64 result read as a String: 8 bytes of length prefix, no bytes after.
    match pool.call.by_name::<u64, String>("take_u64", &5).wait() {
        Err(CallError::Payload(PayloadError::Decode(why))) => {
            assert!(why.contains("take_u64"), "{why}");
            assert!(why.contains("String"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let stats = pool.stats();
    assert_eq!(stats.completed, 0, "{stats:?}");
    assert_eq!(stats.failed.payload, 1, "{stats:?}");
}
