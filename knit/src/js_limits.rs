//! What a strict (untrusted) JS call may use, and the permission modes: plain data, outside `js/` so the options can hold it.

use std::time::Duration;

/// The budgets of every call of an untrusted script (`Pool::untrusted`).
/// Going over one fails the call with
/// `CallError::Limit { kind, .. }` and throws its engine state away; the
/// worker and every other call on it go on.
///
/// ```
/// use std::time::Duration;
/// use knit::js::Limits;
/// let limits = Limits { cpu: Duration::from_millis(5), ..Limits::default() };
/// assert_eq!(limits.memory_bytes, 32 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// CPU time of the call's own JS (the worker thread's CPU clock), summed
    /// over every slice the call runs: its first run, each promise job and
    /// timer callback of its own, whatever else the worker does between.
    pub cpu: Duration,
    /// Time from the call's start on its worker to its result.
    pub wall: Duration,
    /// The call's engine heap (its runtime's allocations, the pristine
    /// context included: about 300 KiB of it).
    pub memory_bytes: usize,
    /// The native stack the call's JS may use on the worker thread
    /// (at most a quarter of the pool's `stack_size`).
    pub stack_bytes: usize,
    /// The argument's size in the JS wire form (checked before it is sent).
    pub input_bytes: usize,
    /// The result's size in the JS wire form.
    pub output_bytes: usize,
}

impl Default for Limits {
    /// 50 ms of CPU, 500 ms of wall time, 32 MiB of heap, 256 KiB of
    /// stack, 1 MiB in and 1 MiB out.
    fn default() -> Self {
        Limits {
            cpu: Duration::from_millis(50),
            wall: Duration::from_millis(500),
            memory_bytes: 32 << 20,
            stack_bytes: 256 << 10,
            input_bytes: 1 << 20,
            output_bytes: 1 << 20,
        }
    }
}

/// How much the JS a pool runs may do.
///
/// ```
/// use knit::js::Permission;
/// assert_eq!(Permission::default(), Permission::Unsafe);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Permission {
    /// Trusted code: the modules of `JsOptions` as they always ran. They
    /// share their worker's context from call to call, may use `eval` and
    /// `new Function`, and call every exposed host function. No budget
    /// besides the call's timeout. Not a sandbox: only run code you wrote.
    #[default]
    Unsafe,
    /// The restrictions untrusted scripts always run under (`docs/js.md`,
    /// "Strict mode"): no `eval`, no `new Function` or other function
    /// constructor, imports only of `JsOptions::untrusted_imports`. Set on
    /// `JsOptions::permission`, it also takes these from the modules'
    /// contexts (and `Pool::eval` and sessions, which are `eval`).
    Strict,
}
