//! JS `console` goes to `tracing` (target `knit::js`, with the module, the lane and the call), never to stdout.
#![cfg(feature = "js")]

use std::fmt::Write as _;
use std::sync::{Mutex, Once};
use std::time::Duration;

use knit::js::{JsModule, JsOptions};
use knit::{create_pool, Call, Pool, PoolOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// An event as seen: its level, target and fields (`message` included).
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

static EVENTS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

struct Keep;

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.0.push((field.name().to_string(), text));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
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
        let meta = event.metadata();
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        EVENTS.lock().unwrap().push(Seen {
            level: *meta.level(),
            target: meta.target().to_string(),
            fields: fields.0,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the collector (global: the events come from worker threads).
fn collect() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::subscriber::set_global_default(Keep).unwrap());
}

/// The events whose message contains `marker`, waiting a little for them.
fn events_with(marker: &str, at_least: usize) -> Vec<Seen> {
    for _ in 0..500 {
        let found: Vec<Seen> = EVENTS
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.field("message").is_some_and(|m| m.contains(marker)))
            .cloned()
            .collect();
        if found.len() >= at_least {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "fewer than {at_least} events with {marker:?}: {:?}",
        EVENTS.lock().unwrap()
    );
}

const CONSOLE: &str = r#"
export function all(tag) {
    console.log(tag, "log", 1, { a: [2] });
    console.info(tag, "info");
    console.warn(tag, "warn");
    console.error(tag, "error", new RangeError("bad"));
    console.debug(tag, "debug", null, undefined);
    return 5;
}
export async function later(tag) {
    await new Promise((r) => setTimeout(r, 5));
    console.log(tag, "after a timer");
    return 1;
}
export async function soon(tag) {
    await null;
    console.log(tag, "after a microtask");
    return 1;
}
"#;

fn pool(threads: usize) -> Pool {
    create_pool(PoolOptions {
        threads,
        js: Some(JsOptions {
            modules: vec![JsModule::source("c", CONSOLE)],
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn console_methods_log_through_tracing_with_lane_and_call() {
    collect();
    let pool = pool(1);
    let call: Call<u32> = pool.js("c", "all").call("m-all");
    let id = call.id().expect("an in-flight call has an id");
    assert_eq!(call.wait(), Ok(5));
    let seen = events_with("m-all", 5);
    assert_eq!(seen.len(), 5, "{seen:?}");
    let levels: Vec<Level> = seen.iter().map(|e| e.level).collect();
    assert_eq!(
        levels,
        [
            Level::INFO,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
            Level::DEBUG
        ]
    );
    for e in &seen {
        assert_eq!(e.target, "knit::js", "{e:?}");
        assert_eq!(e.field("lane"), Some("0"), "{e:?}");
        assert_eq!(e.field("call"), Some(id.to_string().as_str()), "{e:?}");
    }
    let text = |i: usize| seen[i].field("message").unwrap().to_string();
    assert_eq!(text(0), r#"m-all log 1 {"a":[2]}"#);
    assert_eq!(text(1), "m-all info");
    assert!(
        text(3).starts_with("m-all error RangeError: bad"),
        "{}",
        text(3)
    );
    assert_eq!(text(4), "m-all debug null undefined");
}

#[test]
fn console_lines_name_the_worker_lane() {
    collect();
    let pool = pool(2);
    let calls: Vec<Call<u32>> = (0..6)
        .map(|_| pool.js("c", "all").call("m-lanes"))
        .collect();
    for c in calls {
        c.wait().unwrap();
    }
    let seen = events_with("m-lanes", 30);
    let mut lanes: Vec<&str> = seen.iter().filter_map(|e| e.field("lane")).collect();
    lanes.sort();
    lanes.dedup();
    assert_eq!(lanes, ["0", "1"]);
    // Eval and session lines are logged the same way.
    pool.eval::<()>("console.warn('m-eval')").wait().unwrap();
    let s = pool.session().unwrap();
    s.eval::<()>("console.error('m-session')").wait().unwrap();
    let e = &events_with("m-eval", 1)[0];
    assert_eq!((e.level, e.target.as_str()), (Level::WARN, "knit::js"));
    let e = &events_with("m-session", 1)[0];
    assert_eq!((e.level, e.target.as_str()), (Level::ERROR, "knit::js"));
    assert_eq!(e.field("lane"), Some(s.lane().to_string().as_str()));
}

#[test]
fn console_lines_after_a_microtask_name_their_call() {
    collect();
    let pool = pool(1);
    let call: Call<u32> = pool.js("c", "soon").call("m-soon");
    let id = call.id().unwrap();
    call.wait().unwrap();
    let e = &events_with("m-soon", 1)[0];
    assert_eq!(e.field("call"), Some(id.to_string().as_str()), "{e:?}");
}

#[test]
fn console_lines_after_a_timer_name_their_call() {
    collect();
    let pool = pool(1);
    let call: Call<u32> = pool.js("c", "later").call("m-later");
    let id = call.id().unwrap();
    call.wait().unwrap();
    let e = &events_with("m-later", 1)[0];
    assert_eq!(e.field("call"), Some(id.to_string().as_str()), "{e:?}");
}

#[test]
fn console_lines_name_the_module() {
    collect();
    let pool = pool(1);
    pool.js("c", "all")
        .call::<_, u32>("m-module")
        .wait()
        .unwrap();
    let e = &events_with("m-module", 1)[0];
    assert_eq!(e.field("module"), Some("c"), "{e:?}");
    // Scripts are logged as the module "eval".
    pool.eval::<()>("console.log('m-module-eval')")
        .wait()
        .unwrap();
    let e = &events_with("m-module-eval", 1)[0];
    assert_eq!(e.field("module"), Some("eval"), "{e:?}");
}

/// Run by `console_never_reaches_stdout` in a child process of this test
/// binary; does nothing otherwise.
#[test]
fn console_child() {
    if std::env::var_os("KNIT_CONSOLE_CHILD").is_none() {
        return;
    }
    // No subscriber: a console line must still not be printed anywhere.
    let pool = pool(1);
    pool.js("c", "all")
        .call::<_, u32>("m-stdout-7f3a")
        .wait()
        .unwrap();
    pool.eval::<()>("console.log('m-stdout-7f3a eval')")
        .wait()
        .unwrap();
    pool.shutdown();
}

#[test]
fn console_never_reaches_stdout() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KNIT_CONSOLE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    // The child really ran its test.
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        !stdout.contains("m-stdout-7f3a"),
        "console reached stdout:\n{stdout}"
    );
    assert!(
        !stderr.contains("m-stdout-7f3a"),
        "console reached stderr:\n{stderr}"
    );
}
