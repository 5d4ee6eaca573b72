//! Host functions: the Rust `#[task]`s named in `JsOptions::expose`, callable from JS as `import { name } from "knit:host"`.
//!
//! A host function runs synchronously on the worker, inside the JS that
//! called it. Its arguments go through the same conversion as a JS call's
//! result (no argument is `()`, one is the task's argument, several are a
//! tuple); its result comes back the way a JS call's argument does. An
//! error (the task's `Err`, a panic, a value that does not convert) is
//! thrown as a JS `Error` whose message says what failed.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use rquickjs::function::Rest;
use rquickjs::{Array, Ctx, Exception, Function, Object, Value};

use super::setup::{Exposed, HOST_KEY};
use super::EngineState;
use crate::cx::TaskCx;
use crate::js::convert::{from_js, to_js};
use crate::run::panic_message;
use crate::table::Ticket;

/// What a strict context's host functions check when called (they are
/// installed before anyone knows which call will use the context).
#[derive(Default)]
pub(crate) struct Granted {
    /// The exposed functions the call may call (indexes among
    /// `JsSetup::exposed`), set when the call begins.
    pub indexes: RefCell<Vec<u16>>,
    /// Set once the call is over a budget: no host function runs then
    /// (a script that caught its own out-of-memory error, say, does
    /// nothing more outside the engine).
    pub over: Rc<Cell<Option<crate::error::LimitKind>>>,
}

/// Installs the host functions on `ctx`, as the non-enumerable global
/// `globalThis[Symbol.for("knit.host")]` that the `knit:host` module reads.
/// With `grants` (a strict context), only the exposed functions whose
/// indexes it holds when they are called run; the others throw a
/// `TypeError` saying they were not granted, and none runs once the call is
/// over a budget.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<EngineState>,
    grants: Option<&Rc<Granted>>,
) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    for index in 0..state.setup.exposed.len() {
        let state = state.clone();
        let name = state.setup.exposed[index].name.clone();
        let grants = grants.cloned();
        let call = move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            let exposed = &state.setup.exposed[index];
            if let Some(grants) = &grants {
                if grants.over.get().is_some() {
                    return Err(Exception::throw_internal(
                        &ctx,
                        "the call is over a budget: no host function runs",
                    ));
                }
                if !grants.indexes.borrow().contains(&(index as u16)) {
                    return Err(Exception::throw_type(
                        &ctx,
                        &format!(
                            "host function {} is not granted to this script",
                            exposed.entry.path()
                        ),
                    ));
                }
            }
            call_host(&ctx, &state, exposed, args.0)
        };
        let f = Function::new(ctx.clone(), call)?;
        host.set(name.as_str(), f.with_name(&name)?)?;
    }
    let object: Object = ctx.globals().get("Object")?;
    let freeze: Function = object.get("freeze")?;
    freeze.call::<_, Value>((host.clone(),))?;
    // Non-enumerable, read-only, not configurable (defined without `eval`:
    // strict contexts have none).
    let key = rquickjs::Symbol::new_global(ctx.clone(), HOST_KEY)?;
    ctx.globals()
        .prop(key, rquickjs::object::Property::from(host))?;
    Ok(())
}

fn call_host<'js>(
    ctx: &Ctx<'js>,
    state: &EngineState,
    exposed: &Exposed,
    mut args: Vec<Value<'js>>,
) -> rquickjs::Result<Value<'js>> {
    let arg = match args.len() {
        0 => Value::new_undefined(ctx.clone()),
        1 => args.pop().expect("one argument"),
        _ => {
            let tuple = Array::new(ctx.clone())?;
            for (i, v) in args.into_iter().enumerate() {
                tuple.set(i, v)?;
            }
            tuple.into_value()
        }
    };
    let limits = state.limits();
    let path = exposed.entry.path();
    let mut input = Vec::new();
    if let Err(e) = from_js(ctx, &arg, &mut input, &limits) {
        return Err(Exception::throw_type(
            ctx,
            &format!("the argument of host function {path}: {e}"),
        ));
    }
    // The call whose JS runs now; a host function called from a promise job
    // or a timer belongs to no known call, and its `TaskCx` names none.
    let ticket = state
        .current
        .get()
        .map(Ticket::from_call_id)
        .unwrap_or(Ticket {
            index: 0,
            gen: u32::MAX,
        });
    let cx = TaskCx::new(&state.table, ticket, state.lane);
    let mut out = Vec::new();
    let ran = catch_unwind(AssertUnwindSafe(|| {
        (exposed.run)(&input, &mut out, state.setup.max_payload, &cx)
    }));
    match ran {
        Ok(Ok(())) => to_js(ctx, &out).map_err(|e| {
            Exception::throw_internal(ctx, &format!("the result of host function {path}: {e}"))
        }),
        Ok(Err(failure)) => Err(Exception::throw_message(
            ctx,
            &format!("host function {path} failed: {}", failure.0),
        )),
        Err(panic) => Err(Exception::throw_message(
            ctx,
            &format!(
                "host function {path} panicked: {}",
                panic_message(panic.as_ref())
            ),
        )),
    }
}
