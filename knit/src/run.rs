//! Running one task on encoded bytes, turning every failure into a `CallError`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::CallError;
use crate::registry::TaskEntry;
use crate::slot::Outcome;

/// Runs `entry` on `input`; a panic becomes `CallError::Panicked` and the thread
/// goes on.
pub(crate) fn run_task(entry: &TaskEntry, input: &[u8], max_result: usize) -> Outcome {
    let mut out = Vec::new();
    match catch_unwind(AssertUnwindSafe(|| {
        (entry.run)(input, &mut out, max_result)
    })) {
        Ok(Ok(())) => Ok(out),
        Ok(Err(failure)) => Err(failure.0),
        Err(panic) => Err(CallError::Panicked(panic_message(panic.as_ref()))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}
