//! The sending end of one ring.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::consumer::{Consumer, Frame};
use crate::error::TransportError;
use crate::frame::{
    frame_bytes, Envelope, OverflowRef, RawHeader, FRAME_HEADER_BYTES, KIND_INLINE, KIND_OVERFLOW,
    OVERFLOW_REF_BYTES,
};
use crate::futex::Sharing;
use crate::overflow::OverflowAlloc;
use crate::region::{Direction, LaneRegion, RingControl};
use crate::sync::Ordering;
use crate::wait::{self, WaitOutcome, WaitSite};

/// Writes framed messages into one ring of a lane. There is exactly one
/// producer per ring (single producer, single consumer).
///
/// Messages written with [`Producer::try_send`] are published at once; a
/// [`Batch`] publishes many with one index store and at most one wake-up.
///
/// ```
/// use knit_transport::{lane, Envelope, LaneConfig};
/// let (mut host, mut worker) = lane(&LaneConfig::default()).unwrap();
/// host.requests.try_send(Envelope { call_id: 1, task_id: 9, flags: 0 }, b"ping").unwrap();
/// let got = worker.requests.try_recv(|f| f.payload().to_vec()).unwrap();
/// assert_eq!(got.as_deref(), Some(&b"ping"[..]));
/// ```
pub struct Producer {
    region: Arc<LaneRegion>,
    control: *const RingControl,
    data: *mut u8,
    overflow: *mut u8,
    capacity: u64,
    inline_max: usize,
    max_message: usize,
    /// Write cursor: bytes written, published or not.
    tail: u64,
    /// What the consumer has been told (`control.tail`).
    published: u64,
    /// Last value read from the consumer's `head`; re-read only when full.
    cached_head: u64,
    /// Last value read from the consumer's overflow release count.
    cached_freed: u64,
    seq: u32,
    alloc: OverflowAlloc,
    spin: Duration,
    sharing: Sharing,
    parks: Cell<u64>,
    dir: Direction,
}

// SAFETY: the raw pointers point into `region`, which the producer keeps alive;
// the producer is the only writer of its ring's tail and free bytes, wherever it runs.
unsafe impl Send for Producer {}

/// Where a reserved message goes; produced by `reserve`, consumed by `commit`.
struct Reservation {
    /// Bytes skipped at the end of the ring before the frame.
    skip: u64,
    body_len: usize,
    payload_len: usize,
    overflow_offset: Option<usize>,
}

impl Producer {
    pub(crate) fn new(region: Arc<LaneRegion>, dir: Direction) -> Producer {
        let config = region.config().clone();
        Producer {
            control: region.control(dir) as *const RingControl,
            data: region.ring_data(dir),
            overflow: region.overflow_data(dir),
            capacity: config.ring_bytes as u64,
            inline_max: config.inline_max_bytes,
            max_message: config.max_message(),
            tail: 0,
            published: 0,
            cached_head: 0,
            cached_freed: 0,
            seq: 0,
            alloc: OverflowAlloc::new(config.overflow_initial_bytes, config.overflow_max_bytes),
            spin: config.spin,
            sharing: region.sharing(),
            parks: Cell::new(0),
            dir,
            region,
        }
    }

    #[inline]
    fn control(&self) -> &RingControl {
        // SAFETY: points into `self.region`'s mapping, alive as long as `self`.
        unsafe { &*self.control }
    }

    /// The largest payload this producer accepts.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// How many times this end has gone to sleep on its futex word (waits that
    /// ended during the spin phase do not count).
    pub fn park_count(&self) -> u64 {
        self.parks.get()
    }

    /// How long blocking sends spin before parking.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// The region this producer writes into.
    pub fn region(&self) -> &Arc<LaneRegion> {
        &self.region
    }

    /// Bytes of overflow area in use as the FIFO's span so far (it grows on demand).
    pub fn overflow_capacity(&self) -> usize {
        self.alloc.capacity()
    }

    /// Sends `payload` if there is room now; `Err(Full)` leaves nothing written.
    #[inline]
    pub fn try_send(&mut self, env: Envelope, payload: &[u8]) -> Result<(), TransportError> {
        self.try_send_with(env, payload.len(), |dst, _| dst.copy_from_slice(payload))
    }

    /// Sends a payload of `len` bytes written in place by `fill` (e.g. an encoder),
    /// if there is room now. `fill` is called only when the message is accepted;
    /// it may also amend the envelope (the header is written after it), e.g. to
    /// flag an encoding that failed part way.
    #[inline]
    pub fn try_send_with(
        &mut self,
        env: Envelope,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut Envelope),
    ) -> Result<(), TransportError> {
        let reservation = self.reserve(len)?;
        self.commit(reservation, env, fill);
        self.publish();
        Ok(())
    }

    /// Sends `payload`, spinning then parking while the lane is full.
    pub fn send(&mut self, env: Envelope, payload: &[u8]) -> Result<(), TransportError> {
        self.send_with(
            env,
            payload.len(),
            |dst, _| dst.copy_from_slice(payload),
            None,
        )
    }

    /// Like [`Producer::try_send_with`], but waits for room: at most `timeout`
    /// (if given) from when the lane is first found full, then `Err(Full)`.
    /// When there is room, no clock is read.
    pub fn send_with(
        &mut self,
        env: Envelope,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut Envelope),
        timeout: Option<Duration>,
    ) -> Result<(), TransportError> {
        let mut deadline = None;
        let reservation = loop {
            match self.reserve(len) {
                Err(TransportError::Full) => {
                    self.publish();
                    let until =
                        *deadline.get_or_insert_with(|| timeout.map(|t| Instant::now() + t));
                    match self.wait_for_space(until) {
                        WaitOutcome::Ready => continue,
                        WaitOutcome::Closed => return Err(TransportError::Closed),
                        WaitOutcome::TimedOut => return Err(TransportError::Full),
                    }
                }
                other => break other?,
            }
        };
        self.commit(reservation, env, fill);
        self.publish();
        Ok(())
    }

    /// Hands `f` every message sent but not yet consumed, oldest first, without
    /// consuming them; returns how many. This is how a host takes back the work
    /// queued on a lane whose consumer died or is stuck: it reads the frames
    /// from its own side while the consumer (if alive) goes on reading them too,
    /// so the caller must make re-delivery idempotent (knit claims each call
    /// before running it).
    ///
    /// ```
    /// use knit_transport::{lane, Envelope, LaneConfig};
    /// let (mut host, worker) = lane(&LaneConfig::default()).unwrap();
    /// for id in 0..3 {
    ///     host.requests.send(Envelope { call_id: id, ..Envelope::default() }, &[id as u8]).unwrap();
    /// }
    /// drop(worker); // the consumer is gone; its work is still in the ring
    /// let mut ids = Vec::new();
    /// host.requests.salvage(|f| ids.push(f.envelope().call_id)).unwrap();
    /// assert_eq!(ids, [0, 1, 2]);
    /// ```
    pub fn salvage(&mut self, f: impl FnMut(Frame<'_>)) -> Result<usize, TransportError> {
        self.publish();
        Consumer::salvage_reader(self.region.clone(), self.dir, self.published).read_all(f)
    }

    /// Starts a batch: messages pushed to it become visible together when it is
    /// published or dropped.
    pub fn batch(&mut self) -> Batch<'_> {
        Batch { producer: self }
    }

    fn reserve(&mut self, len: usize) -> Result<Reservation, TransportError> {
        if self.region.header().closed.load(Ordering::Relaxed) != 0 {
            return Err(TransportError::Closed);
        }
        if len > self.max_message {
            return Err(TransportError::TooLarge {
                len,
                max: self.max_message,
            });
        }
        let inline = len <= self.inline_max;
        let body_len = if inline { len } else { OVERFLOW_REF_BYTES };
        let frame = frame_bytes(body_len) as u64;
        let room_to_end = self.capacity - (self.tail & (self.capacity - 1));
        let skip = if room_to_end >= frame { 0 } else { room_to_end };
        let needed = self.tail + skip + frame;
        if needed - self.cached_head > self.capacity {
            self.cached_head = self.control().consumed.head.load(Ordering::Acquire);
            if needed - self.cached_head > self.capacity {
                return Err(TransportError::Full);
            }
        }
        let overflow_offset = if inline {
            None
        } else {
            // Always refresh before allocating, so stale release counts never make
            // the area grow; this path moves large payloads, one load is nothing.
            self.cached_freed = self.control().consumed.freed.load(Ordering::Acquire);
            self.alloc.release_upto(self.cached_freed);
            Some(self.alloc.try_alloc(len).ok_or(TransportError::Full)?)
        };
        Ok(Reservation {
            skip,
            body_len,
            payload_len: len,
            overflow_offset,
        })
    }

    fn commit(
        &mut self,
        r: Reservation,
        mut env: Envelope,
        fill: impl FnOnce(&mut [u8], &mut Envelope),
    ) {
        let mask = self.capacity - 1;
        if r.skip > 0 {
            if r.skip >= FRAME_HEADER_BYTES as u64 {
                // SAFETY: `reserve` checked that the ring has `skip + frame` free
                // bytes from `tail`; the pad header lies inside them, 8-aligned.
                unsafe { self.write_header((self.tail & mask) as usize, RawHeader::pad()) };
            }
            self.tail += r.skip;
        }
        let at = (self.tail & mask) as usize;
        let kind = if r.overflow_offset.is_some() {
            KIND_OVERFLOW
        } else {
            KIND_INLINE
        };
        let payload: &mut [u8] = match r.overflow_offset {
            None => {
                // SAFETY: the body follows the header inside the reserved frame.
                unsafe {
                    std::slice::from_raw_parts_mut(
                        self.data.add(at + FRAME_HEADER_BYTES),
                        r.payload_len,
                    )
                }
            }
            Some(offset) => {
                let reference = OverflowRef {
                    offset: offset as u64,
                    len: r.payload_len as u64,
                };
                // SAFETY: the reference is the frame's body (16 bytes, 8-aligned);
                // the overflow block [offset, offset + len) was just allocated to us
                // and lies within the area (the allocator never exceeds its limit).
                unsafe {
                    std::ptr::write(
                        self.data.add(at + FRAME_HEADER_BYTES) as *mut OverflowRef,
                        reference,
                    );
                    std::slice::from_raw_parts_mut(self.overflow.add(offset), r.payload_len)
                }
            }
        };
        // If `fill` panics, nothing was published: give back the overflow block so
        // the allocator stays in step with the consumer's release count.
        let undo = CancelOnUnwind(r.overflow_offset.map(|_| &mut self.alloc));
        fill(payload, &mut env);
        std::mem::forget(undo);
        let header = RawHeader::new(env, r.body_len as u32, kind, self.seq);
        // SAFETY: the frame's bytes [at, at + frame_bytes(body_len)) are free (checked
        // by `reserve`) and do not cross the ring's end (the skip guarantees it);
        // the body written above starts after the header's bytes.
        unsafe { self.write_header(at, header) };
        self.seq = self.seq.wrapping_add(1);
        self.tail += frame_bytes(r.body_len) as u64;
    }

    /// # Safety
    /// `at` must be 8-aligned and `[at, at + 32)` free ring bytes owned by the producer.
    #[inline]
    unsafe fn write_header(&mut self, at: usize, header: RawHeader) {
        // SAFETY: guaranteed by the caller.
        unsafe { std::ptr::write(self.data.add(at) as *mut RawHeader, header) }
    }

    /// Makes everything written so far visible and wakes the consumer if it sleeps.
    #[inline]
    pub fn publish(&mut self) {
        if self.tail != self.published {
            self.control().tail.store(self.tail, Ordering::Release);
            self.published = self.tail;
            wait::notify(&self.control().data_wait, self.sharing);
        }
    }

    fn wait_for_space(&mut self, deadline: Option<Instant>) -> WaitOutcome {
        // Wait for the consumer to move past what `reserve` last saw; comparing with
        // fresh values instead could sleep through progress made in between.
        let (seen_head, seen_freed) = (self.cached_head, self.cached_freed);
        let control = self.control();
        let site = WaitSite {
            word: &control.space_wait,
            closed: &self.region.header().closed,
            sharing: self.sharing,
            parks: &self.parks,
        };
        site.wait(self.spin, deadline, || {
            control.consumed.head.load(Ordering::Acquire) != seen_head
                || control.consumed.freed.load(Ordering::Acquire) != seen_freed
        })
    }
}

struct CancelOnUnwind<'a>(Option<&'a mut OverflowAlloc>);

impl Drop for CancelOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(alloc) = self.0.as_deref_mut() {
            alloc.cancel_last();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.publish();
        self.region.close();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("tail", &self.tail)
            .field("published", &self.published)
            .field("overflow_live", &self.alloc.live_blocks())
            .finish_non_exhaustive()
    }
}

/// Messages pushed together and published with one store of the ring's tail.
/// Dropping the batch publishes what it holds.
///
/// ```
/// use knit_transport::{lane, Envelope, LaneConfig};
/// let (mut host, mut worker) = lane(&LaneConfig::default()).unwrap();
/// let mut batch = host.requests.batch();
/// for i in 0..10 {
///     batch.try_push(Envelope { call_id: i, ..Envelope::default() }, &[i as u8]).unwrap();
/// }
/// batch.publish();
/// let n = worker.requests.drain(100, |f| assert_eq!(f.payload(), &[f.envelope().call_id as u8])).unwrap();
/// assert_eq!(n, 10);
/// ```
pub struct Batch<'a> {
    producer: &'a mut Producer,
}

impl Batch<'_> {
    /// Adds a message if there is room; `Err(Full)` leaves the batch as it was.
    #[inline]
    pub fn try_push(&mut self, env: Envelope, payload: &[u8]) -> Result<(), TransportError> {
        self.try_push_with(env, payload.len(), |dst, _| dst.copy_from_slice(payload))
    }

    /// Adds a message whose payload `fill` writes in place, if there is room.
    #[inline]
    pub fn try_push_with(
        &mut self,
        env: Envelope,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut Envelope),
    ) -> Result<(), TransportError> {
        let reservation = self.producer.reserve(len)?;
        self.producer.commit(reservation, env, fill);
        Ok(())
    }

    /// Publishes the batch now (dropping it does the same).
    pub fn publish(self) {}
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.producer.publish();
    }
}
