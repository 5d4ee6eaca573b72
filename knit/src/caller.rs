//! `Caller`: turning `pool.call.<task>(arg)` into a call in flight.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use knit_transport::Envelope;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::{Call, Via};
use crate::codec;
use crate::error::{CallError, PayloadError};
use crate::lanes::{on_this_thread, InlineJob, FLAG_ENCODE_FAILED};
use crate::registry::TaskEntry;
use crate::run::panic_message;
use crate::shared::{Route, Shared};
use crate::table::Ticket;

/// What sending did with a call.
enum Sent {
    InFlight(Ticket, Via),
    /// `max_queue` is reached and the policy is `Wait`: the encoded argument.
    Deferred(Vec<u8>),
}

/// Runs the argument's `Serialize` (through `encode`), turning a panic in it
/// into `PayloadError::Encode`: the call has taken a slot, a `max_queue`
/// place or ring space by then, and unwinding past the sender would keep
/// them for good.
#[inline(always)]
pub(crate) fn guarded<R>(
    encode: impl FnOnce() -> Result<R, PayloadError>,
) -> Result<R, PayloadError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(encode)) {
        Ok(r) => r,
        Err(panic) => Err(PayloadError::Encode(format!(
            "the argument's Serialize panicked: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

/// The handle `#[task]` methods hang off: `pool.call.<task>(arg)`.
///
/// ```
/// #[knit::task]
/// fn hello() -> String { "hello".into() }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
/// assert_eq!(pool.call.hello().wait().unwrap(), "hello");
/// ```
#[derive(Clone)]
pub struct Caller {
    pub(crate) shared: Arc<Shared>,
}

impl Caller {
    /// Sends a call of `entry` with `arg`; what `#[task]` methods call.
    #[doc(hidden)]
    #[inline]
    pub fn __invoke<A: Serialize, R: DeserializeOwned>(
        &self,
        entry: &'static TaskEntry,
        arg: &A,
    ) -> Call<R> {
        match self.send(entry, arg) {
            Ok(Sent::InFlight(ticket, via)) => Call::in_flight(ticket, &self.shared, entry, via),
            Ok(Sent::Deferred(input)) => Call::deferred(self.shared.clone(), entry, input),
            Err(e) => Call::refused(self.shared.stats.refuse(e)),
        }
    }

    /// Calls a task by name with any argument type; the result type is the
    /// caller's to choose. A task is named by its name (`"add"`), its full
    /// path (`"my_crate::tasks::add"`, as `module_path!()` spells its module),
    /// or any end of the path made of whole `::` segments (`"tasks::add"`, the
    /// path without the crate). A name several tasks fit gives
    /// `CallError::AmbiguousTask` with their paths (a full path always fits
    /// one task only); an unknown one gives `CallError::UnknownTask`.
    ///
    /// ```
    /// mod tasks {
    ///     #[knit::task]
    ///     pub fn square(x: u64) -> u64 { x * x }
    /// }
    /// mod other {
    ///     #[knit::task]
    ///     pub fn square(x: u64) -> u64 { x }
    /// }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() }).unwrap();
    /// assert_eq!(pool.call.by_name::<u64, u64>("tasks::square", &9).wait(), Ok(81));
    /// let full = concat!(module_path!(), "::other::square");
    /// assert_eq!(pool.call.by_name::<u64, u64>(full, &9).wait(), Ok(9));
    /// assert!(matches!(
    ///     pool.call.by_name::<u64, u64>("square", &9).wait(),
    ///     Err(knit::CallError::AmbiguousTask { candidates }) if candidates.len() == 2
    /// ));
    /// assert!(matches!(
    ///     pool.call.by_name::<u64, u64>("no_such_task", &9).wait(),
    ///     Err(knit::CallError::UnknownTask(_))
    /// ));
    /// ```
    pub fn by_name<A: Serialize, R: DeserializeOwned>(&self, name: &str, arg: &A) -> Call<R> {
        match self.shared.registry.find(name) {
            Ok(entry) => self.__invoke(entry, arg),
            Err(e) => Call::refused(self.shared.stats.refuse(e)),
        }
    }

    fn send<A: Serialize>(&self, entry: &'static TaskEntry, arg: &A) -> Result<Sent, CallError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(CallError::Closed);
        }
        let len = guarded(|| codec::encoded_len(arg))?;
        if len > shared.max_payload {
            return Err(PayloadError::TooLarge {
                len,
                max: shared.max_payload,
            }
            .into());
        }
        // A call made by one of this pool's own workers (a task calling
        // another task) keeps its argument, so that a worker waiting for it
        // can run it itself instead of blocking its lane (see `Via::Nested`).
        let nested = on_this_thread(&**shared).map(|here| here.number);
        if let Some(admission) = &shared.table.admission {
            if !admission.try_acquire()? {
                if nested.is_some() {
                    // A worker must not sleep for room: the calls holding
                    // the places may be queued behind it.
                    return Err(CallError::QueueFull);
                }
                // Full, and the policy is to wait: the call keeps its encoded
                // argument and is sent once it is waited on or polled and there
                // is room (so an async caller never blocks its executor).
                let mut input = vec![0u8; len];
                guarded(|| codec::encode_into(arg, &mut input))?;
                return Ok(Sent::Deferred(input));
            }
        }
        let encode = |dst: &mut [u8]| guarded(|| codec::encode_into(arg, dst));
        if let Some(lane_number) = nested {
            return self.send_nested(entry, len, &encode, lane_number);
        }
        self.send_admitted(entry, len, &encode).map(|(t, inline)| {
            let via = if inline { Via::Inline } else { Via::Lane };
            Sent::InFlight(t, via)
        })
    }

    /// Sends a call made on one of the pool's own worker threads (its
    /// `max_queue` place is taken): it is claimed by compare-and-swap
    /// wherever it goes, and keeps its argument for a waiting worker to run.
    fn send_nested(
        &self,
        entry: &'static TaskEntry,
        len: usize,
        encode: &dyn Fn(&mut [u8]) -> Result<(), PayloadError>,
        lane_number: usize,
    ) -> Result<Sent, CallError> {
        let shared = &self.shared;
        let job = self.job(entry, len, encode)?;
        match shared.send_nested(&job, lane_number) {
            Ok(()) => Ok(Sent::InFlight(job.ticket, Via::Nested(job.input.into()))),
            Err(e) => {
                // Never sent: nobody else knows this ticket.
                shared.table.discard(job.ticket);
                Err(e)
            }
        }
    }

    /// Sends a call whose `max_queue` place (if any) is already taken;
    /// `encode` writes the `len`-byte argument.
    pub(crate) fn send_admitted(
        &self,
        entry: &'static TaskEntry,
        len: usize,
        encode: &dyn Fn(&mut [u8]) -> Result<(), PayloadError>,
    ) -> Result<(Ticket, bool), CallError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(self.give_back_place(CallError::Closed));
        }
        if let Some(queue) = &shared.queue {
            let job = self.job(entry, len, encode)?;
            let ticket = job.ticket;
            return match queue.push(job) {
                Ok(()) => Ok((ticket, false)),
                Err(_) => Err(self.closed_after_all(ticket)),
            };
        }
        match shared.pick(entry) {
            Route::Inline(inline) => {
                let job = self.job(entry, len, encode)?;
                let ticket = job.ticket;
                match inline.push(job) {
                    Ok(()) => Ok((ticket, true)),
                    Err(_) => Err(self.closed_after_all(ticket)),
                }
            }
            Route::Worker(lane) => self.send_on_lane(lane, entry, len, encode),
        }
    }

    /// Sends a JS call of `entry` whose argument is already in the JS wire
    /// form; to worker lane `lane` (an index among the worker lanes) if
    /// given, else where the balancer says. JS calls never take the inline
    /// lane (their entries are not inline-safe), and one made on a worker is
    /// sent like any other (it cannot run on that worker's thread while a
    /// Rust task holds it).
    #[cfg(feature = "js")]
    pub(crate) fn send_wire<R: DeserializeOwned>(
        &self,
        entry: &'static TaskEntry,
        input: &[u8],
        lane: Option<usize>,
    ) -> Call<R> {
        let shared = &self.shared;
        let sent = (|| {
            if shared.closed.load(Ordering::Acquire) {
                return Err(CallError::Closed);
            }
            let len = input.len();
            if len > shared.max_payload {
                return Err(PayloadError::TooLarge {
                    len,
                    max: shared.max_payload,
                }
                .into());
            }
            if let Some(admission) = &shared.table.admission {
                if !admission.try_acquire()? {
                    if lane.is_some() || on_this_thread(&**shared).is_some() {
                        // A session's call must reach its one lane, and a
                        // worker must not sleep for room.
                        return Err(CallError::QueueFull);
                    }
                    return Ok(Sent::Deferred(input.to_vec()));
                }
            }
            let encode = |dst: &mut [u8]| {
                dst.copy_from_slice(input);
                Ok(())
            };
            // A JS call made on a worker (a host function calling JS, a Rust
            // task awaiting JS) goes to another worker's lane when there is
            // one: its own worker cannot run it while the caller holds it.
            let lane = lane.or_else(|| {
                let here = on_this_thread(&**shared)?;
                if shared.queue.is_some() || shared.lanes.len() < 2 {
                    return None;
                }
                (0..shared.lanes.len())
                    .filter(|&i| i != here.index)
                    .min_by_key(|&i| shared.lanes[i].in_flight())
            });
            let (ticket, _) = match lane {
                Some(i) => {
                    let sent = self.send_on_lane(&shared.lanes[i], entry, len, &encode)?;
                    // Under `Balancer::Shared` the worker sleeps on the
                    // queue, not on its ring.
                    if let Some(queue) = &shared.queue {
                        queue.nudge();
                    }
                    sent
                }
                None => self.send_admitted(entry, len, &encode)?,
            };
            Ok(Sent::InFlight(ticket, Via::Lane))
        })();
        match sent {
            Ok(Sent::InFlight(ticket, via)) => Call::in_flight(ticket, shared, entry, via),
            Ok(Sent::Deferred(input)) => Call::deferred(shared.clone(), entry, input),
            Err(e) => Call::refused(shared.stats.refuse(e)),
        }
    }

    /// Sends a call to worker lane `lane` (its `max_queue` place, if any,
    /// is taken).
    #[inline]
    fn send_on_lane(
        &self,
        lane: &crate::lanes::ThreadLane,
        entry: &'static TaskEntry,
        len: usize,
        encode: &dyn Fn(&mut [u8]) -> Result<(), PayloadError>,
    ) -> Result<(Ticket, bool), CallError> {
        let shared = &self.shared;
        let mut sender = lane.lock();
        // Looked at again under the lock: closing returns each lane's
        // cached slots under it, and none may be taken after that.
        if shared.closed.load(Ordering::Relaxed) {
            return Err(self.give_back_place(CallError::Closed));
        }
        let ticket = match shared.table.alloc_cached(&mut sender.slots) {
            Some(t) => t,
            None => {
                drop(sender);
                let t = match shared.alloc_anywhere() {
                    Ok(t) => t,
                    Err(e) => return Err(self.give_back_place(e)),
                };
                sender = lane.lock();
                t
            }
        };
        // Before `prepare`, which may arm a deadline (and so tell the
        // watchdog about the ticket).
        shared.table.mark_laned(ticket, lane.index);
        self.prepare(entry, ticket);
        let env = Envelope {
            call_id: ticket.call_id(),
            task_id: entry.id,
            flags: 0,
        };
        // The worker answers a call whose encoding failed part way with
        // `CallError::Payload` instead of decoding what was written.
        let fill = |dst: &mut [u8], env: &mut Envelope| {
            if encode(dst).is_err() {
                env.flags |= FLAG_ENCODE_FAILED;
            }
        };
        let (_sender, sent) = lane.send_frame(sender, env, len, fill);
        match sent {
            Ok(()) => {
                lane.count_submitted();
                Ok((ticket, false))
            }
            Err(e) => {
                let error = shared.send_error(e);
                // Never sent: nobody else knows this ticket.
                shared.table.discard(ticket);
                Err(error)
            }
        }
    }

    /// A call as a job for the inline lane or the shared queue: a slot, and
    /// the argument encoded into a buffer of its own.
    fn job(
        &self,
        entry: &'static TaskEntry,
        len: usize,
        encode: &dyn Fn(&mut [u8]) -> Result<(), PayloadError>,
    ) -> Result<InlineJob, CallError> {
        let shared = &self.shared;
        let ticket = shared
            .alloc_anywhere()
            .map_err(|e| self.give_back_place(e))?;
        self.prepare(entry, ticket);
        let mut input = vec![0u8; len];
        if let Err(e) = encode(&mut input) {
            // Never sent: nobody else knows this ticket.
            shared.table.discard(ticket);
            return Err(CallError::Payload(e));
        }
        Ok(InlineJob {
            ticket,
            entry,
            input,
        })
    }

    /// The pool closed between the look at `closed` and the push of `ticket`,
    /// which nobody else knows.
    fn closed_after_all(&self, ticket: Ticket) -> CallError {
        self.shared.table.discard(ticket);
        CallError::Closed
    }

    /// Gives back the `max_queue` place of a call that got no slot.
    fn give_back_place(&self, e: CallError) -> CallError {
        if let Some(admission) = &self.shared.table.admission {
            admission.release();
        }
        e
    }

    /// Stamps and arms a call about to be sent (timing, the task's default budget).
    #[inline]
    fn prepare(&self, entry: &TaskEntry, ticket: Ticket) {
        let shared = &self.shared;
        if shared.timing || entry.timeout_ms > 0 {
            let now = Instant::now();
            if shared.timing {
                shared.table.stamp_enqueued(ticket, now);
            }
            if entry.timeout_ms > 0 {
                shared.arm_deadline(ticket, now + Duration::from_millis(entry.timeout_ms));
            }
        }
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").finish_non_exhaustive()
    }
}
