//! Shared-memory lanes for the knit task pool.
//!
//! A *lane* connects a host thread to one worker. It is one memory region that
//! holds a request ring (host → worker) and a response ring (worker → host),
//! each a single-producer single-consumer ring of framed messages, plus an
//! overflow area per direction for payloads too large for the ring.
//!
//! * Everything inside the region is addressed by offsets, so a region created in
//!   a file ([`LaneRegion::create_in`]) can be mapped by another process
//!   ([`LaneRegion::open`]).
//! * Each shared index has one writer and its own cache line; each side keeps a
//!   cached copy of the other's index and re-reads it only when the ring looks
//!   full (producer) or empty (consumer).
//! * A waiting side spins for a bounded budget, then parks on a futex word after
//!   announcing itself with a SeqCst fence; the other side wakes it only if it
//!   announced, so no syscall happens while both are awake, and no wake-up is lost.
//!
//! ```
//! use knit_transport::{lane, Envelope, LaneConfig};
//!
//! let (mut host, mut worker) = lane(&LaneConfig::default()).unwrap();
//! let worker = std::thread::spawn(move || {
//!     // Echo every request back, doubled, until the host hangs up.
//!     while let Ok(Some((env, bytes))) = worker
//!         .requests
//!         .recv(|f| (f.envelope(), f.payload().to_vec()))
//!         .map(Some)
//!     {
//!         let doubled: Vec<u8> = bytes.iter().map(|b| b * 2).collect();
//!         worker.responses.send(env, &doubled).unwrap();
//!     }
//! });
//! for i in 0..100u8 {
//!     host.requests.send(Envelope { call_id: i as u64, ..Envelope::default() }, &[i]).unwrap();
//!     let reply = host.responses.recv(|f| f.payload()[0]).unwrap();
//!     assert_eq!(reply, i.wrapping_mul(2));
//! }
//! drop(host); // closes the lane; the worker's recv returns Err(Closed)
//! worker.join().unwrap();
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(loom))]
mod bitmap;
mod config;
mod consumer;
mod error;
pub mod fence;
mod frame;
pub mod futex;
mod lane;
mod overflow;
mod producer;
mod region;
mod sync;
mod wait;

#[cfg(not(loom))]
pub use bitmap::FlagBitmap;
pub use config::LaneConfig;
pub use consumer::{Consumer, Frame};
pub use error::TransportError;
pub use frame::{Envelope, FRAME_ALIGN, FRAME_HEADER_BYTES};
pub use lane::{lane, HostEnd, WorkerEnd};
pub use producer::{Batch, Producer};
pub use region::{Direction, LaneRegion};
pub use wait::{SpinBudget, WaitOutcome};

#[cfg(all(test, not(loom)))]
mod tests;
