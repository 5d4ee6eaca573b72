//! The receiving end of one ring.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::TransportError;
use crate::frame::{
    frame_bytes, Envelope, OverflowRef, RawHeader, FRAME_HEADER_BYTES, KIND_INLINE, KIND_OVERFLOW,
    KIND_PAD, OVERFLOW_REF_BYTES,
};
use crate::futex::Sharing;
use crate::region::{Direction, LaneRegion, RingControl};
use crate::sync::Ordering;
use crate::wait::{self, WaitOutcome, WaitSite};

/// One received message, borrowed from the ring (or the overflow area) until the
/// closure it was passed to returns.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    envelope: Envelope,
    payload: &'a [u8],
    overflowed: bool,
}

impl<'a> Frame<'a> {
    /// Call id, task id and flags the producer sent.
    pub fn envelope(&self) -> Envelope {
        self.envelope
    }

    /// The payload bytes, exactly as sent.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Whether the payload travelled through the overflow area.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

/// A frame located but not yet consumed.
struct Located {
    envelope: Envelope,
    payload: *const u8,
    len: usize,
    overflowed: bool,
    /// Ring position just past this frame.
    next: u64,
}

/// Reads framed messages from one ring of a lane, in the order they were sent.
///
/// A receive hands the message to a closure, so payloads are read where they
/// lie; the space is given back to the producer when the closure returns.
///
/// ```
/// use knit_transport::{lane, Envelope, LaneConfig};
/// let (mut host, mut worker) = lane(&LaneConfig::default()).unwrap();
/// host.requests.send(Envelope { call_id: 3, ..Envelope::default() }, &[1, 2, 3]).unwrap();
/// let sum: u32 = worker.requests.recv(|f| f.payload().iter().map(|&b| b as u32).sum()).unwrap();
/// assert_eq!(sum, 6);
/// ```
pub struct Consumer {
    region: Arc<LaneRegion>,
    control: *const RingControl,
    data: *const u8,
    overflow: *const u8,
    capacity: u64,
    overflow_bytes: u64,
    max_message: u64,
    inline_max: u64,
    /// Bytes consumed and given back.
    head: u64,
    /// Last value read from the producer's `tail`; re-read only when it looks empty.
    cached_tail: u64,
    /// Overflow blocks released so far.
    freed: u64,
    /// Sequence number the next frame must carry.
    seq: u32,
    spin: Duration,
    sharing: Sharing,
    parks: Cell<u64>,
    /// A read-only view made by the producer (see `Producer::salvage`): takes the
    /// first frame's sequence number as it finds it, never releases, never closes.
    salvage: bool,
    /// Whether the next frame's sequence number is taken as found (salvage only).
    adopt_seq: bool,
}

// SAFETY: the raw pointers point into `region`, which the consumer keeps alive; the
// consumer is the only reader of its ring's published bytes and only writer of `head`.
unsafe impl Send for Consumer {}

impl Consumer {
    pub(crate) fn new(region: Arc<LaneRegion>, dir: Direction) -> Consumer {
        let config = region.config().clone();
        Consumer {
            control: region.control(dir) as *const RingControl,
            data: region.ring_data(dir),
            overflow: region.overflow_data(dir),
            capacity: config.ring_bytes as u64,
            overflow_bytes: config.overflow_max_bytes as u64,
            max_message: config.max_message() as u64,
            inline_max: config.inline_max_bytes as u64,
            head: 0,
            cached_tail: 0,
            freed: 0,
            seq: 0,
            spin: config.spin,
            sharing: region.sharing(),
            parks: Cell::new(0),
            salvage: false,
            adopt_seq: false,
            region,
        }
    }

    /// A read-only reader of the frames published up to `tail` that the real
    /// consumer has not released yet.
    pub(crate) fn salvage_reader(region: Arc<LaneRegion>, dir: Direction, tail: u64) -> Consumer {
        let mut reader = Consumer::new(region, dir);
        reader.head = reader.control().consumed.head.load(Ordering::Acquire);
        reader.cached_tail = tail;
        reader.salvage = true;
        reader.adopt_seq = true;
        reader
    }

    /// Hands every frame between `head` and the producer's tail to `f` without
    /// consuming anything (see `Producer::salvage`); returns how many.
    pub(crate) fn read_all(
        &mut self,
        mut f: impl FnMut(Frame<'_>),
    ) -> Result<usize, TransportError> {
        debug_assert!(self.salvage);
        let mut count = 0;
        while let Some(at) = self.locate()? {
            // SAFETY: `locate` bounds-checked the payload; the producer, who
            // called this, writes nothing while it runs, and the real consumer
            // only reads.
            let payload = unsafe { std::slice::from_raw_parts(at.payload, at.len) };
            f(Frame {
                envelope: at.envelope,
                payload,
                overflowed: at.overflowed,
            });
            self.head = at.next;
            self.seq = self.seq.wrapping_add(1);
            self.adopt_seq = false;
            count += 1;
        }
        Ok(count)
    }

    #[inline]
    fn control(&self) -> &RingControl {
        // SAFETY: points into `self.region`'s mapping, alive as long as `self`.
        unsafe { &*self.control }
    }

    /// How many times this end has gone to sleep on its futex word (waits that
    /// ended during the spin phase do not count).
    pub fn park_count(&self) -> u64 {
        self.parks.get()
    }

    /// How long blocking receives spin before parking.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// The region this consumer reads from.
    pub fn region(&self) -> &Arc<LaneRegion> {
        &self.region
    }

    /// Whether a message is waiting (one load of the producer's index at most).
    #[inline]
    pub fn has_pending(&mut self) -> bool {
        if self.head != self.cached_tail {
            return true;
        }
        self.cached_tail = self.control().tail.load(Ordering::Acquire);
        self.head != self.cached_tail
    }

    /// Receives one message if there is one: `Ok(None)` when empty,
    /// `Err(Closed)` when empty and closed.
    #[inline]
    pub fn try_recv<R>(
        &mut self,
        f: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<Option<R>, TransportError> {
        let mut f = Some(f);
        let mut out = None;
        self.drain(1, |frame| out = f.take().map(|f| f(frame)))?;
        Ok(out)
    }

    /// Receives one message, spinning then parking until one arrives.
    pub fn recv<R>(&mut self, f: impl FnOnce(Frame<'_>) -> R) -> Result<R, TransportError> {
        self.recv_deadline(None, f)?.ok_or(TransportError::Closed)
    }

    /// Receives one message, waiting at most until `deadline` (`Ok(None)` then).
    pub fn recv_deadline<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<Option<R>, TransportError> {
        let mut f = Some(f);
        loop {
            if self.wait(deadline) == WaitOutcome::TimedOut {
                return Ok(None);
            }
            // Ready or closed: `try_recv` delivers the message or reports `Closed`;
            // it cannot come back empty-handed, but looping costs nothing if it did.
            let take = |frame: Frame<'_>| (f.take().expect("called at most once"))(frame);
            if let Some(r) = self.try_recv(take)? {
                return Ok(Some(r));
            }
        }
    }

    /// Hands up to `max` waiting messages to `f`, in order, then gives their space
    /// back with one store. Returns how many were handed over; `Err(Closed)` if
    /// none were waiting and the lane is closed.
    ///
    /// If `f` panics, the messages it already returned from are consumed and the
    /// one it panicked on is not: it will be delivered again.
    pub fn drain(
        &mut self,
        max: usize,
        mut f: impl FnMut(Frame<'_>),
    ) -> Result<usize, TransportError> {
        let mut progress = Progress {
            consumer: self,
            count: 0,
        };
        while progress.count < max {
            let Some(at) = progress.consumer.locate()? else {
                break;
            };
            // SAFETY: `locate` bounds-checked the payload against the ring or the
            // overflow area, and those bytes stay untouched by the producer until
            // `head`/`freed` move past them, which happens after `f` returns.
            let payload = unsafe { std::slice::from_raw_parts(at.payload, at.len) };
            f(Frame {
                envelope: at.envelope,
                payload,
                overflowed: at.overflowed,
            });
            let consumer = &mut *progress.consumer;
            consumer.head = at.next;
            consumer.seq = consumer.seq.wrapping_add(1);
            consumer.freed += at.overflowed as u64;
            progress.count += 1;
        }
        let count = progress.count;
        drop(progress);
        if count == 0 && self.region.is_closed() && !self.has_pending() {
            return Err(TransportError::Closed);
        }
        Ok(count)
    }

    /// Waits (spin, then park) until a message is waiting, the lane closes, or
    /// `deadline` passes.
    pub fn wait(&mut self, deadline: Option<Instant>) -> WaitOutcome {
        self.wait_or(deadline, || false)
    }

    /// [`Consumer::wait`], also returning `Ready` once `woken()` is true:
    /// for a consumer with work of its own that other threads can make ready
    /// (a future's waker). Whoever makes `woken()` true calls
    /// [`LaneRegion::wake_consumer`] afterwards, which the sleeping consumer
    /// then cannot miss (the same fence pairing as a message's).
    pub fn wait_or(
        &mut self,
        deadline: Option<Instant>,
        mut woken: impl FnMut() -> bool,
    ) -> WaitOutcome {
        if self.has_pending() || woken() {
            return WaitOutcome::Ready;
        }
        let head = self.head;
        let control = self.control();
        // Where the next frame starts (its header, or a pad's).
        let next = self
            .data
            .wrapping_add((head & (self.capacity - 1)) as usize);
        let site = WaitSite {
            word: &control.data_wait,
            closed: &self.region.header().closed,
            sharing: self.sharing,
            parks: &self.parks,
        };
        site.wait(self.spin, deadline, || {
            if woken() {
                return true;
            }
            let moved = control.tail.load(Ordering::Acquire) != head;
            if moved {
                // The frame's line is a second miss after the tail's: asked
                // for now, it travels while this thread returns to `drain`
                // (the lane's hot round trip went from 1.25x to 1.02x the
                // atomic ping-pong in the transport benchmark).
                wait::prefetch(next);
            }
            moved
        })
    }

    /// Finds the next frame after `head` without consuming it.
    fn locate(&mut self) -> Result<Option<Located>, TransportError> {
        let mask = self.capacity - 1;
        let mut pos = self.head;
        loop {
            if pos == self.cached_tail {
                self.cached_tail = self.control().tail.load(Ordering::Acquire);
                if pos == self.cached_tail {
                    // Only skipped bytes were left: consume them so the producer
                    // can reuse them.
                    self.head = pos;
                    return Ok(None);
                }
            }
            let available = self.cached_tail.wrapping_sub(pos);
            if available > self.capacity {
                return Err(corrupt(pos, "published index is out of range"));
            }
            let at = (pos & mask) as usize;
            let room_to_end = self.capacity - at as u64;
            if room_to_end < FRAME_HEADER_BYTES as u64 {
                if room_to_end > available {
                    return Err(corrupt(pos, "skip past the published index"));
                }
                pos += room_to_end;
                continue;
            }
            // SAFETY: `at` is 8-aligned (frames are) and at least a header's bytes
            // precede the ring's end; the bytes were published (pos < tail).
            let header = unsafe { std::ptr::read(self.data.add(at) as *const RawHeader) };
            if header.kind == KIND_PAD {
                if room_to_end > available {
                    return Err(corrupt(pos, "padding past the published index"));
                }
                pos += room_to_end;
                continue;
            }
            if header.seq != self.seq {
                if !self.adopt_seq {
                    return Err(corrupt(pos, "sequence number out of order"));
                }
                // A salvage reader starts mid-stream: the first frame sets the count.
                self.seq = header.seq;
            }
            let body_len = header.body_len as u64;
            let frame = frame_bytes(header.body_len as usize) as u64;
            if frame > room_to_end || frame > available {
                return Err(corrupt(
                    pos,
                    "frame runs past the ring or the published index",
                ));
            }
            // SAFETY (both arms): the body lies inside this frame, just checked to be
            // within the ring and published.
            let body = unsafe { self.data.add(at + FRAME_HEADER_BYTES) };
            let (payload, len, overflowed) = match header.kind {
                KIND_INLINE if body_len <= self.inline_max => (body, body_len, false),
                KIND_OVERFLOW if body_len == OVERFLOW_REF_BYTES as u64 => {
                    // SAFETY: body is 8-aligned and 16 bytes long (checked above).
                    let r = unsafe { std::ptr::read(body as *const OverflowRef) };
                    let in_area = r
                        .offset
                        .checked_add(r.len)
                        .is_some_and(|end| end <= self.overflow_bytes);
                    if !in_area || r.len > self.max_message {
                        return Err(corrupt(pos, "overflow reference outside the overflow area"));
                    }
                    // SAFETY: offset is within the overflow area (checked above).
                    (unsafe { self.overflow.add(r.offset as usize) }, r.len, true)
                }
                _ => return Err(corrupt(pos, "unknown frame kind or bad body length")),
            };
            self.head = pos;
            return Ok(Some(Located {
                envelope: header.envelope(),
                payload,
                len: len as usize,
                overflowed,
                next: pos + frame,
            }));
        }
    }

    /// Gives consumed ring bytes and overflow blocks back to the producer.
    fn release(&mut self) {
        let consumed = &self.control().consumed;
        consumed.freed.store(self.freed, Ordering::Release);
        consumed.head.store(self.head, Ordering::Release);
        wait::notify(&self.control().space_wait, self.sharing);
    }
}

fn corrupt(position: u64, reason: &'static str) -> TransportError {
    TransportError::Corrupt { position, reason }
}

/// Releases what a drain consumed, also when the closure panics.
struct Progress<'a> {
    consumer: &'a mut Consumer,
    count: usize,
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        let published_head = self
            .consumer
            .control()
            .consumed
            .head
            .load(Ordering::Relaxed);
        if self.consumer.head != published_head {
            self.consumer.release();
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if !self.salvage {
            self.region.close();
        }
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .field("freed", &self.freed)
            .finish_non_exhaustive()
    }
}
