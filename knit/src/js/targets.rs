//! What a JS call names: a module's export, an eval, or a session's eval, each as a task entry with an id of its own.
//!
//! A JS call travels like any other call (same rings, table, balancers,
//! timeouts), so it needs a `&'static TaskEntry`: one is made the first time
//! a target is named in this process and kept for the rest of it (a target is
//! a module and export name pair, so the memory kept is bounded by how many
//! distinct names the application uses). Ids carry a tag in their top 16 bits
//! that `#[task]` ids are checked not to carry, so a worker tells a JS call
//! from a Rust one by its id alone.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};

use crate::cx::TaskCx;
use crate::error::CallError;
use crate::registry::{TaskEntry, TaskFailure};

/// The top 16 bits of every JS target's id ("JS").
pub(crate) const JS_TAG: u64 = 0x4a53 << 48;
const TAG_MASK: u64 = 0xffff << 48;

/// Whether `id` names a JS target rather than a `#[task]`.
#[inline]
pub(crate) fn is_js(id: u64) -> bool {
    id & TAG_MASK == JS_TAG
}

/// What a JS call asks a worker's engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Call `module`'s export `export` with the arguments (a wire array).
    Export { module: String, export: String },
    /// Evaluate a script (a wire string) in the worker's context.
    Eval,
    /// Evaluate a script in a session's context (a wire `[id, source]`).
    SessionEval,
    /// Drop a session's context (a wire session id).
    SessionClose,
    /// Call an untrusted script's export in a pristine runtime (a strict
    /// header, then the wire arguments).
    Strict,
}

const EVAL: u64 = 0;
const SESSION_EVAL: u64 = 1;
const SESSION_CLOSE: u64 = 2;
const STRICT: u64 = 3;
/// Export targets are numbered from here.
const FIRST_EXPORT: u64 = 16;

struct Interned {
    by_name: HashMap<(String, String), &'static TaskEntry>,
    /// Export targets by number - FIRST_EXPORT.
    exports: Vec<(String, String)>,
}

fn interned() -> &'static Mutex<Interned> {
    static INTERNED: OnceLock<Mutex<Interned>> = OnceLock::new();
    INTERNED.get_or_init(|| {
        Mutex::new(Interned {
            by_name: HashMap::new(),
            exports: Vec::new(),
        })
    })
}

/// A read-mostly copy of the export names for workers (a worker looks a
/// name up once per target, then keeps the function).
fn export_names() -> &'static RwLock<Vec<(String, String)>> {
    static NAMES: OnceLock<RwLock<Vec<(String, String)>>> = OnceLock::new();
    NAMES.get_or_init(|| RwLock::new(Vec::new()))
}

/// A JS entry is never run as Rust code: a worker's engine runs it. Should a
/// thread without one ever meet it, the call fails instead of misbehaving.
fn not_rust(_: &[u8], _: &mut Vec<u8>, _: usize, _: &TaskCx<'_>) -> Result<(), TaskFailure> {
    Err(TaskFailure(CallError::UnknownTask(
        "a JS call can only run on a worker with a JS engine".into(),
    )))
}

fn leak_entry(module: String, name: String, id: u64) -> &'static TaskEntry {
    Box::leak(Box::new(TaskEntry {
        name: Box::leak(name.into_boxed_str()),
        module: Box::leak(module.into_boxed_str()),
        id,
        run: not_rust,
        run_wire: None,
        run_async: None,
        inline_safe: false,
        timeout_ms: 0,
    }))
}

/// The entry of `module`'s export `export` (made once per pair).
pub(crate) fn export_entry(module: &str, export: &str) -> &'static TaskEntry {
    let mut interned = interned().lock().unwrap_or_else(|e| e.into_inner());
    let key = (module.to_owned(), export.to_owned());
    if let Some(entry) = interned.by_name.get(&key) {
        return entry;
    }
    let number = FIRST_EXPORT + interned.exports.len() as u64;
    let entry = leak_entry(key.0.clone(), key.1.clone(), JS_TAG | number);
    interned.exports.push(key.clone());
    export_names()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(key.clone());
    interned.by_name.insert(key, entry);
    entry
}

macro_rules! fixed_entry {
    ($fn_name:ident, $name:literal, $number:expr) => {
        /// The entry of this fixed target.
        pub(crate) fn $fn_name() -> &'static TaskEntry {
            static ENTRY: OnceLock<TaskEntry> = OnceLock::new();
            ENTRY.get_or_init(|| TaskEntry {
                name: $name,
                module: "js",
                id: JS_TAG | $number,
                run: not_rust,
                run_wire: None,
                run_async: None,
                inline_safe: false,
                timeout_ms: 0,
            })
        }
    };
}

fixed_entry!(eval_entry, "eval", EVAL);
fixed_entry!(session_eval_entry, "session.eval", SESSION_EVAL);
fixed_entry!(session_close_entry, "session.close", SESSION_CLOSE);
fixed_entry!(strict_entry, "untrusted", STRICT);

/// What the JS id `id` names (`None` for an id no target was made for).
pub(crate) fn target(id: u64) -> Option<Target> {
    match id & !TAG_MASK {
        EVAL => Some(Target::Eval),
        SESSION_EVAL => Some(Target::SessionEval),
        SESSION_CLOSE => Some(Target::SessionClose),
        STRICT => Some(Target::Strict),
        n if n >= FIRST_EXPORT => {
            let names = export_names().read().unwrap_or_else(|e| e.into_inner());
            let (module, export) = names.get((n - FIRST_EXPORT) as usize)?.clone();
            Some(Target::Export { module, export })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_through_their_ids() {
        let add = export_entry("math_t", "add");
        assert!(std::ptr::eq(add, export_entry("math_t", "add")));
        assert!(is_js(add.id));
        assert_eq!(
            target(add.id),
            Some(Target::Export {
                module: "math_t".into(),
                export: "add".into()
            })
        );
        assert_eq!(target(eval_entry().id), Some(Target::Eval));
        assert_eq!(target(session_eval_entry().id), Some(Target::SessionEval));
        assert_eq!(target(session_close_entry().id), Some(Target::SessionClose));
        assert_ne!(export_entry("math_t", "sub").id, add.id);
        assert_eq!(target(JS_TAG | 1 << 40), None);
        assert_eq!(target(strict_entry().id), Some(Target::Strict));
        assert!(!is_js(crate::registry::task_id("app", "add")));
    }
}
