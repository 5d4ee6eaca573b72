//! JS timers on a worker: `setTimeout`, `setInterval`, `clearTimeout` and
//! `clearInterval`, kept in a deadline heap that the worker's event loop
//! fires (`queueMicrotask` is the engine's own).
//!
//! A worker parks until the earliest deadline instead of polling (LLRT ticks
//! every millisecond): `next_deadline` tells the loop how long it may sleep.
//! Each timer remembers the call that was running JS when it was set
//! (`set_owner`), so that an error thrown by its callback reaches that call,
//! and so that a call's timers can be cleared with it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::function::{Opt, Rest};
use rquickjs::{Ctx, Function, Persistent, Value};

/// The delay a timer is given when asked for less (HTML clamps nested timers
/// to 4 ms; a worker has no frames to protect, so only negative and NaN
/// delays are raised, to zero).
const MIN_DELAY: Duration = Duration::ZERO;

/// Timer ids start here, so that 0 (what `clearTimeout(undefined)` would
/// look up) is never a timer.
const FIRST_ID: u32 = 1;

/// One worker's timers. Cheap to clone (it is shared with the JS functions it
/// installs); not `Send`: it lives and dies on its worker's engine thread.
#[derive(Clone, Default)]
pub(crate) struct Timers(Rc<RefCell<State>>);

#[derive(Default)]
struct State {
    next_id: u32,
    /// (deadline, order set) → id; entries whose id is gone were cleared.
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    set_order: u64,
    timers: HashMap<u32, Timer>,
    /// The call running JS now, which owns the timers set meanwhile.
    owner: Option<u64>,
    /// The most timers set at once (`None`: no cap; a strict call has one).
    limit: Option<usize>,
}

struct Timer {
    callback: Persistent<Function<'static>>,
    args: Vec<Persistent<Value<'static>>>,
    /// Set for `setInterval`.
    every: Option<Duration>,
    owner: Option<u64>,
}

/// A timer callback that threw.
pub(crate) struct TimerFailure<'js> {
    /// The call that set the timer, if one was running.
    pub owner: Option<u64>,
    /// What the callback threw.
    pub thrown: Value<'js>,
}

impl Timers {
    /// Installs the four timer functions as globals of `ctx`.
    pub(crate) fn install<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        let globals = ctx.globals();
        for (name, repeat) in [("setTimeout", false), ("setInterval", true)] {
            let timers = self.clone();
            let set = move |ctx: Ctx<'js>,
                            callback: Function<'js>,
                            delay: Opt<f64>,
                            args: Rest<Value<'js>>| {
                timers.set(&ctx, callback, delay.0.unwrap_or(0.0), args.0, repeat)
            };
            globals.set(name, Function::new(ctx.clone(), set)?.with_name(name)?)?;
        }
        for name in ["clearTimeout", "clearInterval"] {
            let timers = self.clone();
            let clear = move |id: Opt<Value<'js>>| {
                if let Some(id) = id.0.and_then(|v| v.as_number()) {
                    timers.clear(id);
                }
            };
            globals.set(name, Function::new(ctx.clone(), clear)?.with_name(name)?)?;
        }
        Ok(())
    }

    fn set<'js>(
        &self,
        ctx: &Ctx<'js>,
        callback: Function<'js>,
        delay_ms: f64,
        args: Vec<Value<'js>>,
        repeat: bool,
    ) -> rquickjs::Result<u32> {
        if let Some(limit) = self.0.borrow().limit {
            if self.0.borrow().timers.len() >= limit {
                return Err(rquickjs::Exception::throw_range(
                    ctx,
                    &format!("more than {limit} timers set at once"),
                ));
            }
        }
        let delay = if delay_ms.is_finite() && delay_ms > 0.0 {
            // Beyond any real wait (about 31 years of milliseconds, as
            // browsers clamp to i32 milliseconds) it is a wait forever.
            Duration::from_secs_f64((delay_ms / 1e3).min(1e9))
        } else {
            MIN_DELAY
        };
        let mut state = self.0.borrow_mut();
        let id = state.next_id.max(FIRST_ID);
        state.next_id = id.wrapping_add(1).max(FIRST_ID);
        let timer = Timer {
            callback: Persistent::save(ctx, callback),
            args: args.into_iter().map(|a| Persistent::save(ctx, a)).collect(),
            every: repeat.then_some(delay),
            owner: state.owner,
        };
        state.timers.insert(id, timer);
        state.push(id, Instant::now() + delay);
        Ok(id)
    }

    /// Timers that allow at most `limit` timers set at once.
    pub(crate) fn with_limit(limit: usize) -> Timers {
        let timers = Timers::default();
        timers.0.borrow_mut().limit = Some(limit);
        timers
    }

    fn clear(&self, id: f64) {
        if id.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&id) {
            // Dropped after the borrow ends: freeing its JS values may run
            // finalizers, which must not find this state borrowed.
            let gone = self.0.borrow_mut().timers.remove(&(id as u32));
            drop(gone);
        }
    }

    /// Makes `owner` the call that owns timers set from now on.
    pub(crate) fn set_owner(&self, owner: Option<u64>) {
        self.0.borrow_mut().owner = owner;
    }

    /// When the earliest timer is due, if any is set.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut state = self.0.borrow_mut();
        while let Some(Reverse((at, _, id))) = state.heap.peek().copied() {
            if state.timers.contains_key(&id) {
                return Some(at);
            }
            state.heap.pop();
        }
        None
    }

    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests only.
    /// How many timers are set.
    pub(crate) fn len(&self) -> usize {
        self.0.borrow().timers.len()
    }

    /// Runs every timer due by `now`, in deadline order, once each (an
    /// interval is set again from `now`; one that came due while this runs
    /// waits for the next turn, so a zero-delay interval cannot starve the
    /// loop). Returns the callbacks that threw, with their owners.
    pub(crate) fn fire_due<'js>(&self, ctx: &Ctx<'js>, now: Instant) -> Vec<TimerFailure<'js>> {
        self.fire_due_with(ctx, now, &mut |_, _| {})
    }

    /// [`Timers::fire_due`], calling `around(owner, true)` before each
    /// callback and `around(owner, false)` after it (the worker runs the
    /// promise jobs a callback queued as that callback's call).
    pub(crate) fn fire_due_with<'js>(
        &self,
        ctx: &Ctx<'js>,
        now: Instant,
        around: &mut dyn FnMut(Option<u64>, bool),
    ) -> Vec<TimerFailure<'js>> {
        let mut due = Vec::new();
        {
            let mut state = self.0.borrow_mut();
            // Intervals go back into the heap only after the sweep, or one
            // with a zero delay would come due again within it, forever.
            let mut again = Vec::new();
            while let Some(Reverse((at, _, id))) = state.heap.peek().copied() {
                if at > now {
                    break;
                }
                state.heap.pop();
                let Some(timer) = state.timers.get(&id) else {
                    continue;
                };
                let call = (timer.callback.clone(), timer.args.clone(), timer.owner);
                match timer.every {
                    Some(every) => again.push((id, now + every)),
                    None => {
                        state.timers.remove(&id);
                    }
                }
                due.push(call);
            }
            for (id, at) in again {
                state.push(id, at);
            }
        }
        let mut failures = Vec::new();
        for (callback, args, owner) in due {
            // The owner runs again while its callback does: timers it sets
            // are its own too.
            self.set_owner(owner);
            around(owner, true);
            let ran = run(ctx, callback, args);
            around(owner, false);
            if let Err(thrown) = ran {
                failures.push(TimerFailure { owner, thrown });
            }
        }
        self.set_owner(None);
        failures
    }

    /// Whether a timer set by a call `owned` says yes to is still set.
    pub(crate) fn any_owned(&self, owned: impl Fn(u64) -> bool) -> bool {
        self.0
            .borrow()
            .timers
            .values()
            .any(|t| t.owner.is_some_and(&owned))
    }

    /// Clears every timer `owner` set; returns how many.
    pub(crate) fn clear_owned_by(&self, owner: u64) -> usize {
        let gone: Vec<Timer> = {
            let mut state = self.0.borrow_mut();
            let ids: Vec<u32> = state
                .timers
                .iter()
                .filter(|(_, t)| t.owner == Some(owner))
                .map(|(&id, _)| id)
                .collect();
            ids.iter()
                .filter_map(|id| state.timers.remove(id))
                .collect()
        };
        gone.len()
    }

    /// Drops every timer. Must run before the engine's runtime is freed: a
    /// timer holds JS values, and QuickJS refuses to free a runtime with
    /// values still alive.
    pub(crate) fn clear_all(&self) {
        let gone = std::mem::take(&mut self.0.borrow_mut().timers);
        self.0.borrow_mut().heap.clear();
        drop(gone);
    }
}

impl State {
    fn push(&mut self, id: u32, at: Instant) {
        self.set_order += 1;
        let order = self.set_order;
        self.heap.push(Reverse((at, order, id)));
    }
}

/// Calls a timer's callback with its arguments; `Err` holds what it threw.
fn run<'js>(
    ctx: &Ctx<'js>,
    callback: Persistent<Function<'static>>,
    args: Vec<Persistent<Value<'static>>>,
) -> Result<(), Value<'js>> {
    let restore = || -> rquickjs::Result<(Function<'js>, Vec<Value<'js>>)> {
        let f = callback.restore(ctx)?;
        let args = args
            .into_iter()
            .map(|a| a.restore(ctx))
            .collect::<rquickjs::Result<Vec<_>>>()?;
        Ok((f, args))
    };
    let (f, args) = restore().map_err(|e| caught(ctx, e))?;
    let mut call_args = rquickjs::function::Args::new(ctx.clone(), args.len());
    call_args.push_args(args).map_err(|e| caught(ctx, e))?;
    f.call_arg::<Value<'js>>(call_args)
        .map(drop)
        .map_err(|e| caught(ctx, e))
}

/// The JS value behind an rquickjs error (the pending exception when it is
/// one; otherwise a string saying what failed).
fn caught<'js>(ctx: &Ctx<'js>, e: rquickjs::Error) -> Value<'js> {
    if e.is_exception() {
        ctx.catch()
    } else {
        rquickjs::String::from_str(ctx.clone(), &e.to_string())
            .map(|s| s.into_value())
            .unwrap_or_else(|_| Value::new_undefined(ctx.clone()))
    }
}

#[cfg(test)]
mod tests;
