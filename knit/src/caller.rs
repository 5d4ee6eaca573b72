//! `Caller`: turning `pool.call.<task>(arg)` into a call in flight.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use knit_transport::{Envelope, TransportError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::Call;
use crate::codec;
use crate::error::{CallError, PayloadError};
use crate::inline::InlineJob;
use crate::registry::TaskEntry;
use crate::shared::{Route, Shared};
use crate::table::Ticket;
use crate::worker::FLAG_ENCODE_FAILED;

/// How long a sender waits on a full lane before letting go of its lock and
/// trying again (so a lane being replaced is never blocked by a sender).
const FULL_LANE_RETRY: Duration = Duration::from_millis(1);

/// What sending did with a call.
enum Sent {
    InFlight(Ticket, bool),
    /// `max_queue` is reached and the policy is `Wait`: the encoded argument.
    Deferred(Vec<u8>),
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
            Ok(Sent::InFlight(ticket, inline)) => Call::in_flight(ticket, &self.shared, inline),
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
        let len = codec::encoded_len(arg)?;
        if len > shared.max_payload {
            return Err(PayloadError::TooLarge {
                len,
                max: shared.max_payload,
            }
            .into());
        }
        if let Some(admission) = &shared.table.admission {
            if !admission.try_acquire()? {
                // Full, and the policy is to wait: the call keeps its encoded
                // argument and is sent once it is waited on or polled and there
                // is room (so an async caller never blocks its executor).
                let mut input = vec![0u8; len];
                codec::encode_into(arg, &mut input)?;
                return Ok(Sent::Deferred(input));
            }
        }
        self.send_admitted(entry, len, &|dst: &mut [u8]| codec::encode_into(arg, dst))
            .map(|(t, inline)| Sent::InFlight(t, inline))
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
        let (ticket, error) = match shared.pick(entry) {
            Route::Inline(inline) => {
                let job = self.job(entry, len, encode)?;
                let ticket = job.ticket;
                return match inline.push(job) {
                    Ok(()) => Ok((ticket, true)),
                    Err(_) => Err(self.closed_after_all(ticket)),
                };
            }
            Route::Worker(lane) => {
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
                let sent = loop {
                    let sent = sender
                        .producer
                        .send_with(env, len, fill, Some(FULL_LANE_RETRY));
                    if !matches!(sent, Err(TransportError::Full)) {
                        break sent;
                    }
                    // The lane stayed full: let go of it for a moment (its
                    // worker may be dying and need the lock to be replaced).
                    drop(sender);
                    std::thread::yield_now();
                    sender = lane.lock();
                };
                match sent {
                    Ok(()) => {
                        lane.count_submitted();
                        return Ok((ticket, false));
                    }
                    Err(TransportError::TooLarge { len, max }) => {
                        (ticket, PayloadError::TooLarge { len, max }.into())
                    }
                    // A closed ring in an open pool: the lane's worker died
                    // and could not be replaced.
                    Err(TransportError::Closed) if !shared.closed.load(Ordering::Acquire) => {
                        (ticket, CallError::WorkerLost)
                    }
                    Err(_) => (ticket, CallError::Closed),
                }
            }
        };
        // Never sent: nobody else knows this ticket.
        shared.table.discard(ticket);
        Err(error)
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
