//! The pool's JS verbs: `pool.js(module, export)` handles, `pool.eval`, `pool.eval_batch` and `pool.session()` (beside the pool, not in `js/`: the JS host must not depend on the pool that hosts it).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::Call;
use crate::caller::{guarded, Caller};
use crate::error::{CallError, PayloadError};
use crate::js::targets;
use crate::js::wire::to_wire;
use crate::pool::Pool;
use crate::registry::TaskEntry;

/// A JS module's export, callable on the pool's workers: made by
/// [`Pool::js`]. Cheap to clone, `Send + Sync`.
///
/// ```
/// use knit::js::{JsModule, JsOptions};
/// let pool = knit::create_pool(knit::PoolOptions {
///     threads: 1,
///     js: Some(JsOptions {
///         modules: vec![JsModule::source("math", "export const add = (a, b) => a + b;")],
///         ..Default::default()
///     }),
///     ..Default::default()
/// })?;
/// let add = pool.js("math", "add");
/// let sum: i64 = add.apply((1, 2)).wait()?;
/// assert_eq!(sum, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct JsTask {
    caller: Caller,
    entry: &'static TaskEntry,
}

impl JsTask {
    /// Calls the export with `args` spread as its arguments: a tuple, an
    /// array or any sequence (`add.apply((1, 2))` is `add(1, 2)`; `()` is
    /// no argument). Anything else fails with `CallError::Payload`.
    pub fn apply<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Call<R> {
        send(&self.caller, self.entry, &args, None)
    }

    /// Calls the export with the one argument `arg` (`later.call(41)` is
    /// `later(41)`).
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, arg: A) -> Call<R> {
        send(&self.caller, self.entry, &(arg,), None)
    }

    /// `module::export`.
    pub fn name(&self) -> String {
        self.entry.path()
    }
}

impl std::fmt::Debug for JsTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JsTask").field(&self.entry.path()).finish()
    }
}

/// Encodes `value` in the JS wire form and sends it (to worker lane `lane`
/// if given).
fn send<A: Serialize + ?Sized, R: DeserializeOwned>(
    caller: &Caller,
    entry: &'static TaskEntry,
    value: &A,
    lane: Option<usize>,
) -> Call<R> {
    thread_local! {
        /// The caller's encoding buffer, reused call after call (the bytes
        /// are copied into the ring); taken while in use, so a `Serialize`
        /// that makes a JS call itself gets a buffer of its own.
        static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut input = BUFFER.take();
    input.clear();
    let call = match guarded(|| to_wire(value, &mut input).map_err(PayloadError::from)) {
        Ok(()) => caller.send_wire(entry, &input, lane),
        Err(e) => Call::refused(caller.shared.stats.refuse(CallError::Payload(e))),
    };
    // A huge argument's buffer is not kept.
    if input.capacity() <= 64 << 10 {
        BUFFER.set(input);
    }
    call
}

impl Pool {
    /// A handle on export `export` of JS module `module` (`"default"` for
    /// the default export). Nothing is checked here: a call of a module or
    /// export that does not exist fails with `CallError::UnknownTask`
    /// naming it. Every distinct name pair used stays known to the process
    /// (a few bytes each).
    pub fn js(&self, module: &str, export: &str) -> JsTask {
        JsTask {
            caller: self.call.clone(),
            entry: targets::export_entry(module, export),
        }
    }

    /// Evaluates `source` as a global script on one of the workers, in its
    /// context (globals the modules and the bootstrap made are visible, and
    /// globals it sets stay there); top-level `await` works. The result is
    /// the script's completion value (`"1 + 1"` is 2); read it as `()` to
    /// ignore it.
    ///
    /// ```
    /// let pool = knit::create_pool(knit::PoolOptions {
    ///     threads: 1,
    ///     js: Some(Default::default()),
    ///     ..Default::default()
    /// })?;
    /// let two: i64 = pool.eval("await Promise.resolve(1 + 1)").wait()?;
    /// assert_eq!(two, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn eval<R: DeserializeOwned>(&self, source: impl AsRef<str>) -> Call<R> {
        send(&self.call, targets::eval_entry(), source.as_ref(), None)
    }

    /// [`Pool::eval`] for many scripts, spread over the workers by the
    /// balancer; the calls come back in the scripts' order.
    pub fn eval_batch<R: DeserializeOwned, S: AsRef<str>>(
        &self,
        sources: impl IntoIterator<Item = S>,
    ) -> Vec<Call<R>> {
        sources.into_iter().map(|s| self.eval(s)).collect()
    }

    /// A JS context of its own on one worker (the least busy now), for
    /// scripts that keep state between calls: globals a session's eval sets
    /// are there for its next eval, and no other session or call sees them.
    /// The context gets the console, the timers, the host functions and the
    /// bootstrap's globals (not the modules' exports; `import()` of a
    /// registered module works). It is dropped with the session.
    ///
    /// Fails with `CallError::Closed` on a closed pool.
    ///
    /// ```
    /// let pool = knit::create_pool(knit::PoolOptions {
    ///     threads: 2,
    ///     js: Some(Default::default()),
    ///     ..Default::default()
    /// })?;
    /// let session = pool.session()?;
    /// session.eval::<()>("globalThis.n = 41").wait()?;
    /// let n: i64 = session.eval("++n").wait()?;
    /// assert_eq!(n, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session(&self) -> Result<JsSession, CallError> {
        let shared = &self.call.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(CallError::Closed);
        }
        let lane = (0..shared.lanes.len())
            .min_by_key(|&i| shared.lanes[i].in_flight())
            .ok_or(CallError::Closed)?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Ok(JsSession {
            caller: self.call.clone(),
            lane,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        })
    }
}

/// A JS context of its own on one worker: see [`Pool::session`]. Dropping
/// it drops the context (on its worker, after the calls sent before).
pub struct JsSession {
    caller: Caller,
    /// The worker lane (an index among the worker lanes) it lives on.
    lane: usize,
    id: u64,
}

impl JsSession {
    /// Evaluates `source` in this session's context (as [`Pool::eval`]).
    pub fn eval<R: DeserializeOwned>(&self, source: impl AsRef<str>) -> Call<R> {
        send(
            &self.caller,
            targets::session_eval_entry(),
            &(self.id, source.as_ref()),
            Some(self.lane),
        )
    }

    /// The worker lane this session lives on, in the balancer's numbering
    /// (what `TaskCx::lane_id` says on that worker).
    pub fn lane(&self) -> usize {
        self.caller.shared.lane_number(self.lane)
    }
}

impl Drop for JsSession {
    fn drop(&mut self) {
        // A closed pool drops its engines anyway.
        if self.caller.shared.closed.load(Ordering::Acquire) {
            return;
        }
        // Nothing waits for it.
        let closing: Call<()> = send(
            &self.caller,
            targets::session_close_entry(),
            &self.id,
            Some(self.lane),
        );
        drop(closing);
    }
}

impl std::fmt::Debug for JsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsSession")
            .field("id", &self.id)
            .field("lane", &self.lane)
            .finish()
    }
}
