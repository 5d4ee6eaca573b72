//! knit: a shared-memory task pool.
//!
//! Register functions with [`task`], start a pool with [`create_pool`], and call
//! them as `pool.call.<task>(arg)`: the argument is encoded straight into a
//! shared-memory ring, a pinned worker thread runs the task, and the returned
//! [`Call`] yields the result (`.wait()` or `.await`).
//!
//! ```
//! use knit::{create_pool, CallError, PoolOptions};
//!
//! #[knit::task]
//! fn add(pair: (i64, i64)) -> i64 { pair.0 + pair.1 }
//!
//! #[knit::task]
//! fn checkout(qty: u32) -> Result<u32, String> {
//!     if qty == 0 { Err("empty order".into()) } else { Ok(qty) }
//! }
//!
//! let pool = create_pool(PoolOptions { threads: 2, ..Default::default() })?;
//! assert_eq!(pool.call.add((1, 2)).wait()?, 3);
//! let many: Vec<_> = (0..100).map(|i| pool.call.add((i, i))).collect();
//! let sums: Vec<i64> = many.into_iter().map(|c| c.wait().unwrap()).collect();
//! assert_eq!(sums[99], 198);
//! assert_eq!(pool.call.checkout(0).wait(), Err(CallError::Task("empty order".into())));
//! pool.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate self as knit;

mod admission;
mod affinity;
mod balance;
mod block_on;
mod call;
mod caller;
mod claimable;
mod codec;
mod cx;
mod deadline;
mod error;
#[cfg(test)]
mod fault;
#[cfg(feature = "js")]
pub mod js;
mod js_error;
#[cfg(feature = "js")]
mod js_limits;
#[cfg(feature = "js")]
mod js_module_error;
#[cfg(feature = "js")]
mod js_options;
mod lanes;
mod options;
mod pool;
#[cfg(feature = "js")]
mod pool_js;
mod pool_ref;
#[cfg(feature = "js")]
mod pool_strict;
#[cfg(feature = "tokio")]
mod reactor;
mod registry;
mod run;
#[cfg(feature = "js")]
mod script_error;
mod shared;
mod stats;
mod table;
mod task_error;

pub use balance::{Balance, Balancer, LaneLoad};
pub use call::{Call, CancelHandle, Cancelled};
pub use caller::Caller;
pub use codec::MAX_DEPTH;
pub use cx::TaskCx;
pub use error::{CallError, LimitKind, PayloadError, PoolError};
pub use js_error::JsError;
#[doc = include_str!("../docs/task.md")]
pub use knit_macros::task;
pub use options::{InlinePosition, Inliner, PoolOptions, QueuePolicy};
pub use pool::{create_pool, Pool};
#[cfg(feature = "js")]
pub use pool_js::{JsSession, JsTask};
#[cfg(feature = "js")]
pub use pool_strict::{Script, ScriptExport};
pub use stats::{FailedCounts, LaneStats, Percentiles, PoolStats};
pub use task_error::TaskError;

mod registry_slice {
    use crate::registry::TaskEntry;

    /// Every `#[task]` in the binary, gathered by the linker.
    #[linkme::distributed_slice]
    pub static TASKS: [TaskEntry];
}

/// What `#[task]` puts in a task's `run_wire`: the runner JS calls it
/// through (with the `js` feature), else nothing.
#[cfg(feature = "js")]
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_runner {
    ($runner:block) => {
        ::core::option::Option::Some($runner)
    };
}

/// What `#[task]` puts in a task's `run_wire`: the runner JS calls it
/// through (with the `js` feature), else nothing.
#[cfg(not(feature = "js"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_runner {
    ($runner:block) => {
        ::core::option::Option::None
    };
}

/// What the `#[task]` macro expands to refers to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::block_on::block_on;
    pub use crate::registry::{task_id, AsyncRunFn, RunFn, TaskEntry, TaskFailure, TaskFuture};
    pub use crate::registry_slice::TASKS;
    pub use crate::task_error::{
        NoPayload, NoSources, PayloadOfSerialize, Probe, SourcesOfDynError, SourcesOfError,
        SourcesOfSendError,
    };
    pub use linkme;
    pub use linkme::distributed_slice;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    /// Decodes the argument of the task at `path` (`module::name`), which
    /// names the task and `T` in its error.
    #[inline]
    pub fn decode_input<T: DeserializeOwned>(
        input: &[u8],
        path: &'static str,
    ) -> Result<T, TaskFailure> {
        crate::codec::decode(input)
            .map_err(|e| TaskFailure::bad_argument(e, path, std::any::type_name::<T>()))
    }

    /// How a task's result is told apart from its error: implemented for
    /// `Result` only, so a return type named `Result` (or marked
    /// `#[task(fallible)]`) that is not one fails to compile here.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a `Result`, so this #[knit::task] cannot return it as fallible",
        note = "a return type whose last path segment is `Result`, or a task marked \
                `#[task(fallible)]`, must be a `Result<T, E>`; mark the task \
                `#[task(fallible = false)]` to return it as a value"
    )]
    pub trait TaskResult {
        /// The value of a successful call.
        type Ok;
        /// The task's error.
        type Err;
        /// `self` as a `Result`.
        fn into_result(self) -> Result<Self::Ok, Self::Err>;
    }

    impl<T, E> TaskResult for Result<T, E> {
        type Ok = T;
        type Err = E;
        #[inline(always)]
        fn into_result(self) -> Result<T, E> {
            self
        }
    }

    /// Decodes the argument of the task at `path` from the JS wire form (a
    /// call from JS: a host function).
    #[cfg(feature = "js")]
    #[inline]
    pub fn decode_input_wire<T: DeserializeOwned>(
        input: &[u8],
        path: &'static str,
    ) -> Result<T, TaskFailure> {
        crate::js::from_wire(input)
            .map_err(|e| TaskFailure::bad_argument(e.into(), path, std::any::type_name::<T>()))
    }

    /// Encodes a task's result in the JS wire form (at most `max` bytes).
    #[cfg(feature = "js")]
    pub fn encode_output_wire<T: Serialize>(
        value: &T,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), TaskFailure> {
        crate::js::to_wire(value, out)
            .map_err(|e| TaskFailure::from(crate::error::PayloadError::from(e)))?;
        if out.len() > max {
            return Err(crate::error::PayloadError::TooLarge {
                len: out.len(),
                max,
            }
            .into());
        }
        Ok(())
    }

    /// Encodes a task's result (at most `max` bytes).
    pub fn encode_output<T: Serialize>(
        value: &T,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), TaskFailure> {
        crate::codec::encode_to_vec(value, out, max).map_err(TaskFailure::from)
    }
}
