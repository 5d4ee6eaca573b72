//! Compiling an untrusted script to bytecode, on a thread of its own with a known stack and a bounded heap, with the strict loader.

use rquickjs::context::intrinsic::Eval;
use rquickjs::module::WriteOptions;
use rquickjs::{Context, Module, Runtime};

use super::fresh::{set_strict_loader, StrictIntrinsics};
use crate::js::host::JsSetup;
use crate::js::modules::describe;
use crate::script_error::ScriptError;

/// The longest source `Pool::untrusted` compiles.
pub(crate) const MAX_SOURCE: usize = 4 << 20;

/// The largest bytecode kept for one script.
pub(crate) const MAX_BYTECODE: usize = 16 << 20;

/// The compiler's heap: 16 bytes per source byte and 8 MiB. The parser
/// polls no interrupt, so this is also what bounds its time: a source made
/// to be slow to compile (case-folding regex literals, say: ~250 µs and
/// ~5 KB each) runs out of it first.
fn compile_memory(source: usize) -> usize {
    source.saturating_mul(16).saturating_add(8 << 20)
}

/// The compiler's stack limit, and the stack of the thread it runs on (the
/// caller's thread may have less left than the limit assumes).
const COMPILE_STACK: usize = 512 << 10;
const COMPILER_THREAD_STACK: usize = 4 << 20;

/// Compiles `source` as the ES module `name` on a compiler thread; its
/// bytecode.
pub(crate) fn compile_script(
    setup: &JsSetup,
    name: &str,
    source: &str,
) -> Result<Vec<u8>, ScriptError> {
    std::thread::scope(|scope| {
        let compiler = std::thread::Builder::new()
            .name("knit-compile".into())
            .stack_size(COMPILER_THREAD_STACK)
            .spawn_scoped(scope, || compile_here(setup, name, source))
            .map_err(|e| ScriptError::Compile(format!("no compiler thread: {e}")))?;
        compiler
            .join()
            .unwrap_or_else(|_| Err(ScriptError::Compile("the compiler panicked".into())))
    })
}

fn compile_here(setup: &JsSetup, name: &str, source: &str) -> Result<Vec<u8>, ScriptError> {
    let engine = |e: rquickjs::Error| ScriptError::Compile(e.to_string());
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(compile_memory(source.len()));
    rt.set_max_stack_size(COMPILE_STACK);
    set_strict_loader(&rt, setup);
    // The parser is the Eval intrinsic: the compiling context has it (no
    // script code runs here); the contexts that run the bytecode do not.
    let ctx = Context::custom::<(StrictIntrinsics, Eval)>(&rt).map_err(engine)?;
    let bytecode = ctx.with(|ctx| {
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
    })?;
    if bytecode.len() > MAX_BYTECODE {
        return Err(ScriptError::Compile(format!(
            "its bytecode takes {} bytes, more than the {MAX_BYTECODE}-byte limit",
            bytecode.len()
        )));
    }
    Ok(bytecode)
}
