//! The two ends of a lane: the host sends requests and receives responses, the
//! worker does the opposite.

use std::sync::Arc;

use crate::config::LaneConfig;
use crate::consumer::Consumer;
use crate::error::TransportError;
use crate::producer::Producer;
use crate::region::{Direction, LaneRegion};

/// The host's end of a lane.
#[derive(Debug)]
pub struct HostEnd {
    /// Sends requests to the worker.
    pub requests: Producer,
    /// Receives the worker's responses.
    pub responses: Consumer,
}

/// The worker's end of a lane.
#[derive(Debug)]
pub struct WorkerEnd {
    /// Receives the host's requests.
    pub requests: Consumer,
    /// Sends responses to the host.
    pub responses: Producer,
}

impl LaneRegion {
    /// Takes the host's end; fails if it was already taken (through any mapping).
    pub fn host_end(self: &Arc<Self>) -> Result<HostEnd, TransportError> {
        self.claim(true)?;
        Ok(HostEnd {
            requests: Producer::new(self.clone(), Direction::Requests),
            responses: Consumer::new(self.clone(), Direction::Responses),
        })
    }

    /// Takes the worker's end; fails if it was already taken (through any mapping).
    pub fn worker_end(self: &Arc<Self>) -> Result<WorkerEnd, TransportError> {
        self.claim(false)?;
        Ok(WorkerEnd {
            requests: Consumer::new(self.clone(), Direction::Requests),
            responses: Producer::new(self.clone(), Direction::Responses),
        })
    }
}

/// A lane in anonymous memory, split into its two ends.
///
/// ```
/// use knit_transport::{lane, Envelope, LaneConfig};
/// let (mut host, mut worker) = lane(&LaneConfig::default()).unwrap();
/// let env = Envelope { call_id: 1, task_id: 2, flags: 0 };
/// host.requests.send(env, b"2+2").unwrap();
/// let call = worker.requests.recv(|f| f.envelope().call_id).unwrap();
/// worker.responses.send(Envelope { call_id: call, ..env }, b"4").unwrap();
/// assert_eq!(host.responses.recv(|f| f.payload().to_vec()).unwrap(), b"4");
/// ```
pub fn lane(config: &LaneConfig) -> Result<(HostEnd, WorkerEnd), TransportError> {
    let region = LaneRegion::anonymous(config)?;
    Ok((region.host_end()?, region.worker_end()?))
}
