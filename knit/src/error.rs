//! Errors of calls and of pool creation.

use knit_transport::TransportError;

/// Why a payload could not cross.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The encoded payload is larger than the pool's `max_payload_bytes`.
    #[error("payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value could not be encoded.
    #[error("cannot encode payload: {0}")]
    Encode(String),
    /// The bytes could not be decoded as the expected type.
    #[error("cannot decode payload: {0}")]
    Decode(String),
}

/// How a call can fail. Every call settles exactly once, with its value or one
/// of these.
///
/// ```
/// use knit::CallError;
/// let e = CallError::Task("out of stock".into());
/// assert_eq!(e.to_string(), "task failed: out of stock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The task returned `Err(e)`; this holds `e`'s `Display` text.
    #[error("task failed: {0}")]
    Task(String),
    /// The task panicked; this holds the panic message. The worker goes on serving.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The argument or the result could not be encoded, decoded, or was too large.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// No task with this name or id is registered in this binary.
    #[error("unknown task: {0}")]
    UnknownTask(String),
    /// The pool was shut down before the call could be accepted, or (with
    /// `Pool::shutdown_now`) before it ran.
    #[error("the pool is closed")]
    Closed,
    /// The caller cancelled the call (`Call::cancel`). A call cancelled while
    /// still queued never runs.
    #[error("the call was cancelled")]
    Aborted,
    /// The call's budget ran out (counted from when it was made). The task was
    /// signalled to abort and its late result is dropped.
    #[error("the call timed out")]
    Timeout,
    /// `max_queue` calls were already in flight and the policy is `Reject`.
    #[error("the pool's queue is full")]
    QueueFull,
    /// Every slot of the pool's call table (`max_in_flight`, which is also the
    /// capacity of the abort flags) holds a call.
    #[error("too many calls in flight (the limit is {limit})")]
    TooManyInFlight {
        /// The pool's `max_in_flight`.
        limit: usize,
    },
    /// The worker running the call died (or was declared stuck); the call's
    /// outcome is lost. Calls still queued on that lane move to the lane's
    /// new worker; if none can be started, they and every later call sent
    /// to that lane fail with this error too.
    #[error("the worker running the call was lost")]
    WorkerLost,
    /// A task waited for a call queued behind itself: one of the pool's own
    /// workers blocked on a call that only that worker could run next (a
    /// `Call` made outside the pool and handed to the task). The call is
    /// cancelled instead of leaving the lane stuck. (Calls a task makes
    /// itself never fail this way: a worker waiting for one runs it itself.)
    #[error("the call waits for its own worker: waiting for it would deadlock")]
    WouldDeadlock,
}

/// Why a pool could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The options are inconsistent.
    #[error("invalid pool options: {0}")]
    InvalidOptions(String),
    /// A lane could not be set up.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// Two registered tasks hash to the same id (rename one of them).
    #[error("tasks {first} and {second} have the same id {id:#018x}")]
    DuplicateTaskId {
        /// Path of one task.
        first: String,
        /// Path of the other.
        second: String,
        /// The shared id.
        id: u64,
    },
}
