//! A call queued in memory rather than in a ring: what the inline lane and the shared queue hold.

use crate::registry::TaskEntry;
use crate::table::Ticket;

/// A call, its task and its encoded argument, waiting for a thread to claim it.
pub(crate) struct InlineJob {
    pub ticket: Ticket,
    pub entry: &'static TaskEntry,
    pub input: Vec<u8>,
}
