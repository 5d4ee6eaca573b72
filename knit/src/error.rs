//! Errors of calls and of pool creation.

use std::fmt;

use knit_transport::TransportError;

use crate::js_error::JsError;
use crate::task_error::TaskError;

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
// `Display` and `Error` are written out rather than derived: a task error's
// `source()` is the task's own chain, which the derive cannot express without
// repeating the task's message in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The task returned `Err(e)`: `e`'s `Display` text, its `source()` chain
    /// as text, and `e` itself when its type is `Serialize` (see [`TaskError`]).
    Task(TaskError),
    /// The task panicked; this holds the panic message. The worker goes on serving.
    Panicked(String),
    /// The argument or the result could not be encoded, decoded, or was too large.
    Payload(PayloadError),
    /// No task with this name or id is registered in this binary.
    UnknownTask(String),
    /// `by_name` was given a name or path that several tasks end with; this
    /// holds their full paths (any of them, or a longer suffix of one, is unique).
    AmbiguousTask {
        /// The full paths (`crate::module::name`) of the tasks the name matches.
        candidates: Vec<String>,
    },
    /// The pool was shut down before the call could be accepted, or (with
    /// `Pool::shutdown_now`) before it ran.
    Closed,
    /// The caller cancelled the call (`Call::cancel`). A call cancelled while
    /// still queued never runs.
    Aborted,
    /// The call's budget ran out (counted from when it was made). The task was
    /// signalled to abort and its late result is dropped.
    Timeout,
    /// `max_queue` calls were already in flight and the policy is `Reject`
    /// (or the call was made on one of the pool's own workers, which never
    /// sleeps for room: the calls holding the places may be queued behind it).
    QueueFull,
    /// Every slot of the pool's call table (`max_in_flight`, which is also the
    /// capacity of the abort flags) holds a call.
    TooManyInFlight {
        /// The pool's `max_in_flight`.
        limit: usize,
    },
    /// The worker running the call died (or was declared stuck); the call's
    /// outcome is lost. Calls still queued on that lane move to the lane's
    /// new worker; if none can be started, they and every later call sent
    /// to that lane fail with this error too.
    WorkerLost,
    /// A task waited for a call queued behind itself: one of the pool's own
    /// workers blocked on a call that only that worker could run next (a
    /// `Call` made outside the pool and handed to the task). The call is
    /// cancelled instead of leaving the lane stuck. (Calls a task makes
    /// itself never fail this way: a worker waiting for one runs it itself.)
    WouldDeadlock,
    /// The JS task threw: the thrown error's name, message and stack (see
    /// [`JsError`] for values that are not `Error`s). Boxed: a `CallError`
    /// lives in every call-table slot, which is one 64-byte cache line.
    Js(Box<JsError>),
    /// A strict (untrusted) JS call went over one of its budgets (see
    /// `knit::js::Limits`): its engine state was thrown away. JS cannot turn
    /// this into a normal result, not even by catching the engine's own
    /// out-of-memory or stack-overflow error.
    Limit {
        /// Which budget.
        kind: LimitKind,
        /// The budget: nanoseconds for `Cpu` and `Wall`, bytes for the rest.
        limit: u64,
    },
}

/// Which budget of a strict JS call ran out: see [`CallError::Limit`].
///
/// ```
/// use knit::{CallError, LimitKind};
/// let e = CallError::Limit { kind: LimitKind::Cpu, limit: 50_000_000 };
/// assert_eq!(e.to_string(), "the call went over its CPU budget (50 ms)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// CPU time of the call's own JS, summed over every slice it ran.
    Cpu,
    /// Time since the call began on its worker.
    Wall,
    /// The engine heap of the call (its own runtime).
    Memory,
    /// The native stack the call's JS used.
    Stack,
    /// The argument's size, in the JS wire form.
    Input,
    /// The result's size, in the JS wire form.
    Output,
}

impl LimitKind {
    fn describe(self, limit: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, time) = match self {
            LimitKind::Cpu => ("CPU budget", true),
            LimitKind::Wall => ("wall-clock budget", true),
            LimitKind::Memory => ("memory budget", false),
            LimitKind::Stack => ("stack budget", false),
            LimitKind::Input => ("argument size limit", false),
            LimitKind::Output => ("result size limit", false),
        };
        if time {
            let ms = limit as f64 / 1e6;
            write!(f, "the call went over its {what} ({ms} ms)")
        } else {
            write!(f, "the call went over its {what} ({limit} bytes)")
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Task(e) => write!(f, "task failed: {e}"),
            CallError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            CallError::Payload(e) => fmt::Display::fmt(e, f),
            CallError::UnknownTask(name) => write!(f, "unknown task: {name}"),
            CallError::AmbiguousTask { candidates } => write!(
                f,
                "ambiguous task name: it matches {}",
                candidates.join(", ")
            ),
            CallError::Closed => f.write_str("the pool is closed"),
            CallError::Aborted => f.write_str("the call was cancelled"),
            CallError::Timeout => f.write_str("the call timed out"),
            CallError::QueueFull => f.write_str("the pool's queue is full"),
            CallError::TooManyInFlight { limit } => {
                write!(f, "too many calls in flight (the limit is {limit})")
            }
            CallError::WorkerLost => f.write_str("the worker running the call was lost"),
            CallError::WouldDeadlock => {
                f.write_str("the call waits for its own worker: waiting for it would deadlock")
            }
            CallError::Js(e) => write!(f, "JS task threw {e}"),
            CallError::Limit { kind, limit } => kind.describe(*limit, f),
        }
    }
}

impl std::error::Error for CallError {
    /// For `Task`, the first error of the task's own chain (the message is
    /// already in this error's text); for `Payload`, the payload error's source.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Task(e) => e.source(),
            CallError::Payload(e) => e.source(),
            _ => None,
        }
    }
}

impl From<JsError> for CallError {
    fn from(e: JsError) -> Self {
        CallError::Js(Box::new(e))
    }
}

impl From<PayloadError> for CallError {
    fn from(e: PayloadError) -> Self {
        CallError::Payload(e)
    }
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
    /// The JS modules or the bootstrap script could not be read, compiled or
    /// loaded (a syntax error, an unregistered import, a throwing module...).
    #[cfg(feature = "js")]
    #[error(transparent)]
    JsModule(#[from] crate::js_module_error::JsModuleError),
}
