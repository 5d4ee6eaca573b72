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
mod codec;
mod cx;
mod deadline;
mod error;
#[cfg(test)]
mod fault;
mod inline;
mod lane;
mod lane_lock;
mod options;
mod pool;
mod pool_ref;
mod queue;
mod registry;
mod run;
mod shared;
mod stats;
mod table;
mod worker;

pub use balance::{Balance, Balancer, LaneLoad};
pub use call::{Call, CancelHandle, Cancelled};
pub use caller::Caller;
pub use cx::TaskCx;
pub use error::{CallError, PayloadError, PoolError};
pub use knit_macros::task;
pub use options::{InlinePosition, Inliner, PoolOptions, QueuePolicy};
pub use pool::{create_pool, Pool};
pub use stats::{FailedCounts, LaneStats, Percentiles, PoolStats};

mod registry_slice {
    use crate::registry::TaskEntry;

    /// Every `#[task]` in the binary, gathered by the linker.
    #[linkme::distributed_slice]
    pub static TASKS: [TaskEntry];
}

/// What the `#[task]` macro expands to refers to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::block_on::block_on;
    pub use crate::registry::{task_id, RunFn, TaskEntry, TaskFailure};
    pub use crate::registry_slice::TASKS;
    pub use linkme;
    pub use linkme::distributed_slice;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    /// Decodes a task's argument.
    pub fn decode_input<T: DeserializeOwned>(input: &[u8]) -> Result<T, TaskFailure> {
        crate::codec::decode(input).map_err(TaskFailure::from)
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
