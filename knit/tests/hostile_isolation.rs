//! Hostile untrusted scripts trying to reach later or neighbouring calls: prototype poisoning, globals and module state, interleaved calls on one worker, timers left pending (they never fire), and the console cap.
#![cfg(feature = "js")]

#[path = "support/hostile.rs"]
mod hostile;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use hostile::*;
use knit::js::{JsOptions, Limits};
use knit::{Call, LimitKind};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

static LOCK: Mutex<()> = Mutex::new(());

/// How many times `bump` ran.
static BUMPS: AtomicUsize = AtomicUsize::new(0);

#[knit::task]
fn bump() -> usize {
    BUMPS.fetch_add(1, Ordering::SeqCst) + 1
}

fn options() -> JsOptions {
    JsOptions {
        expose: vec!["bump".into()],
        ..Default::default()
    }
}

fn strict_limits() -> Limits {
    limits(ms(100), ms(2000))
}

const POISON: &str = "
    export function poison() {
        Object.prototype.x = 1;
        Object.prototype.toJSON = () => 'poisoned';
        Array.prototype.push = function () { throw new Error('poisoned push'); };
        Array.prototype[Symbol.iterator] = function* () { yield 'poisoned'; };
        JSON.stringify = () => 'poisoned';
        Promise.prototype.then = function () { throw new Error('poisoned then'); };
        String.prototype.toUpperCase = () => 'poisoned';
        Math.max = () => -1;
        Object.defineProperty(Object.prototype, 'y', { get() { throw new Error('poisoned y'); } });
        Object.freeze(Object.prototype);
        return [({}).x, typeof [].push];
    }
    export async function check() {
        const a = [];
        a.push(1, 2);
        await null;
        return [
            ({}).x === undefined,
            Object.getOwnPropertyNames(Object.prototype).includes('x'),
            a.length,
            [...a].join(','),
            JSON.stringify({ a: 1 }),
            'abc'.toUpperCase(),
            Math.max(1, 3),
            Object.isFrozen(Object.prototype),
            'y' in {},
        ];
    }
";

/// Poisoned prototypes and builtins of one call are gone in the next.
#[test]
fn prototype_poisoning_does_not_reach_the_next_call() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool.untrusted(POISON, limits).unwrap();
    let (poisoned, _) = timed("Object.prototype.x = 1 and more", limits.cpu, || {
        script.export("poison").apply::<_, (u32, String)>(())
    });
    assert_eq!(poisoned, Ok((1, "function".to_string())));
    type Checks = (bool, bool, u32, String, String, String, i32, bool, bool);
    let (clean, _) = timed("the next call's prototypes", limits.cpu, || {
        script.export("check").apply::<_, Checks>(())
    });
    assert_eq!(
        clean,
        Ok((
            true,
            false,
            2,
            "1,2".to_string(),
            r#"{"a":1}"#.to_string(),
            "ABC".to_string(),
            3,
            false,
            false
        ))
    );
    normal_call_works(&pool);
}

/// A poisoned `Object.prototype.toJSON` or getter does not change how the
/// poisoning call's own result converts: only own properties are sent.
#[test]
fn a_poisoned_prototype_does_not_leak_into_the_result() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let source = "
        export default () => {
            Object.prototype.extra = 'leaked';
            Object.prototype.toJSON = () => 'poisoned';
            Array.prototype.extra = 'leaked';
            return { a: [1, 2], b: 'x' };
        };";
    let outcome = run::<serde_json::Value>(
        &pool,
        "a result with poisoned prototypes",
        source,
        limits,
        limits.cpu,
    );
    assert_eq!(outcome, Ok(serde_json::json!({ "a": [1, 2], "b": "x" })));
    normal_call_works(&pool);
}

/// A global set by one call is not there in the next; module state starts
/// over in every call.
#[test]
fn globals_and_module_state_do_not_survive_a_call() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool
        .untrusted(
            "let calls = 0;
             export const set = (v) => { globalThis.secret = v; globalThis.console = null; return [++calls, globalThis.secret]; };
             export const get = () => [++calls, typeof globalThis.secret, typeof console.log];",
            limits,
        )
        .unwrap();
    let (set, _) = timed("globalThis.secret = 'x'", limits.cpu, || {
        script.export("set").call::<_, (u32, String)>("x")
    });
    assert_eq!(set, Ok((1, "x".to_string())));
    let (got, _) = timed("typeof globalThis.secret", limits.cpu, || {
        script.export("get").apply::<_, (u32, String, String)>(())
    });
    assert_eq!(
        got,
        Ok((1, "undefined".to_string(), "function".to_string()))
    );
    normal_call_works(&pool);
}

/// Two calls interleaved on one worker (each waits on a timer between
/// writing a global and reading it back) see only their own globals.
#[test]
fn interleaved_calls_on_one_worker_see_only_their_own_globals() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool
        .untrusted(
            "export default async (tag) => {
                const seen = [typeof globalThis.mine];
                globalThis.mine = tag;
                Object.prototype.owner = tag;
                for (let i = 0; i < 5; i++) {
                    await new Promise((r) => setTimeout(r, 2));
                    seen.push(globalThis.mine + '/' + ({}).owner);
                }
                return seen;
            };",
            limits,
        )
        .unwrap();
    let calls: Vec<(String, Call<Vec<String>>)> = (0..8)
        .map(|i| {
            let tag = format!("call{i}");
            (tag.clone(), script.call(tag))
        })
        .collect();
    for (tag, call) in calls {
        let seen = settle("an interleaved call", call).unwrap();
        let mut expected = vec!["undefined".to_string()];
        expected.extend(std::iter::repeat_n(format!("{tag}/{tag}"), 5));
        assert_eq!(seen, expected, "{tag}");
    }
    normal_call_works(&pool);
}

/// Waits well past a timer's delay, then checks how many times `bump` ran
/// since `before`.
fn bumps_after(before: usize, wait: Duration) -> usize {
    std::thread::sleep(wait);
    BUMPS.load(Ordering::SeqCst) - before
}

/// Timers left pending by a call that finished (returned a value, settled
/// its promise, or failed) never fire: their callbacks would call a granted
/// host function.
#[test]
fn a_timer_left_pending_by_a_finished_call_never_fires() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool
        .untrusted(
            "import { bump } from 'knit:host';
             export const control = () => new Promise((r) => setTimeout(() => { bump(); r('fired'); }, 5));
             export const returns = () => { setTimeout(() => bump(), 20); return 1; };
             export const interval = () => { setInterval(() => bump(), 5); return 2; };
             export const settles = async () => {
                 setTimeout(() => bump(), 40);
                 await new Promise((r) => setTimeout(r, 5));
                 return 3;
             };
             export const throws = () => { setTimeout(() => bump(), 20); throw new Error('after the timer'); };
             export const spins = () => { setTimeout(() => bump(), 20); for (;;) {} };",
            limits,
        )
        .unwrap()
        .with_grants(["bump"])
        .unwrap();
    // The control: a timer the call waits for does fire, and bumps.
    let before = BUMPS.load(Ordering::SeqCst);
    let (outcome, _) = timed("a timer the call waits for", limits.cpu, || {
        script.export("control").apply::<_, String>(())
    });
    assert_eq!(outcome, Ok("fired".to_string()));
    assert!(
        BUMPS.load(Ordering::SeqCst) > before,
        "the control timer did not bump"
    );
    let before = BUMPS.load(Ordering::SeqCst);
    let (outcome, _) = timed("setTimeout(bump, 20); return 1", limits.cpu, || {
        script.export("returns").apply::<_, u32>(())
    });
    assert_eq!(outcome, Ok(1));
    let (outcome, _) = timed("setInterval(bump, 5); return 2", limits.cpu, || {
        script.export("interval").apply::<_, u32>(())
    });
    assert_eq!(outcome, Ok(2));
    let (outcome, _) = timed(
        "setTimeout(bump, 40); await 5 ms; return 3",
        limits.cpu,
        || script.export("settles").apply::<_, u32>(()),
    );
    assert_eq!(outcome, Ok(3));
    let (outcome, _) = timed("setTimeout(bump, 20); throw", limits.cpu, || {
        script.export("throws").apply::<_, u32>(())
    });
    assert_js(
        "setTimeout(bump, 20); throw",
        outcome,
        "Error",
        "after the timer",
    );
    let (outcome, _) = timed("setTimeout(bump, 20); for(;;){}", limits.cpu, || {
        script.export("spins").apply::<_, u32>(())
    });
    assert_limit(
        "setTimeout(bump, 20); for(;;){}",
        &outcome,
        LimitKind::Cpu,
        &limits,
    );
    // The worker stays busy meanwhile (normal calls with timers of their own).
    normal_call_works(&pool);
    assert_eq!(bumps_after(before, ms(300)), 0, "a pending timer fired");
    normal_call_works(&pool);
    assert_eq!(bumps_after(before, ms(50)), 0, "a pending timer fired");
}

/// Console lines, as the collector saw them.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Keep;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

impl Subscriber for Keep {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "knit::js" {
            let mut message = Message(String::new());
            event.record(&mut message);
            LINES.lock().unwrap().push(message.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The console lines that contain `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    let lines = LINES.lock().unwrap();
    lines
        .iter()
        .filter(|l| l.contains(marker))
        .cloned()
        .collect()
}

/// A script that writes 10,000 console lines gets its first ones out and
/// then one line saying the rest were dropped; the next call has its own
/// quota.
#[test]
fn a_console_flood_is_capped_per_call() {
    let _serial = serial(&LOCK);
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::subscriber::set_global_default(Keep).unwrap());
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool
        .untrusted(
            "export default (tag) => {
                for (let i = 0; i < 10000; i++) console.log(tag, i, 'x'.repeat(100));
                return 'flooded';
            };",
            limits,
        )
        .unwrap();
    for name in ["flood-one", "flood-two"] {
        let capped_before = lines_with("console output capped").len();
        // A tag of its own for every try (see `timed`).
        let tries = AtomicUsize::new(0);
        let tag = |n: usize| format!("{name}#{n}#");
        let (outcome, _) = timed("10000 console lines", limits.cpu, || {
            script.call::<_, String>(tag(tries.fetch_add(1, Ordering::SeqCst)))
        });
        assert_eq!(outcome, Ok("flooded".to_string()));
        let tries = tries.load(Ordering::SeqCst);
        let tag = tag(tries - 1);
        std::thread::sleep(ms(50));
        // 99 lines, then the line saying the rest are dropped (100 in all).
        let seen = lines_with(&tag);
        assert_eq!(seen.len(), 99, "{tag}: the lines that got out");
        assert!(seen[0].starts_with(&format!("{tag} 0 xxx")), "{}", seen[0]);
        assert!(
            seen[98].starts_with(&format!("{tag} 98 xxx")),
            "{}",
            seen[98]
        );
        assert_eq!(
            lines_with("console output capped").len(),
            capped_before + tries,
            "{tag}: one line a call says the output was capped"
        );
    }
    normal_call_works(&pool);
}
