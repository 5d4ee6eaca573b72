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
use std::sync::{Arc, RwLock};

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
}

/// The untrusted scripts of one pool, by id (shared by its workers).
#[derive(Default)]
pub(crate) struct ScriptStore {
    scripts: RwLock<HashMap<u64, Arc<StrictScript>>>,
}

impl ScriptStore {
    /// The script with id `id`, if it was compiled in this pool.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<StrictScript>> {
        let scripts = self.scripts.read().unwrap_or_else(|e| e.into_inner());
        scripts.get(&id).cloned()
    }

    /// Keeps `script` (or the one already kept under its id).
    pub(crate) fn insert(&self, script: StrictScript) -> Arc<StrictScript> {
        let mut scripts = self.scripts.write().unwrap_or_else(|e| e.into_inner());
        scripts
            .entry(script.id)
            .or_insert_with(|| Arc::new(script))
            .clone()
    }
}

/// The id of a script with source `source`.
pub(crate) fn script_id(source: &[u8]) -> u64 {
    let hash = blake3::hash(source);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}
