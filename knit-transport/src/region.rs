//! A lane region: one mapping holding a header, two ring control blocks, two
//! rings and two overflow areas, all located by offsets from the mapping's start
//! so that another process (or a second mapping) can use the same bytes.

use std::fs::File;
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use memmap2::{MmapMut, MmapOptions};

use crate::config::LaneConfig;
use crate::error::TransportError;
use crate::futex::{FutexWord, Sharing};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::wait;

/// "KNITLANE" in ASCII, read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"KNITLANE");
/// Bumped whenever the byte layout changes.
pub(crate) const LAYOUT_VERSION: u32 = 1;

const PAGE: usize = 4096;
const CONTROL_ALIGN: usize = 128;

/// The two directions of a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host to worker.
    Requests = 0,
    /// Worker to host.
    Responses = 1,
}

/// Fields written once by the creator, then only read; plus the closing flag and
/// the claims on the four ring ends.
#[repr(C)]
pub(crate) struct RegionHeader {
    magic: u64,
    version: u32,
    sharing: u32,
    total_bytes: u64,
    ring_bytes: u64,
    inline_max: u64,
    overflow_initial: u64,
    overflow_max: u64,
    max_message: u64,
    control_off: [u64; 2],
    data_off: [u64; 2],
    overflow_off: [u64; 2],
    claims: AtomicU32,
    pub(crate) closed: CachePadded<AtomicU32>,
}

/// The shared state of one ring. Each group sits on its own cache line(s) and has
/// exactly one writer, so the hot path of a message touches one shared line.
#[repr(C)]
pub(crate) struct RingControl {
    /// Bytes published so far (producer writes).
    pub tail: CachePadded<AtomicU64>,
    /// Consumer's progress (consumer writes).
    pub consumed: CachePadded<Consumed>,
    /// The consumer announces sleep here when the ring is empty.
    pub data_wait: CachePadded<FutexWord>,
    /// The producer announces sleep here when the ring or overflow area is full.
    pub space_wait: CachePadded<FutexWord>,
}

/// What the consumer gives back: ring bytes and overflow allocations.
#[repr(C)]
pub(crate) struct Consumed {
    /// Bytes consumed so far.
    pub head: AtomicU64,
    /// Overflow payloads released so far (they are released in order).
    pub freed: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<RingControl>() == 4 * CONTROL_ALIGN);
    assert!(std::mem::size_of::<RegionHeader>() <= 2 * CONTROL_ALIGN);
};

/// Byte offsets of everything in the region, derived from a config.
#[derive(Clone, Copy, Debug)]
struct Layout {
    control_off: [usize; 2],
    data_off: [usize; 2],
    overflow_off: [usize; 2],
    total: usize,
}

const fn align_up(value: usize, align: usize) -> usize {
    (value + align - 1) & !(align - 1)
}

impl Layout {
    fn for_config(config: &LaneConfig) -> Layout {
        let mut at = align_up(std::mem::size_of::<RegionHeader>(), CONTROL_ALIGN);
        let control = align_up(std::mem::size_of::<RingControl>(), CONTROL_ALIGN);
        let control_off = [at, at + control];
        at = align_up(at + 2 * control, PAGE);
        let data_off = [at, at + config.ring_bytes];
        at = align_up(at + 2 * config.ring_bytes, PAGE);
        let overflow = align_up(config.overflow_max_bytes, PAGE);
        let overflow_off = [at, at + overflow];
        let total = at + 2 * overflow;
        Layout {
            control_off,
            data_off,
            overflow_off,
            total,
        }
    }
}

/// One lane's shared memory. Ends hold it through an `Arc`; the mapping lives as
/// long as any end does.
///
/// ```
/// use knit_transport::{LaneConfig, LaneRegion};
/// let region = LaneRegion::anonymous(&LaneConfig::default()).unwrap();
/// assert!(!region.is_closed());
/// region.close();
/// assert!(region.is_closed());
/// ```
pub struct LaneRegion {
    map: MmapMut,
    base: *mut u8,
    config: LaneConfig,
    layout: Layout,
    sharing: Sharing,
}

// SAFETY: the mapping is only reached through atomics (control blocks) or through
// byte ranges whose ownership the ring protocol hands from one end to the other
// with release/acquire ordering; the raw base pointer is just the mapping's start.
unsafe impl Send for LaneRegion {}
// SAFETY: as above; `&LaneRegion` exposes only atomic operations and the immutable
// config/layout.
unsafe impl Sync for LaneRegion {}

const CLAIM_HOST: u32 = 1;
const CLAIM_WORKER: u32 = 2;

impl LaneRegion {
    /// A region in private anonymous memory, for threads of this process.
    pub fn anonymous(config: &LaneConfig) -> Result<Arc<LaneRegion>, TransportError> {
        config.validate()?;
        // Its wait words are private, so their handshakes can use asymmetric
        // fences from the first message on.
        crate::fence::init();
        let layout = Layout::for_config(config);
        let map = MmapOptions::new().len(layout.total).map_anon()?;
        Ok(Arc::new(LaneRegion::initialise(
            map,
            config,
            layout,
            Sharing::Private,
        )))
    }

    /// A region backed by `file` (e.g. a memfd), sized and initialised here, that
    /// another process can map with [`LaneRegion::open`]. Uses shared futexes.
    pub fn create_in(file: &File, config: &LaneConfig) -> Result<Arc<LaneRegion>, TransportError> {
        config.validate()?;
        if !cfg!(target_os = "linux") {
            return Err(TransportError::InvalidConfig(
                "file-backed (shared) lanes need Linux futexes".into(),
            ));
        }
        let layout = Layout::for_config(config);
        file.set_len(layout.total as u64)?;
        // SAFETY: the file was just sized by us; other mappings of it only touch it
        // through the same protocol (atomics + handed-over byte ranges), and a file
        // truncated under us is the documented hazard of shared mappings.
        let map = unsafe { MmapOptions::new().len(layout.total).map_mut(file)? };
        Ok(Arc::new(LaneRegion::initialise(
            map,
            config,
            layout,
            Sharing::Shared,
        )))
    }

    /// Maps a region another process (or this one) created with
    /// [`LaneRegion::create_in`], after checking its header.
    pub fn open(file: &File) -> Result<Arc<LaneRegion>, TransportError> {
        let len = file.metadata()?.len() as usize;
        if len < std::mem::size_of::<RegionHeader>() {
            return Err(TransportError::BadRegion("file is smaller than a header"));
        }
        // SAFETY: as in `create_in`; we validate the header before trusting any offset.
        let mut map = unsafe { MmapOptions::new().len(len).map_mut(file)? };
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is at least one header long and page aligned.
        let header = unsafe { &*(base as *const RegionHeader) };
        if header.magic != MAGIC {
            return Err(TransportError::BadRegion("bad magic"));
        }
        if header.version != LAYOUT_VERSION {
            return Err(TransportError::BadRegion("unsupported layout version"));
        }
        let config = LaneConfig {
            ring_bytes: header.ring_bytes as usize,
            inline_max_bytes: header.inline_max as usize,
            overflow_initial_bytes: header.overflow_initial as usize,
            overflow_max_bytes: header.overflow_max as usize,
            max_message_bytes: Some(header.max_message as usize),
            ..LaneConfig::default()
        };
        config
            .validate()
            .map_err(|_| TransportError::BadRegion("header sizes are inconsistent"))?;
        let layout = Layout::for_config(&config);
        let offsets_match = header.total_bytes as usize == layout.total
            && layout.total <= len
            && (0..2).all(|d| {
                header.control_off[d] as usize == layout.control_off[d]
                    && header.data_off[d] as usize == layout.data_off[d]
                    && header.overflow_off[d] as usize == layout.overflow_off[d]
            });
        if !offsets_match {
            return Err(TransportError::BadRegion(
                "header offsets do not match its sizes",
            ));
        }
        let sharing = if header.sharing == 1 {
            Sharing::Shared
        } else {
            return Err(TransportError::BadRegion(
                "region was not created for sharing",
            ));
        };
        Ok(Arc::new(LaneRegion {
            map,
            base,
            config,
            layout,
            sharing,
        }))
    }

    fn initialise(mut map: MmapMut, config: &LaneConfig, layout: Layout, sharing: Sharing) -> Self {
        let base = map.as_mut_ptr();
        let header = RegionHeader {
            magic: MAGIC,
            version: LAYOUT_VERSION,
            sharing: (sharing == Sharing::Shared) as u32,
            total_bytes: layout.total as u64,
            ring_bytes: config.ring_bytes as u64,
            inline_max: config.inline_max_bytes as u64,
            overflow_initial: config.overflow_initial_bytes as u64,
            overflow_max: config.overflow_max_bytes as u64,
            max_message: config.max_message() as u64,
            control_off: layout.control_off.map(|o| o as u64),
            data_off: layout.data_off.map(|o| o as u64),
            overflow_off: layout.overflow_off.map(|o| o as u64),
            claims: AtomicU32::new(0),
            closed: CachePadded::new(AtomicU32::new(0)),
        };
        // SAFETY: the mapping is fresh (nobody else can see it yet), page aligned
        // and `layout.total` bytes long, which covers the header and both control
        // blocks at their aligned offsets.
        unsafe {
            std::ptr::write(base as *mut RegionHeader, header);
            for off in layout.control_off {
                std::ptr::write(
                    base.add(off) as *mut RingControl,
                    RingControl {
                        tail: CachePadded::new(AtomicU64::new(0)),
                        consumed: CachePadded::new(Consumed {
                            head: AtomicU64::new(0),
                            freed: AtomicU64::new(0),
                        }),
                        data_wait: CachePadded::new(FutexWord::new(wait::AWAKE)),
                        space_wait: CachePadded::new(FutexWord::new(wait::AWAKE)),
                    },
                );
            }
        }
        LaneRegion {
            map,
            base,
            config: config.clone(),
            layout,
            sharing,
        }
    }

    pub(crate) fn header(&self) -> &RegionHeader {
        // SAFETY: written in `initialise` (or validated in `open`) at offset 0 of a
        // live, aligned mapping; only its atomics are ever modified afterwards.
        unsafe { &*(self.base as *const RegionHeader) }
    }

    pub(crate) fn control(&self, dir: Direction) -> &RingControl {
        // SAFETY: the control block was written at this aligned offset when the
        // region was created, and the mapping outlives `&self`.
        unsafe { &*(self.base.add(self.layout.control_off[dir as usize]) as *const RingControl) }
    }

    /// Start of `dir`'s ring bytes (`config.ring_bytes` long).
    pub(crate) fn ring_data(&self, dir: Direction) -> *mut u8 {
        // SAFETY: the offset is inside the mapping by construction of `Layout`.
        unsafe { self.base.add(self.layout.data_off[dir as usize]) }
    }

    /// Start of `dir`'s overflow area (`config.overflow_max_bytes` long).
    pub(crate) fn overflow_data(&self, dir: Direction) -> *mut u8 {
        // SAFETY: the offset is inside the mapping by construction of `Layout`.
        unsafe { self.base.add(self.layout.overflow_off[dir as usize]) }
    }

    /// The sizes this region was built with.
    pub fn config(&self) -> &LaneConfig {
        &self.config
    }

    /// Whether futex words in this region are process-shared.
    pub fn sharing(&self) -> Sharing {
        self.sharing
    }

    /// Bytes mapped (mostly reserved address space: overflow pages are touched
    /// only as the overflow areas grow).
    pub fn mapped_bytes(&self) -> usize {
        self.map.len()
    }

    /// Closes the lane: every waiting end wakes, sends fail with `Closed`, and
    /// receivers get `Closed` once they have drained what was already published.
    pub fn close(&self) {
        self.header().closed.store(1, Ordering::SeqCst);
        crate::sync::fence(Ordering::SeqCst);
        for dir in [Direction::Requests, Direction::Responses] {
            let control = self.control(dir);
            wait::wake_all(&control.data_wait, self.sharing);
            wait::wake_all(&control.space_wait, self.sharing);
        }
    }

    /// Wakes the request ring's consumer if it sleeps in
    /// [`Consumer::wait_or`](crate::Consumer::wait_or): call it after making
    /// that wait's `woken()` true. Costs a light fence and a load unless
    /// the consumer sleeps.
    pub fn wake_consumer(&self) {
        wait::notify(&self.control(Direction::Requests).data_wait, self.sharing);
    }

    /// Whether [`LaneRegion::close`] has been called (by any mapping).
    pub fn is_closed(&self) -> bool {
        self.header().closed.load(Ordering::Acquire) != 0
    }

    pub(crate) fn claim(&self, host: bool) -> Result<(), TransportError> {
        let (bit, name) = if host {
            (CLAIM_HOST, "host")
        } else {
            (CLAIM_WORKER, "worker")
        };
        if self.header().claims.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Err(TransportError::AlreadyClaimed(name));
        }
        Ok(())
    }
}

impl Drop for LaneRegion {
    fn drop(&mut self) {
        // Loom's atomics, mutexes and condvars are tracked objects that must be
        // dropped; the std ones have no drop glue, and another process may still
        // be using them, so only the model build runs destructors.
        #[cfg(loom)]
        // SAFETY: this is the last reference to the mapping in the model (no other
        // process exists under loom), and each object was written once.
        unsafe {
            for off in self.layout.control_off {
                std::ptr::drop_in_place(self.base.add(off) as *mut RingControl);
            }
            std::ptr::drop_in_place(self.base as *mut RegionHeader);
        }
    }
}

impl std::fmt::Debug for LaneRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneRegion")
            .field("config", &self.config)
            .field("sharing", &self.sharing)
            .field("mapped_bytes", &self.map.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}
