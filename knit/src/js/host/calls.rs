//! Starting a JS call in the engine (an export, an eval, a session's eval) and settling it, now or when its promise does.

use std::rc::Rc;

use rquickjs::function::This;
use rquickjs::promise::PromiseState;
use rquickjs::{Ctx, Function, Persistent, Promise, Value};

use super::context::JsContext;
use super::{EngineState, JsEngine};
use crate::error::CallError;
use crate::js::convert::{from_js, ConvertCache};
use crate::js::error::js_error_from;
use crate::js::modules::unknown_export;
use crate::js::targets::{self, Target};
use crate::js::wire::from_wire;
use crate::js_limits::Permission;
use crate::lanes::Begun;
use crate::table::{Outcome, Ticket};

/// Promise jobs run right after a call's own code, before the call counts
/// as pending: an `async` function that awaits nothing slow settles here.
const JOBS_AFTER_CALL: usize = 256;

/// Where a call's script or function runs.
#[derive(Clone, Copy)]
enum Place {
    Main,
    Session(u64),
}

pub(super) fn begin(engine: &mut JsEngine, ticket: Ticket, task_id: u64, input: &[u8]) -> Begun {
    let call = ticket.call_id();
    // The worker's own context caches each export it has looked up; only a
    // miss asks which target the id names.
    let cached = engine.main().functions.borrow().get(&task_id).cloned();
    if let Some((f, module)) = cached {
        return call_function(engine, call, f, module, input);
    }
    let Some(target) = targets::target(task_id) else {
        return failed(CallError::UnknownTask(format!("JS target {task_id:#018x}")));
    };
    match target {
        Target::Export { module, export } => {
            let main = engine.main();
            let found = main.ctx.with(|ctx| {
                let modules = main.modules.as_ref()?;
                let f = modules.export(&ctx, &module, &export)?;
                Some(Persistent::save(&ctx, f))
            });
            let Some(f) = found else {
                return failed(unknown_export(&module, &export));
            };
            let module: Rc<str> = module.into();
            main.functions
                .borrow_mut()
                .insert(task_id, (f.clone(), module.clone()));
            call_function(engine, call, f, module, input)
        }
        Target::Strict => {
            let state = engine.state.clone();
            engine.strict.begin(&state, ticket, input)
        }
        Target::Eval | Target::SessionEval
            if engine.state.setup.permission == Permission::Strict =>
        {
            failed(CallError::Js(Box::new(crate::js_error::JsError::new(
                "EvalError",
                "eval is not allowed: the pool's JsOptions::permission is Strict",
            ))))
        }
        Target::Eval => match from_wire::<String>(input) {
            Ok(source) => eval(engine, call, Place::Main, source),
            Err(e) => failed(e.into()),
        },
        Target::SessionEval => match from_wire::<(u64, String)>(input) {
            Ok((session, source)) => eval(engine, call, Place::Session(session), source),
            Err(e) => failed(e.into()),
        },
        Target::SessionClose => match from_wire::<u64>(input) {
            Ok(session) => {
                engine.close_session(session);
                // `undefined` in the wire form.
                Begun::Done(Outcome::from_encoded(&mut vec![0]))
            }
            Err(e) => failed(e.into()),
        },
    }
}

fn failed(e: CallError) -> Begun {
    Begun::Done(Outcome::Failed(e))
}

/// Calls an exported function with the wire array `input` spread as its
/// arguments.
fn call_function(
    engine: &mut JsEngine,
    call: u64,
    f: Persistent<Function<'static>>,
    module: Rc<str>,
    input: &[u8],
) -> Begun {
    let state = engine.state.clone();
    let main = engine.main();
    main.ctx.with(|ctx| {
        let f = match f.restore(&ctx) {
            Ok(f) => f,
            Err(e) => return failed(CallError::Js(Box::new(js_error_from(&ctx, e)))),
        };
        // `JsTask::apply(())` promises a call with no argument, but `()` is
        // `undefined` in the wire form, not an empty array: read it as one.
        const NO_ARGUMENTS: [u8; 2] = [crate::js::wire::ARRAY, 0];
        let input = if input == [crate::js::wire::UNDEFINED] {
            &NO_ARGUMENTS[..]
        } else {
            input
        };
        let returned = run_as(&state, main, call, Some(module), || {
            main.convert.borrow_mut().call_spread(&ctx, &f, input)
        });
        let returned = match returned {
            Ok(r) => r,
            Err(e) => return failed(e.into()),
        };
        if let Ok(v) = &returned {
            if !v.is_promise() {
                // The common case, with this context's conversion caches.
                let mut convert = main.convert.borrow_mut();
                return Begun::Done(outcome_with(&ctx, &state, v, &mut convert));
            }
        }
        complete(&ctx, &state, call, returned, false, None)
    })
}

/// Evaluates `source` as a global script with top-level `await`; the
/// call's value is the script's completion value.
fn eval(engine: &mut JsEngine, call: u64, place: Place, source: String) -> Begun {
    let state = engine.state.clone();
    let context = match place {
        Place::Main => engine.main(),
        Place::Session(id) => match engine.session(id) {
            Ok(cx) => cx,
            Err(e) => {
                return failed(CallError::Js(Box::new(crate::js_error::JsError::new(
                    "InternalError",
                    e.to_string(),
                ))))
            }
        },
    };
    context.ctx.with(|ctx| {
        let returned = run_as(&state, context, call, Some(eval_module()), || {
            ctx.eval_promise(source).map(Promise::into_value)
        });
        let session = match place {
            Place::Main => None,
            Place::Session(id) => Some(id),
        };
        complete(&ctx, &state, call, returned, true, session)
    })
}

/// Runs `f` as call `call`'s own code: the interrupt handler, the console
/// and the timers it sets know which call it is.
fn run_as<R>(
    state: &EngineState,
    context: &JsContext,
    call: u64,
    module: Option<Rc<str>>,
    f: impl FnOnce() -> R,
) -> R {
    state.current.set(Some(call));
    *state.module.borrow_mut() = module;
    context.timers.set_owner(Some(call));
    let r = f();
    context.timers.set_owner(None);
    *state.module.borrow_mut() = None;
    state.current.set(None);
    r
}

/// The console's module name for a script (`pool.eval`, a session's eval).
fn eval_module() -> Rc<str> {
    thread_local! {
        static EVAL: Rc<str> = Rc::from("eval");
    }
    EVAL.with(Rc::clone)
}

/// Settles a call on what its code returned: a thrown exception, a value,
/// or a promise (after the jobs it queued have run, it may have settled;
/// otherwise the call waits on it). `completion`: the value is an async
/// script's completion object, whose `value` is the call's value; `session`:
/// the session whose context it runs in.
fn complete<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<EngineState>,
    call: u64,
    returned: rquickjs::Result<Value<'js>>,
    completion: bool,
    session: Option<u64>,
) -> Begun {
    let value = match returned {
        Ok(v) => v,
        Err(e) => return failed(CallError::Js(Box::new(js_error_from(ctx, e)))),
    };
    let Some(promise) = value.as_promise().cloned() else {
        return Begun::Done(outcome_of(ctx, state, value, false));
    };
    // These jobs run as the call's own code: the call is not pending yet,
    // so the interrupt handler would otherwise see no call to stop, and an
    // endless loop after the call's first `await` could never be stopped
    // by its timeout or a cancel (nor would console lines name the call).
    state.current.set(Some(call));
    for _ in 0..JOBS_AFTER_CALL {
        if promise.state() != PromiseState::Pending || !ctx.execute_pending_job() {
            break;
        }
    }
    state.current.set(None);
    match promise.state() {
        PromiseState::Resolved => {
            let value = promise.result::<Value>().and_then(Result::ok);
            let value = value.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
            Begun::Done(outcome_of(ctx, state, value, completion))
        }
        PromiseState::Rejected => {
            let thrown = match promise.result::<Value>() {
                Some(Err(e)) => js_error_from(ctx, e),
                _ => crate::js_error::JsError::new("Error", "the promise rejected"),
            };
            failed(CallError::Js(Box::new(thrown)))
        }
        PromiseState::Pending => match wait_on(ctx, state, call, &promise, completion, session) {
            Ok(()) => Begun::Pending,
            Err(e) => failed(CallError::Js(Box::new(js_error_from(ctx, e)))),
        },
    }
}

/// Makes `call` pending on `promise`: its reactions settle the call.
fn wait_on<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<EngineState>,
    call: u64,
    promise: &Promise<'js>,
    completion: bool,
    session: Option<u64>,
) -> rquickjs::Result<()> {
    let on_value = {
        let state = state.clone();
        move |ctx: Ctx<'js>, value: Value<'js>| {
            let outcome = outcome_of(&ctx, &state, value, completion);
            state.settle(call, outcome);
        }
    };
    let on_error = {
        let state = state.clone();
        move |ctx: Ctx<'js>, thrown: Value<'js>| {
            let error = crate::js::error::js_error_of(&ctx, thrown);
            state.settle(call, Outcome::Failed(CallError::Js(Box::new(error))));
        }
    };
    let on_value = Function::new(ctx.clone(), on_value)?;
    let on_error = Function::new(ctx.clone(), on_error)?;
    let then: Function = promise.get("then")?;
    then.call::<_, Value>((This(promise.clone()), on_value, on_error))?;
    // Only once `then` took the reactions (it may throw: a script can
    // replace it), or a call that settled at once would stay listed.
    state.pending.borrow_mut().insert(call, session);
    Ok(())
}

/// A call's outcome from its JS value, converted with `convert`.
fn outcome_with<'js>(
    ctx: &Ctx<'js>,
    state: &EngineState,
    value: &Value<'js>,
    convert: &mut ConvertCache,
) -> Outcome {
    let limits = state.limits();
    // A small result is copied out of the buffer, which the next call reuses.
    let mut out = state.scratch.borrow_mut();
    out.clear();
    match convert.write_wire(ctx, value, &mut out, &limits) {
        Ok(()) => Outcome::from_encoded(&mut out),
        Err(e) => Outcome::Failed(CallError::Payload(e.into())),
    }
}

/// A call's outcome from its JS value (`completion`: the `value` of an
/// async script's completion object).
fn outcome_of<'js>(
    ctx: &Ctx<'js>,
    state: &EngineState,
    value: Value<'js>,
    completion: bool,
) -> Outcome {
    let value = if completion {
        match value.as_object().map(|o| o.get::<_, Value>("value")) {
            Some(Ok(v)) => v,
            _ => value,
        }
    } else {
        value
    };
    let limits = state.limits();
    let mut out = Vec::new();
    match from_js(ctx, &value, &mut out, &limits) {
        Ok(()) => Outcome::from_encoded(&mut out),
        Err(e) => Outcome::Failed(CallError::Payload(e.into())),
    }
}
