//! Running one task on encoded bytes, turning every failure into a `CallError`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::cx::TaskCx;
use crate::error::CallError;
use crate::registry::TaskEntry;
use crate::table::Outcome;

/// Runs `entry` on `input`, encoding its result through `scratch` (a buffer the
/// runner reuses); a panic becomes `CallError::Panicked` and the thread goes on.
pub(crate) fn run_task(
    entry: &TaskEntry,
    input: &[u8],
    scratch: &mut Vec<u8>,
    max_result: usize,
    cx: &TaskCx<'_>,
) -> Outcome {
    scratch.clear();
    match catch_unwind(AssertUnwindSafe(|| {
        (entry.run)(input, scratch, max_result, cx)
    })) {
        Ok(Ok(())) => Outcome::from_encoded(scratch),
        Ok(Err(failure)) => Outcome::Failed(failure.0),
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            // A payload whose `Drop` panics unwinds out of here, past the
            // runner (which ends the thread, see `DeathWatch` in `lanes/worker/drain.rs`): with
            // the message a local of its own, that unwinding frees it.
            drop(panic);
            Outcome::Failed(CallError::Panicked(message))
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}
