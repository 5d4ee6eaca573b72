//! `TaskCx`: what a running task may ask about its own call.

use std::time::Instant;

use crate::table::{CallTable, Ticket};

/// The context of one running call. A task receives it by taking
/// `cx: &knit::TaskCx` as its last parameter.
///
/// ```
/// #[knit::task]
/// fn count_to(n: u64, cx: &knit::TaskCx) -> Result<u64, String> {
///     for i in 0..n {
///         if cx.stop_requested() {
///             return Err(format!("stopped at {i}"));
///         }
///     }
///     Ok(n)
/// }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
/// assert_eq!(pool.call.count_to(1000).wait(), Ok(1000));
/// ```
pub struct TaskCx<'a> {
    table: &'a CallTable,
    ticket: Ticket,
    lane: usize,
}

impl<'a> TaskCx<'a> {
    pub(crate) fn new(table: &'a CallTable, ticket: Ticket, lane: usize) -> Self {
        TaskCx {
            table,
            ticket,
            lane,
        }
    }

    /// Whether this call was asked to stop: its caller called
    /// `Call::request_stop` or `Call::cancel`, its budget ran out, or the
    /// pool was shut down with `shutdown_now`. A task that polls this can
    /// stop early; its result is still delivered unless the call was already
    /// settled (timed out, cancelled).
    #[inline]
    pub fn stop_requested(&self) -> bool {
        self.table.aborted(self.ticket)
    }

    /// The old name of [`TaskCx::stop_requested`].
    #[deprecated(since = "0.1.0", note = "renamed `stop_requested`")]
    #[inline]
    pub fn has_aborted(&self) -> bool {
        self.stop_requested()
    }

    /// When this call's budget runs out, if it has one (counted from when the
    /// call was made, so time spent queued counts).
    pub fn deadline(&self) -> Option<Instant> {
        self.table.deadline(self.ticket)
    }

    /// The current time, on the clock deadlines use.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// This call's id, unique among the calls in flight on this pool.
    pub fn call_id(&self) -> u64 {
        self.ticket.call_id()
    }

    /// The lane running this call, in the balancer's numbering.
    pub fn lane_id(&self) -> usize {
        self.lane
    }
}

impl std::fmt::Debug for TaskCx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCx")
            .field("call_id", &self.call_id())
            .field("lane", &self.lane)
            .field("stop_requested", &self.stop_requested())
            .finish()
    }
}
