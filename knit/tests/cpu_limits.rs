//! The pool keeps to the process's CPU limits: started under a one-CPU
//! affinity mask (what `taskset -c N` does), a default pool runs one worker
//! and pinned workers stay on that CPU; and a main thread that pins itself
//! before the first pool does not shrink what the pool may use.
#![cfg(target_os = "linux")]

use std::os::unix::process::CommandExt;
use std::process::Command;

use knit::{create_pool, PoolOptions};
use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// The CPUs the calling thread may run on.
fn cpus_of_this_thread() -> Vec<usize> {
    let set = sched_getaffinity(None).expect("sched_getaffinity");
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}

#[knit::task]
fn worker_cpus() -> Vec<usize> {
    cpus_of_this_thread()
}

const CHILD: &str = "KNIT_TEST_ONE_CPU";
const PINNED_MAIN: &str = "KNIT_TEST_PINNED_MAIN";

/// Runs test `name` again in a child process (with `env` set), after `hook`
/// in the forked child, and checks it printed `passed`.
fn in_a_child(name: &str, env: (&str, String), passed: &str, hook: Option<usize>) {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1);
    if let Some(cpu) = hook {
        // SAFETY: the hook runs in the forked child before `exec`; it only
        // builds a set on the stack and makes one system call
        // (async-signal-safe), and touches no lock or allocation of the parent.
        unsafe {
            child.pre_exec(move || {
                let mut one = CpuSet::new();
                one.set(cpu);
                sched_setaffinity(None, &one).map_err(std::io::Error::from)
            });
        }
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(passed),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_process_started_on_one_cpu_gets_one_worker_pinned_inside_it() {
    if let Some(cpu) = std::env::var_os(CHILD) {
        let cpu: usize = cpu.to_str().unwrap().parse().unwrap();
        return in_the_child(cpu);
    }
    // Run this very test again in a child process whose mask is one CPU
    // (the last one this process may use, so not always CPU 0).
    let cpu = *cpus_of_this_thread().last().unwrap();
    let name = "a_process_started_on_one_cpu_gets_one_worker_pinned_inside_it";
    in_a_child(
        name,
        (CHILD, cpu.to_string()),
        "one-cpu checks passed",
        Some(cpu),
    );
}

#[test]
fn a_main_thread_pinned_before_the_first_pool_does_not_shrink_it() {
    if std::env::var_os(PINNED_MAIN).is_some() {
        return pinned_main_child();
    }
    let name = "a_main_thread_pinned_before_the_first_pool_does_not_shrink_it";
    let full = cpus_of_this_thread();
    in_a_child(
        name,
        (PINNED_MAIN, format!("{full:?}")),
        "pinned-main checks passed",
        None,
    );
}

fn pinned_main_child() {
    let full = cpus_of_this_thread();
    if full.len() < 2 {
        // Nothing to tell apart on one CPU (the other test covers it).
        println!("pinned-main checks passed (one CPU: nothing to check)");
        return;
    }
    // Pin the main thread (its thread id is the process id) to one CPU
    // before anything in this process asked knit for its CPU budget: the
    // main thread's mask is then what `/proc/self/status` reports, and only
    // the mask read before `main` still has every CPU.
    let main = rustix::thread::Pid::from_raw(std::process::id() as i32).unwrap();
    let mut one = CpuSet::new();
    one.set(full[0]);
    sched_setaffinity(Some(main), &one).unwrap();
    let defaults = PoolOptions::default();
    assert_eq!(defaults.threads, full.len() - 1);
    assert!(
        defaults.pin,
        "the process may use {full:?}, more CPUs than workers"
    );
    // Pinned workers spread over the whole set, not over the main thread's CPU.
    let pool = create_pool(PoolOptions {
        threads: full.len(),
        pin: true,
        ..PoolOptions::default()
    })
    .unwrap();
    let calls: Vec<_> = (0..200).map(|_| pool.call.worker_cpus()).collect();
    let mut seen: Vec<usize> = calls.into_iter().flat_map(|c| c.wait().unwrap()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, full, "workers pinned inside the process's whole set");
    println!("pinned-main checks passed");
}

fn in_the_child(cpu: usize) {
    assert_eq!(
        cpus_of_this_thread(),
        vec![cpu],
        "the child was started on one CPU"
    );
    let defaults = PoolOptions::default();
    assert_eq!(defaults.threads, 1, "one CPU: one worker");
    assert!(!defaults.pin, "nothing to pin to besides the caller's CPU");
    let pool = create_pool(defaults).unwrap();
    assert_eq!(pool.call.worker_cpus().wait(), Ok(vec![cpu]));
    drop(pool);
    // Asked to pin three workers, each stays on the one CPU it may use
    // (before, worker i went to online core i + 1, outside the mask).
    let pinned = create_pool(PoolOptions {
        threads: 3,
        pin: true,
        ..PoolOptions::default()
    })
    .unwrap();
    let calls: Vec<_> = (0..30).map(|_| pinned.call.worker_cpus()).collect();
    for c in calls {
        assert_eq!(c.wait(), Ok(vec![cpu]));
    }
    // A thread that pins itself later does not change what a pool gets.
    std::thread::spawn(move || {
        let mut one = CpuSet::new();
        one.set(cpu);
        sched_setaffinity(None, &one).unwrap();
        assert_eq!(PoolOptions::default().threads, 1);
    })
    .join()
    .unwrap();
    println!("one-cpu checks passed");
}
