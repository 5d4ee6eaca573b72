//! Lanes: where a call waits until it runs, and who runs it.
//!
//! Every call the pool accepts goes to one lane:
//!
//! - a **thread lane** (`thread`): a shared-memory request ring that calling
//!   threads write under a lock (`lock`), drained by one pinned worker
//!   thread (`worker`), which settles each call in its slot of the call
//!   table. `status` is what that worker is doing, read by early settlers,
//!   the watchdog and a lane replacement;
//! - the **inline lane** (`inline`): calls queued in memory (`job`) and run
//!   by the calling threads themselves while they wait;
//! - the **shared queue** (`queue`, `Balancer::Shared`): one queue for the
//!   whole pool, claimed from by whichever worker is idle (it replaces the
//!   other lanes' routing).
//!
//! `flags` are the bits a request frame carries from sender to worker.
//! Choosing a lane (routing, balancing), replacing a worker and closing the
//! pool belong to the pool state (`crate::shared`), which owns the lanes.
//!
//! Process lanes (a ring drained by a worker *process*) are to come as a
//! sibling of `thread` and `worker` (say `process/`): a ring like a thread
//! lane's, with the response ring in use. Like the rest of this folder, they
//! reach the pool only through [`LaneHost`].
//!
//! **The seam.** Code here never names the pool state: it is generic over
//! [`LaneHost`] (`host`), a trait the pool state implements with the handful
//! of things a worker needs (its lane, the call table, the registry, the
//! counters, the halt flag, the limits, and what to do when a runner dies).
//! A trait rather than a core struct the pool state would contain, because a
//! worker's death has to call back into the pool (`replace_lane` spawns a new
//! worker from the pool's `Arc`), which a plain struct of fields cannot do,
//! and because it leaves the pool state's fields where they are; the
//! generics are monomorphised for the one pool state, so the hot path
//! makes no dynamic call.
//!
//! **Engines.** A worker may host an engine (`engine`: the JS engine is
//! one) whose calls can stay pending across the loop's turns, as an async
//! task's call can; the worker's loop (`worker/events.rs`) is then an event
//! loop over its ring, the shared queue, the futures' wakers and the
//! engine's timers, and still parks when there is nothing to do. The pool
//! says which engine through `LaneHost::Engine`; nothing here names JS.
//!
//! Within this folder too the modules form no cycle (checked, like the
//! crate's top level, by `scripts/import-graph.sh`): `flags`, `lock`,
//! `status`, `job` and `engine` (which names only `thread`) depend on
//! little; `thread` on `lock` and `status`; `queue` on `job`; `host` on
//! `thread`, `queue` and `engine`; `inline` on `host` and `job`; `worker` on
//! all of them.

mod engine;
mod flags;
mod host;
mod inline;
mod job;
mod lock;
mod queue;
mod status;
mod thread;
mod worker;

#[cfg(feature = "js")]
pub(crate) use engine::Begun;
#[cfg(feature = "js")]
pub(crate) use engine::Engine;
#[cfg(not(feature = "js"))]
pub(crate) use engine::NoEngine;
pub(crate) use flags::{FLAG_CLAIMABLE, FLAG_ENCODE_FAILED, FLAG_REDELIVERED};
pub(crate) use host::LaneHost;
pub(crate) use inline::{run_claimable, InlineLane};
pub(crate) use job::InlineJob;
pub(crate) use queue::SharedQueue;
pub(crate) use status::WorkerStatus;
pub(crate) use thread::ThreadLane;
pub(crate) use worker::{on_this_thread, worker_loop, WorkerContext};
