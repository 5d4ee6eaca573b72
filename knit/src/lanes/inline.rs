//! The inline lane: calls queued for the calling threads to run themselves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use std::time::Instant;

use super::host::LaneHost;
use super::job::InlineJob;
use crate::cx::TaskCx;
use crate::error::CallError;
use crate::registry::TaskEntry;
use crate::run::run_task;
use crate::stats::FailureKind;
use crate::table::{Claim, Ticket};

/// The inline lane's queue and counters.
pub(crate) struct InlineLane {
    queue: Mutex<VecDeque<InlineJob>>,
    /// Set (and read) under the queue's lock once the pool closes: a job
    /// pushed after that could be left with nobody to run it.
    closed: AtomicBool,
    pub submitted: AtomicU64,
    pub completed: AtomicU64,
    /// Calls taken off this lane to a worker lane (counted done here, run
    /// and counted there).
    pub moved_out: AtomicU64,
    pub batch_size: usize,
    pub dispatch_threshold: usize,
    /// This lane's index in the balancer's numbering.
    pub index: usize,
}

impl InlineLane {
    pub(crate) fn new(batch_size: usize, dispatch_threshold: usize, index: usize) -> Self {
        InlineLane {
            queue: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            submitted: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            moved_out: AtomicU64::new(0),
            batch_size: batch_size.max(1),
            dispatch_threshold,
            index,
        }
    }

    /// Queues `job`, or hands it back if the pool has closed.
    pub(crate) fn push(&self, job: InlineJob) -> Result<(), InlineJob> {
        let mut queue = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(job);
        }
        self.submitted.fetch_add(1, Ordering::Relaxed);
        queue.push_back(job);
        Ok(())
    }

    /// Refuses jobs from now on (those queued stay, to be run or rejected).
    pub(crate) fn close(&self) {
        let _queue = self.lock();
        self.closed.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<InlineJob>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs up to `max` queued jobs on this thread, starting none once
    /// `until` (if given) has passed; returns how many it took.
    pub(crate) fn run_some(
        &self,
        max: usize,
        until: Option<Instant>,
        host: &impl LaneHost,
    ) -> usize {
        let mut ran = 0;
        while ran < max && until.is_none_or(|u| Instant::now() < u) {
            let Some(job) = self.lock().pop_front() else {
                break;
            };
            let counted = || {
                self.completed.fetch_add(1, Ordering::Release);
            };
            run_claimable(host, job.ticket, job.entry, &job.input, self.index, counted);
            ran += 1;
        }
        ran
    }

    /// Takes `ticket`'s job off the queue if it is still there (nobody has
    /// begun to run it): `moved` to a worker lane (which counts it from
    /// then on), or dropped (the call settled early, so nobody runs it).
    pub(crate) fn remove(&self, ticket: Ticket, moved: bool) -> Option<InlineJob> {
        let job = {
            let mut queue = self.lock();
            let at = queue.iter().position(|j| j.ticket == ticket)?;
            queue.remove(at)?
        };
        let count = if moved {
            &self.moved_out
        } else {
            &self.completed
        };
        count.fetch_add(1, Ordering::Release);
        Some(job)
    }

    /// Puts back at the front a job [`InlineLane::remove`] moved off, which
    /// found no room on a worker lane.
    pub(crate) fn put_back(&self, job: InlineJob) {
        self.lock().push_front(job);
        self.moved_out.fetch_sub(1, Ordering::Release);
    }

    /// Empties the queue (for `shutdown_now`), counting the jobs as taken.
    pub(crate) fn take_all(&self) -> Vec<Ticket> {
        let jobs: Vec<Ticket> = self.lock().drain(..).map(|j| j.ticket).collect();
        self.completed
            .fetch_add(jobs.len() as u64, Ordering::Release);
        jobs
    }

    pub(crate) fn in_flight(&self) -> usize {
        let submitted = self.submitted.load(Ordering::Relaxed);
        let done = self.completed.load(Ordering::Acquire) + self.moved_out.load(Ordering::Acquire);
        submitted.saturating_sub(done) as usize
    }
}

/// Runs call `ticket` of `entry` on `input` on this thread if it can claim it (by compare-and-swap: it
/// may be claimed elsewhere, or settled early), as lane `lane`; `counted` runs
/// before the call settles (so that a caller who sees its result also sees
/// the lane no longer busy with it). Returns whether it ran. For the inline
/// lane, and for a worker running a call it waits for itself.
pub(crate) fn run_claimable<H: LaneHost>(
    host: &H,
    ticket: Ticket,
    entry: &TaskEntry,
    input: &[u8],
    lane: usize,
    counted: impl FnOnce(),
) -> bool {
    let table = host.table();
    if !table.claim_run(ticket) {
        counted();
        return false;
    }
    if host.is_halted() {
        // `shutdown_now` has begun: nothing starts any more (best effort
        // here: unlike a worker lane's, this look is not fenced against the
        // halt, so a call claimed just as it is raised may still run).
        table.settle_early(ticket, CallError::Closed, false, None);
        table.abandon_run(ticket);
        counted();
        return false;
    }
    let cx = TaskCx::new(table, ticket, lane);
    let unwinding = Unwinding { host, ticket };
    let mut scratch = Vec::new();
    let outcome = host.enter(|| run_task(entry, input, &mut scratch, host.max_payload(), &cx));
    std::mem::forget(unwinding);
    counted();
    let kind = outcome.error().map(FailureKind::of);
    host.counters().settled(kind);
    if !table.finish(ticket, outcome, Claim::Cas) {
        host.counters().outcomes.unsettle(kind);
    }
    true
}

/// Fails the call a thread runs for the inline lane if a panic escapes the
/// task (a panic payload whose `Drop` panics unwinds past `run_task`), and
/// ends its claim so the slot can be freed, as a dying worker does.
struct Unwinding<'a, H: LaneHost> {
    host: &'a H,
    ticket: Ticket,
}

impl<H: LaneHost> Drop for Unwinding<'_, H> {
    fn drop(&mut self) {
        self.host.runner_lost(self.ticket);
    }
}
