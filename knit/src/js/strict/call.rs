//! A worker's strict calls: each runs in a pristine runtime of its own, slice by slice, billed and guarded, and its runtime dies with it.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use rquickjs::promise::PromiseState;
use rquickjs::{Ctx, Module, Persistent, Promise, Value};

use super::budget::{forbid_new_frames, Budget};
use super::fresh::Fresh;
use super::guard::{forget_back_trace, next_seed, stack_pointer, Band, BAND};
use super::{Header, StrictScript};
use crate::error::{CallError, LimitKind, PayloadError};
use crate::js::convert::{from_js, ConvertCache};
use crate::js::error::{js_error_from, js_error_of};
use crate::js::host::EngineState;
use crate::js::wire::{WireError, WireLimits, ARRAY, UNDEFINED};
use crate::js_error::JsError;
use crate::lanes::Begun;
use crate::table::{Outcome, Ticket};

/// Promise jobs run right after the call's own code, and per later turn.
const JOBS_PER_SLICE: usize = 4096;

/// Settled calls whose runtimes wait to be freed (after their results went
/// out) before the next turn, or the next call that finds no spare, frees
/// them all at once.
const MAX_DEAD: usize = 8;

/// One strict call in flight on this worker.
struct StrictCall {
    call: u64,
    budget: Rc<Budget>,
    /// What the call's export returned, while it is pending.
    promise: Option<Persistent<Promise<'static>>>,
    /// The most bytes its result may take.
    output_max: usize,
    fresh: Fresh,
}

impl StrictCall {
    fn close(self) {
        drop(self.promise);
        self.fresh.close();
    }
}

/// The end of the part of a slice whose stack use counts: the script's JS
/// is done, and what follows (converting its result, knit's own recursion)
/// is not the script's stack.
struct Checkpoint<'a> {
    band: Band,
    budget: &'a Budget,
    done: Cell<bool>,
}

impl Checkpoint<'_> {
    fn end(&self) {
        if !self.done.replace(true) && self.band.touched() {
            self.budget.exceed(LimitKind::Stack);
        }
    }
}

/// How a slice left the call.
enum Step {
    Done(Outcome),
    Waiting(Persistent<Promise<'static>>),
}

/// The strict calls of one worker's engine.
pub(crate) struct StrictCalls {
    /// A pristine runtime built ahead, for the next call.
    spare: Option<Fresh>,
    pending: HashMap<u64, StrictCall>,
    dead: Vec<StrictCall>,
    /// The lowest stack address the stack bands may use.
    floor: usize,
    seed: Cell<u64>,
    /// A strict call ran here (so a spare is worth its memory).
    used: bool,
    /// Building a spare failed: do not retry at every turn.
    spare_failed: bool,
}

impl StrictCalls {
    /// For a worker whose thread has a stack of `stack_size` bytes (made on
    /// that thread, near the top of its stack).
    pub(crate) fn new(stack_size: usize, lane: usize) -> StrictCalls {
        let sp = stack_pointer();
        StrictCalls {
            spare: None,
            pending: HashMap::new(),
            dead: Vec::new(),
            floor: sp.saturating_sub(stack_size / 2),
            // Any odd start will do; the stack position and the lane make
            // workers differ.
            seed: Cell::new((sp as u64 ^ (lane as u64).rotate_left(32)) | 1),
            used: false,
            spare_failed: false,
        }
    }

    /// Begins strict call `ticket` (a [`Header`] then its wire arguments).
    pub(crate) fn begin(&mut self, state: &Rc<EngineState>, ticket: Ticket, input: &[u8]) -> Begun {
        self.used = true;
        let Some((header, args)) = Header::read(input) else {
            return failed(CallError::Payload(PayloadError::Decode(
                "a strict call without a valid header".into(),
            )));
        };
        let Some(script) = state.setup.scripts.get(header.script) else {
            return failed(CallError::UnknownTask(format!(
                "untrusted script {:016x} (not compiled in this pool)",
                header.script
            )));
        };
        if header
            .grants
            .iter()
            .any(|&g| g as usize >= state.setup.exposed.len())
        {
            return failed(CallError::UnknownTask(
                "a grant names no exposed host function".into(),
            ));
        }
        let fresh = match self.spare.take() {
            Some(fresh) => fresh,
            None => {
                // Calls came faster than turns. The settled calls' results
                // are out: their runtimes go first, so the new one reuses
                // their memory while it is in cache (a burst otherwise
                // piles up `MAX_DEAD` of them, larger than the core's cache).
                self.free_dead();
                match Fresh::new(state) {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        return failed(CallError::Js(Box::new(JsError::new(
                            "InternalError",
                            format!("no engine for the call: {e}"),
                        ))))
                    }
                }
            }
        };
        *fresh.grants.indexes.borrow_mut() = header.grants.clone();
        let limits = header.limits;
        // Runtime settings go outside `with` (rquickjs panics inside it).
        fresh.rt.set_memory_limit(limits.memory_bytes);
        fresh
            .rt
            .set_max_stack_size(limits.stack_bytes.saturating_add(BAND));
        fresh.hook.memory_limit.set(limits.memory_bytes);
        let budget = Rc::new(Budget::new(
            limits,
            fresh.hook.hit.clone(),
            state.table.clone(),
            ticket,
        ));
        let interrupt = budget.clone();
        // SAFETY: the context is live; the pointer is only used by the
        // handler, which runs inside this runtime's JS (so while it lives).
        let raw_rt = fresh
            .ctx
            .with(|ctx| unsafe { rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) });
        // SAFETY: as above.
        let raw_ctx = fresh.ctx.with(|ctx| ctx.as_raw().as_ptr());
        let hook = fresh.hook.clone();
        fresh.rt.set_interrupt_handler(Some(Box::new(move || {
            // SAFETY: the handler runs inside this context's JS, on its thread.
            unsafe { forget_back_trace(raw_ctx) };
            let stop = interrupt.interrupt();
            if stop {
                // SAFETY: as above; called on the runtime's own thread.
                unsafe { forbid_new_frames(raw_rt) };
                hook.stopping.set(true);
            }
            stop
        })));
        fresh.console_call.set(Some(ticket.call_id()));
        *fresh.console_module.borrow_mut() = Some(Rc::from(&*script.name));
        let call = StrictCall {
            call: ticket.call_id(),
            budget,
            promise: None,
            output_max: limits.output_bytes.min(state.setup.max_payload),
            fresh,
        };
        let step = self.slice(&call, state, |ctx, cp| {
            first_run(ctx, cp, &script, &header, args, &call)
        });
        match self.after(call, step) {
            Some(outcome) => Begun::Done(outcome),
            None => Begun::Pending,
        }
    }

    /// Runs one slice of `call`'s JS: billed to it, its stack band painted
    /// and checked, host functions and the console told which call it is.
    fn slice<R>(
        &self,
        call: &StrictCall,
        state: &EngineState,
        f: impl for<'js> FnOnce(&Ctx<'js>, &Checkpoint<'_>) -> R,
    ) -> Option<R> {
        state.current.set(Some(call.call));
        call.budget.begin_slice();
        let seed = next_seed(&self.seed);
        let stack = call.budget.limits.stack_bytes;
        let floor = self.floor;
        let ran = call.fresh.ctx.with(|ctx| {
            // SAFETY: `ctx` is live, on this thread, and no JS runs now.
            unsafe { forget_back_trace(ctx.as_raw().as_ptr()) };
            let checkpoint = Checkpoint {
                band: Band::paint(&ctx, stack, floor, seed)?,
                budget: &call.budget,
                done: Cell::new(false),
            };
            let r = f(&ctx, &checkpoint);
            checkpoint.end();
            Some(r)
        });
        call.budget.end_slice();
        state.current.set(None);
        if ran.is_none() {
            // The band did not fit in this thread's stack.
            call.budget.exceed(LimitKind::Stack);
        }
        ran
    }

    /// The call's outcome after a slice (`None`: it still waits, and is
    /// listed pending again). A budget found exceeded wins over whatever
    /// the JS did.
    fn after(&mut self, mut call: StrictCall, step: Option<Step>) -> Option<Outcome> {
        let step = step.map(|s| cap_error(s, call.budget.limits.output_bytes));
        let outcome = if let Some(kind) = call.budget.hit.get() {
            Outcome::Failed(call.budget.limit_error(kind))
        } else if call.budget.stopped() {
            // The caller already has its outcome; this one is dropped.
            Outcome::Failed(CallError::Aborted)
        } else {
            match step {
                Some(Step::Done(outcome)) => outcome,
                Some(Step::Waiting(promise)) => {
                    call.promise = Some(promise);
                    self.pending.insert(call.call, call);
                    return None;
                }
                None => Outcome::Failed(call.budget.limit_error(LimitKind::Stack)),
            }
        };
        self.bury(call);
        Some(outcome)
    }

    /// Keeps a settled call's runtime until the next turn (or the next call
    /// that finds no spare) frees it: its result goes out first.
    fn bury(&mut self, call: StrictCall) {
        self.dead.push(call);
        if self.dead.len() > MAX_DEAD {
            self.free_dead();
        }
    }

    fn free_dead(&mut self) {
        for call in self.dead.drain(..) {
            call.close();
        }
    }

    /// Runs the pending calls' due timers and jobs; the calls that settled.
    /// Frees settled calls' runtimes and builds the spare.
    pub(crate) fn turn(&mut self, state: &Rc<EngineState>) -> Vec<(u64, Outcome)> {
        self.free_dead();
        let mut settled = Vec::new();
        if !self.pending.is_empty() {
            let now = Instant::now();
            let ids: Vec<u64> = self.pending.keys().copied().collect();
            for id in ids {
                let Some(call) = self.pending.remove(&id) else {
                    continue;
                };
                if now >= call.budget.deadline {
                    call.budget.exceed(LimitKind::Wall);
                }
                let due = call
                    .fresh
                    .timers
                    .next_deadline()
                    .is_some_and(|at| at <= now);
                let step = if call.budget.hit.get().is_some() {
                    Some(Step::Done(Outcome::Failed(CallError::Aborted)))
                } else if due || call.fresh.rt.is_job_pending() {
                    self.slice(&call, state, |ctx, cp| resume(ctx, cp, &call, now))
                } else {
                    // Nothing to run: it keeps waiting.
                    self.pending.insert(id, call);
                    continue;
                };
                if let Some(outcome) = self.after(call, step) {
                    settled.push((id, outcome));
                }
            }
        }
        if self.spare.is_none() && self.used && !self.spare_failed {
            match Fresh::new(state) {
                Ok(fresh) => self.spare = Some(fresh),
                Err(e) => {
                    tracing::warn!(lane = state.lane, error = %e, "knit: no spare strict engine");
                    self.spare_failed = true;
                }
            }
        }
        settled
    }

    /// Whether a turn has work now.
    pub(crate) fn has_work(&self) -> bool {
        let now = Instant::now();
        !self.dead.is_empty()
            || (self.spare.is_none() && self.used && !self.spare_failed)
            || self.pending.values().any(|c| {
                now >= c.budget.deadline
                    || c.fresh.rt.is_job_pending()
                    || c.fresh.timers.next_deadline().is_some_and(|at| at <= now)
            })
    }

    /// The earliest wall deadline or timer of a pending call.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|c| match c.fresh.timers.next_deadline() {
                Some(at) => at.min(c.budget.deadline),
                None => c.budget.deadline,
            })
            .min()
    }

    /// Whether a pending call may still settle by itself (it has a timer set).
    pub(crate) fn may_settle(&self) -> bool {
        self.pending.values().any(|c| c.fresh.timers.len() > 0)
    }

    /// Drops pending call `call` (its caller has an outcome).
    pub(crate) fn forget(&mut self, call: u64) {
        if let Some(call) = self.pending.remove(&call) {
            self.bury(call);
        }
    }
}

impl Drop for StrictCalls {
    fn drop(&mut self) {
        self.free_dead();
        for (_, call) in self.pending.drain() {
            call.close();
        }
        if let Some(fresh) = self.spare.take() {
            fresh.close();
        }
    }
}

fn failed(e: CallError) -> Begun {
    Begun::Done(Outcome::Failed(e))
}

fn thrown(ctx: &Ctx<'_>, e: rquickjs::Error) -> Step {
    Step::Done(Outcome::Failed(CallError::Js(Box::new(js_error_from(
        ctx, e,
    )))))
}

/// The call's first slice: the script's module, its export called on the
/// arguments.
fn first_run<'js>(
    ctx: &Ctx<'js>,
    cp: &Checkpoint<'_>,
    script: &StrictScript,
    header: &Header,
    args: &[u8],
    call: &StrictCall,
) -> Step {
    // SAFETY: the store only holds bytecode `compile_script` had this
    // process's engine write (JS_WriteObject), never bytes from elsewhere.
    let module = match unsafe { Module::load(ctx.clone(), &script.bytecode) } {
        Ok(m) => m,
        Err(e) => return thrown(ctx, e),
    };
    let (module, evaluated) = match module.eval() {
        Ok(m) => m,
        Err(e) => return thrown(ctx, e),
    };
    // Top-level code with `await` settles on its jobs; a timer it awaits
    // would need a turn, which a module's evaluation does not get.
    run_jobs(ctx, &evaluated, call);
    match evaluated.state() {
        PromiseState::Resolved => {}
        PromiseState::Rejected => return rejected(ctx, &evaluated),
        PromiseState::Pending => {
            return Step::Done(Outcome::Failed(CallError::Js(Box::new(JsError::new(
                "Error",
                "the script's top-level code did not settle without timers",
            )))))
        }
    }
    let export = module
        .namespace()
        .and_then(|ns| ns.get::<_, Value>(header.export.as_str()));
    let f = match export {
        Ok(v) => v.into_function(),
        Err(e) => return thrown(ctx, e),
    };
    let Some(f) = f else {
        return Step::Done(Outcome::Failed(CallError::UnknownTask(format!(
            "{} has no exported function {:?}",
            script.name, header.export
        ))));
    };
    // `()` is `undefined` in the wire form: no argument, not one.
    const NO_ARGUMENTS: [u8; 2] = [ARRAY, 0];
    let args = if args == [UNDEFINED] {
        &NO_ARGUMENTS[..]
    } else {
        args
    };
    let returned = ConvertCache::new(ctx).call_spread(ctx, &f, args);
    let value = match returned {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return thrown(ctx, e),
        Err(e) => return Step::Done(Outcome::Failed(CallError::Payload(e.into()))),
    };
    let Some(promise) = value.as_promise().cloned() else {
        return Step::Done(outcome_of(ctx, cp, &value, call));
    };
    run_jobs(ctx, &promise, call);
    settle(ctx, cp, &promise, call).unwrap_or_else(|| Step::Waiting(Persistent::save(ctx, promise)))
}

/// Runs queued jobs until `promise` settles, none is left, or the call
/// went over a budget (after a caught out-of-memory error, say: its
/// handlers must not go on running) or its caller left.
fn run_jobs<'js>(ctx: &Ctx<'js>, promise: &Promise<'js>, call: &StrictCall) {
    for _ in 0..JOBS_PER_SLICE {
        if promise.state() != PromiseState::Pending
            || call.budget.hit.get().is_some()
            || call.budget.stopped()
            || !ctx.execute_pending_job()
        {
            break;
        }
    }
}

/// A later slice of a pending call: its due timers, then its jobs.
fn resume<'js>(ctx: &Ctx<'js>, cp: &Checkpoint<'_>, call: &StrictCall, now: Instant) -> Step {
    let Some(saved) = call.promise.clone() else {
        return Step::Done(Outcome::Failed(CallError::WorkerLost));
    };
    let promise = match saved.clone().restore(ctx) {
        Ok(p) => p,
        Err(e) => return thrown(ctx, e),
    };
    if let Some(failure) = call.fresh.timers.fire_due(ctx, now).into_iter().next() {
        let error = js_error_of(ctx, failure.thrown);
        return Step::Done(Outcome::Failed(CallError::Js(Box::new(error))));
    }
    run_jobs(ctx, &promise, call);
    settle(ctx, cp, &promise, call).unwrap_or(Step::Waiting(saved))
}

/// The outcome of a promise that settled (`None` while it is pending).
fn settle<'js>(
    ctx: &Ctx<'js>,
    cp: &Checkpoint<'_>,
    promise: &Promise<'js>,
    call: &StrictCall,
) -> Option<Step> {
    match promise.state() {
        PromiseState::Pending => None,
        PromiseState::Resolved => {
            let value = promise.result::<Value>().and_then(Result::ok);
            let value = value.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
            Some(Step::Done(outcome_of(ctx, cp, &value, call)))
        }
        PromiseState::Rejected => Some(rejected(ctx, promise)),
    }
}

fn rejected<'js>(ctx: &Ctx<'js>, promise: &Promise<'js>) -> Step {
    let error = match promise.result::<Value>() {
        Some(Err(e)) => js_error_from(ctx, e),
        _ => JsError::new("Error", "the promise rejected"),
    };
    Step::Done(Outcome::Failed(CallError::Js(Box::new(error))))
}

/// The call's result in the wire form, within its output budget. The
/// conversion's own recursion is knit's, not the script's: the stack
/// band is checked before it.
fn outcome_of<'js>(
    ctx: &Ctx<'js>,
    cp: &Checkpoint<'_>,
    value: &Value<'js>,
    call: &StrictCall,
) -> Outcome {
    cp.end();
    let limits = WireLimits {
        max_bytes: call.output_max,
        ..WireLimits::default()
    };
    let mut out = Vec::new();
    match from_js(ctx, value, &mut out, &limits) {
        Ok(()) => Outcome::from_encoded(&mut out),
        Err(e) => {
            if matches!(e, WireError::TooLarge { .. })
                && call.output_max == call.budget.limits.output_bytes
            {
                call.budget.exceed(LimitKind::Output);
            }
            Outcome::Failed(CallError::Payload(e.into()))
        }
    }
}

/// The most bytes of each text of a strict call's thrown error (its name,
/// message and stack) that come back: the output budget, at most 64 KiB.
fn cap_error(step: Step, output_bytes: usize) -> Step {
    let Step::Done(Outcome::Failed(CallError::Js(mut e))) = step else {
        return step;
    };
    let max = output_bytes.min(64 << 10);
    for text in [&mut e.name, &mut e.message] {
        cut(text, max);
    }
    if let Some(stack) = &mut e.stack {
        cut(stack, max);
    }
    Step::Done(Outcome::Failed(CallError::Js(e)))
}

/// Cuts `text` to at most `max` bytes (at a character boundary), saying so.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(12);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(" \u{2026} (cut)");
}
