//! Who a worker is: its pool, its lane, its status and its generation.

use std::sync::Arc;

use super::super::host::LaneHost;
use super::super::status::WorkerStatus;

/// What a worker thread carries for as long as it runs its loop (which
/// keeps its pool's state alive).
pub(crate) struct WorkerContext<H: LaneHost> {
    /// The pool this worker serves.
    pub host: Arc<H>,
    /// Index into the pool's worker lanes.
    pub index: usize,
    /// This lane's number in the balancer's numbering (what `TaskCx` reports).
    pub number: usize,
    pub status: Arc<WorkerStatus>,
    /// Which of the lane's workers this is.
    pub generation: u64,
}
