//! A lane's worker thread: its loop, the steps of one call, and who it is.
//!
//! `drain` is the loop (the lane's ring, or the shared queue); `run` the
//! steps of one call (`claim`, the task, `settle`), callable on their own so
//! a call can be claimed now and settled later; `context` what a worker
//! carries; `here` the thread-local that tells a call made on a worker which
//! pool's worker it is on. Other kinds of work a worker may serve go next to
//! `drain`, using `run`'s steps.

mod asyncs;
mod context;
mod drain;
mod events;
mod here;
mod run;

pub(crate) use context::WorkerContext;
pub(crate) use drain::worker_loop;
pub(crate) use here::on_this_thread;
