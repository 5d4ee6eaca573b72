//! Lanes: where a call waits and who runs it.

pub(crate) mod inline;
pub(crate) mod lock;
pub(crate) mod queue;
pub(crate) mod thread;
pub(crate) mod worker;
