//! knit-bench: support shared by the workspace's benchmarks: the floors knit is
//! measured against (a bare two-thread atomic ping-pong and a futex ping-pong),
//! thread pinning, a runner that interleaves scenarios round by round so a
//! noisy machine slows all of them alike and their ratios stay meaningful, the
//! command-line flags, the machine's description, and results as Markdown;
//! and knit-transport alone as a floor for pools built on it (`lane_echo`).
//!
//! The parts that need the benchmarks' dev-dependencies (peer pools, JSON,
//! SVG charts) live in `support/peers/` and `support/suite/`, modules each
//! bench includes.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cli;
pub mod floors;
pub mod lane_echo;
pub mod machine;
pub mod markdown;
pub mod results;
pub mod runner;
pub mod work;

pub use runner::{Report, Runner, Scenario};

/// Pins the calling thread to core `index` (modulo the cores available); does
/// nothing when pinning is not possible.
///
/// ```
/// knit_bench::pin_to(0);
/// ```
pub fn pin_to(index: usize) {
    // `get_core_ids` reports the *calling thread's* allowed cores, which shrink to
    // one after the first pin; read the full set once, before any pinning.
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    let cores = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if !cores.is_empty() {
        core_affinity::set_for_current(cores[index % cores.len()]);
    }
}
