//! Which CPUs the pool may use: the process's CPU set and CPU quota, not the
//! calling thread's pinning.
//!
//! Two things limit a process: its affinity mask (`taskset`, a container's
//! cpuset) and its cgroup CPU quota (a container's `--cpus`). A thread that
//! pins itself later (common in latency-sensitive services and benchmarks)
//! narrows only its own mask, and must not shrink the pool. On Linux the two
//! are told apart by reading the process's mask once, before `main` runs
//! (a function in the executable's `.init_array`, run by the loader while the
//! main thread still has the mask the process was started with). Where that
//! snapshot is missing, the main thread's mask from `/proc/self/status` is
//! used instead (and when knit is loaded later with `dlopen`, the hook runs
//! at load time: then it sees the loading thread's mask). The quota is what
//! `std::thread::available_parallelism` reports for a thread whose mask is
//! the whole allowed set; finding it starts one short-lived thread, the
//! first time a pool's defaults are asked for.

use std::sync::OnceLock;

use core_affinity::CoreId;

/// What the process may use, read once.
#[derive(Debug, Clone)]
pub(crate) struct CpuBudget {
    /// The CPUs the process may run on (where workers may be pinned).
    pub allowed: Vec<CoreId>,
    /// How many CPUs' worth of time it may use at once: the allowed CPUs,
    /// capped by a cgroup quota (at least 1).
    pub parallelism: usize,
}

/// The process's CPU budget (computed on first use).
pub(crate) fn budget() -> &'static CpuBudget {
    static BUDGET: OnceLock<CpuBudget> = OnceLock::new();
    BUDGET.get_or_init(|| {
        let allowed = allowed_cpus();
        let parallelism = quota_parallelism(&allowed)
            .unwrap_or(allowed.len())
            .min(allowed.len())
            .max(1);
        CpuBudget {
            allowed,
            parallelism,
        }
    })
}

/// The number of worker threads a default pool gets: one fewer than the
/// process may run at once (the caller keeps one), at least one.
pub(crate) fn default_threads(budget: &CpuBudget) -> usize {
    budget.parallelism.saturating_sub(1).max(1)
}

#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<CoreId> {
    let ids = startup::mask()
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            parse_cpu_list(line.trim())
        })
        .or_else(|| {
            let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
            parse_cpu_list(online.trim())
        });
    match ids {
        Some(ids) => ids.into_iter().map(|id| CoreId { id }).collect(),
        None => core_affinity::get_core_ids().unwrap_or_default(),
    }
}

/// Elsewhere only the calling thread's set can be read.
#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

/// `available_parallelism` as seen by a thread allowed every CPU in
/// `allowed`: the size of that set capped by the cgroup quota. (Asked on a
/// thread of its own, because on the calling thread it also counts that
/// thread's own pinning.)
fn quota_parallelism(allowed: &[CoreId]) -> Option<usize> {
    let allowed = allowed.to_vec();
    std::thread::Builder::new()
        .name("knit-cpu-probe".into())
        .spawn(move || {
            // If this thread cannot be given the whole set, its count would
            // be the creating thread's own pinning: no answer then.
            #[cfg(target_os = "linux")]
            if !startup::allow(&allowed) {
                return None;
            }
            #[cfg(not(target_os = "linux"))]
            let _ = allowed;
            std::thread::available_parallelism().ok().map(|n| n.get())
        })
        .ok()?
        .join()
        .ok()
        .flatten()
}

#[cfg(target_os = "linux")]
mod startup {
    //! The process's CPU mask, read before `main`.

    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use core_affinity::CoreId;
    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

    const WORDS: usize = CpuSet::MAX_CPU.div_ceil(64);

    static MASK: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
    static TAKEN: AtomicBool = AtomicBool::new(false);

    /// Called by the loader before `main` (and before any user code can pin a
    /// thread): records the mask the process was started with. Only a system
    /// call and atomic stores: nothing here needs the Rust runtime set up.
    extern "C" fn snapshot() {
        if let Ok(set) = sched_getaffinity(None) {
            for cpu in 0..CpuSet::MAX_CPU {
                if set.is_set(cpu) {
                    MASK[cpu / 64].fetch_or(1 << (cpu % 64), Ordering::Relaxed);
                }
            }
            TAKEN.store(true, Ordering::Release);
        }
    }

    #[used]
    #[link_section = ".init_array"]
    static SNAPSHOT: extern "C" fn() = snapshot;

    /// The CPUs in the startup mask, if it was taken.
    pub(super) fn mask() -> Option<Vec<usize>> {
        // Naming the hook here keeps the object file that holds it linked
        // into every program that asks.
        std::hint::black_box(&SNAPSHOT);
        if !TAKEN.load(Ordering::Acquire) {
            return None;
        }
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
            .filter(|&cpu| MASK[cpu / 64].load(Ordering::Relaxed) & (1 << (cpu % 64)) != 0)
            .collect();
        (!cpus.is_empty()).then_some(cpus)
    }

    /// Lets the calling thread run on every CPU of `allowed`; false if it
    /// could not.
    pub(super) fn allow(allowed: &[CoreId]) -> bool {
        let mut set = CpuSet::new();
        for core in allowed.iter().filter(|c| c.id < CpuSet::MAX_CPU) {
            set.set(core.id);
        }
        sched_setaffinity(None, &set).is_ok()
    }
}

/// Parses the kernel's CPU list format, e.g. `0-3,6,8-9`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cores.push(part.parse().ok()?),
        }
    }
    (!cores.is_empty()).then_some(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(vec![0, 1, 2, 3, 6, 8, 9]));
        assert_eq!(parse_cpu_list("5"), Some(vec![5]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x-1"), None);
    }

    fn budget_of(allowed: usize, parallelism: usize) -> CpuBudget {
        CpuBudget {
            allowed: (0..allowed).map(|id| CoreId { id }).collect(),
            parallelism,
        }
    }

    #[test]
    fn default_threads_follow_the_quota_not_the_machine() {
        // A 2-CPU quota on a 64-core host: one worker, not 63.
        assert_eq!(default_threads(&budget_of(64, 2)), 1);
        assert_eq!(default_threads(&budget_of(8, 8)), 7);
        assert_eq!(default_threads(&budget_of(1, 1)), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_startup_snapshot_was_taken_and_is_within_the_machine() {
        let mask = startup::mask().expect("the .init_array hook ran");
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
        let online = parse_cpu_list(online.trim()).unwrap();
        assert!(
            mask.iter().all(|c| online.contains(c)),
            "{mask:?} vs {online:?}"
        );
        let b = budget();
        assert!(b.parallelism >= 1 && b.parallelism <= b.allowed.len());
    }
}
