//! knit's diagnostics reach the application's `tracing` subscriber (not
//! stderr): here, a worker that dies and the lane that gets a new one.

use std::fmt::Write as _;
use std::sync::Mutex;

use knit::{create_pool, CallError, PoolOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Every event seen, as "LEVEL target: field=value ...".
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A subscriber that keeps every event's level, target and fields.
struct Keep;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
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
        let mut fields = Fields(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut fields);
        EVENTS.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[knit::task]
fn die() -> u8 {
    knit_suite::faults::kill_thread()
}

#[knit::task]
fn one() -> u8 {
    1
}

#[test]
fn a_lost_worker_and_its_replacement_are_reported_through_tracing() {
    // Global: the events come from the worker threads.
    tracing::subscriber::set_global_default(Keep).unwrap();
    let pool = create_pool(PoolOptions {
        threads: 1,
        pin: false,
        ..PoolOptions::default()
    })
    .unwrap();
    assert_eq!(pool.call.die().wait(), Err(CallError::WorkerLost));
    assert_eq!(pool.call.one().wait(), Ok(1), "the lane has a new worker");
    let events = EVENTS.lock().unwrap().clone();
    let replaced = events
        .iter()
        .find(|e| e.contains("the lane has a new worker"))
        .unwrap_or_else(|| panic!("no replacement event in {events:?}"));
    assert!(
        replaced.starts_with(&format!("{} knit", Level::WARN)),
        "{replaced}"
    );
    assert!(
        replaced.contains("lane=0") && replaced.contains("WorkerDied"),
        "{replaced}"
    );
}
