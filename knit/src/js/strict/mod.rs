//! Strict mode: untrusted scripts, each call in a pristine engine of its own, under per-call budgets.
//!
//! A script is compiled once, on the thread that calls `Pool::untrusted`,
//! into bytecode kept in the pool's [`ScriptStore`] under its source hash.
//! A call of it (the JS target `strict`) carries a [`Header`] (which script,
//! which export, its budgets, its host-function grants) before its
//! arguments. The worker runs every such call in a runtime of its own
//! ([`call::StrictCall`]): a fresh QuickJS runtime and a context without the
//! `Eval` intrinsic, into which the script's bytecode is loaded. Nothing one
//! call does can be seen by the next (the runtime dies with the call); the
//! runtime's memory limit, interrupt handler and job queue are the call's
//! alone, so its heap, its CPU time and its promise jobs are billed to it
//! exactly, however many calls share the worker. A pristine runtime is
//! built ahead while the worker is idle ([`fresh::Fresh`]), so a call pays
//! only for loading its bytecode and running.
//!
//! What JS can catch and what it cannot: see [`budget`] (CPU, wall time:
//! the uncatchable interrupt), [`guard`] (out-of-memory, stack overflow:
//! detected even when the script catches the engine's error).

pub(crate) mod budget;
pub(crate) mod call;
pub(crate) mod compile;
pub(crate) mod fresh;
pub(crate) mod guard;
mod header;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

pub(crate) use header::Header;

/// One compiled untrusted script.
pub(crate) struct StrictScript {
    /// The source's hash (what calls name it by).
    pub id: u64,
    /// Its module bytecode (written by this process's engine).
    pub bytecode: Vec<u8>,
    /// The module name it was compiled under (`script:<id>`), which its
    /// errors' stacks and console lines name.
    pub name: Arc<str>,
    /// When a call of it was last sent ([`now_ms`]).
    pub last_sent: AtomicU64,
}

impl StrictScript {
    pub(crate) fn new(id: u64, bytecode: Vec<u8>, name: Arc<str>) -> StrictScript {
        StrictScript {
            id,
            bytecode,
            name,
            last_sent: AtomicU64::new(now_ms()),
        }
    }

    /// Notes that a call of it is being sent.
    pub(crate) fn sent(&self) {
        self.last_sent.store(now_ms(), Ordering::Relaxed);
    }
}

/// A coarse clock for the store, in milliseconds: it starts at
/// [`KEEP_UNUSED`] (so that 0 is a time long enough ago).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let since = EPOCH.get_or_init(Instant::now).elapsed() + KEEP_UNUSED;
    since.as_millis() as u64
}

/// Above this many scripts, inserting one drops those nobody holds.
const KEEP_SCRIPTS: usize = 256;

/// A script no handle holds is kept this long after its last call was sent
/// (a call still queued then must still find it).
const KEEP_UNUSED: Duration = Duration::from_secs(60);

/// The untrusted scripts of one pool, by id (shared by its workers).
#[derive(Default)]
pub(crate) struct ScriptStore {
    scripts: RwLock<HashMap<u64, Arc<StrictScript>>>,
    /// Whether the pool was told it has no `hard_timeout` (said once).
    pub warned: std::sync::atomic::AtomicBool,
}

impl ScriptStore {
    /// The script with id `id`, if it was compiled in this pool.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<StrictScript>> {
        let scripts = self.scripts.read().unwrap_or_else(|e| e.into_inner());
        scripts.get(&id).cloned()
    }

    /// Keeps `script` (or the one already kept under its id). With more
    /// than [`KEEP_SCRIPTS`] kept, those no `Script` handle holds any more
    /// and whose last call went out over [`KEEP_UNUSED`] ago are dropped
    /// (services that compile scripts without end must not grow the store
    /// without end); a handle that sends again puts its script back.
    pub(crate) fn insert(&self, script: Arc<StrictScript>) -> Arc<StrictScript> {
        let mut scripts = self.scripts.write().unwrap_or_else(|e| e.into_inner());
        if scripts.len() >= KEEP_SCRIPTS && !scripts.contains_key(&script.id) {
            let now = now_ms();
            let keep = KEEP_UNUSED.as_millis() as u64;
            scripts.retain(|_, s| {
                Arc::strong_count(s) > 1
                    || now.saturating_sub(s.last_sent.load(Ordering::Relaxed)) < keep
            });
        }
        scripts.entry(script.id).or_insert(script).clone()
    }

    /// Puts `script` back if it was dropped (see [`ScriptStore::insert`]).
    pub(crate) fn ensure(&self, script: &Arc<StrictScript>) {
        let kept = {
            let scripts = self.scripts.read().unwrap_or_else(|e| e.into_inner());
            scripts.contains_key(&script.id)
        };
        if !kept {
            self.insert(script.clone());
        }
    }

    /// How many scripts are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.scripts.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The id of a script with source `source`.
pub(crate) fn script_id(source: &[u8]) -> u64 {
    let hash = blake3::hash(source);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(id: u64) -> Arc<StrictScript> {
        Arc::new(StrictScript::new(
            id,
            vec![1, 2, 3],
            format!("script:{id}").into(),
        ))
    }

    #[test]
    fn the_store_keeps_held_and_recent_scripts_and_puts_dropped_ones_back() {
        let store = ScriptStore::default();
        let held: Vec<Arc<StrictScript>> = (0..KEEP_SCRIPTS as u64).map(script).collect();
        for s in &held {
            store.insert(s.clone());
        }
        // Full, but every script is held: nothing is dropped.
        store.insert(script(10_000));
        assert_eq!(store.len(), KEEP_SCRIPTS + 1);
        // Unheld and long unused: dropped at the next insert.
        let old = store.get(10_000).expect("kept");
        old.last_sent.store(0, Ordering::Relaxed);
        drop(old);
        store.insert(script(10_001));
        assert!(store.get(10_000).is_none());
        // A handle puts its script back before it sends.
        let again = script(10_000);
        store.ensure(&again);
        assert!(store.get(10_000).is_some());
        assert_eq!(store.insert(script(0)).bytecode, held[0].bytecode);
        assert!(Arc::ptr_eq(&store.get(0).unwrap(), &held[0]));
    }
}
