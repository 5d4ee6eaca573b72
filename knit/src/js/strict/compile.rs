//! Compiling an untrusted script to bytecode on the caller's thread, in a strict context with the strict loader.

use rquickjs::context::intrinsic::Eval;
use rquickjs::module::WriteOptions;
use rquickjs::{Context, Module, Runtime};

use super::fresh::{set_strict_loader, StrictIntrinsics};
use crate::js::host::JsSetup;
use crate::js::modules::describe;
use crate::script_error::ScriptError;

/// The longest source `Pool::untrusted` compiles.
pub(crate) const MAX_SOURCE: usize = 4 << 20;

/// The compiler's heap and stack: enough for any source under
/// [`MAX_SOURCE`], and a bound on what a hostile one can make it use.
const COMPILE_MEMORY: usize = 512 << 20;
const COMPILE_STACK: usize = 512 << 10;

/// Compiles `source` as the ES module `name`; its bytecode.
pub(crate) fn compile_script(
    setup: &JsSetup,
    name: &str,
    source: &str,
) -> Result<Vec<u8>, ScriptError> {
    let engine = |e: rquickjs::Error| ScriptError::Compile(e.to_string());
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(COMPILE_MEMORY);
    rt.set_max_stack_size(COMPILE_STACK);
    set_strict_loader(&rt, setup);
    // The parser is the Eval intrinsic: the compiling context has it (no
    // script code runs here); the contexts that run the bytecode do not.
    let ctx = Context::custom::<(StrictIntrinsics, Eval)>(&rt).map_err(engine)?;
    ctx.with(|ctx| {
        let declared = Module::declare(ctx.clone(), name, source).and_then(|m| {
            m.write(WriteOptions {
                // The source only serves Function.prototype.toString.
                strip_source: true,
                ..Default::default()
            })
        });
        declared.map_err(|e| {
            let failure = describe(&ctx, e);
            match (failure.line, failure.column) {
                (Some(line), Some(column)) => ScriptError::Syntax {
                    line,
                    column,
                    message: failure.message,
                },
                _ => ScriptError::Compile(failure.message),
            }
        })
    })
}
