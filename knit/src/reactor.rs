//! The tokio runtime async tasks run in (feature `tokio`): one reactor thread per pool drives their timers and I/O while the workers poll their futures.
//!
//! A worker polls an async task's future inside the runtime's context
//! ([`Reactor::enter`]), so the future registers its timers and sockets with
//! this runtime; the runtime's one thread parks in its driver and fires
//! their wakers, which wake the worker. Tasks never run on the reactor
//! thread itself.

use tokio::runtime::{Builder, Runtime};

/// A pool's tokio runtime.
pub(crate) struct Reactor {
    runtime: Option<Runtime>,
}

impl Reactor {
    pub(crate) fn new() -> std::io::Result<Reactor> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("knit-reactor")
            .enable_all()
            .build()?;
        Ok(Reactor {
            runtime: Some(runtime),
        })
    }

    /// Runs `f` inside the runtime's context.
    #[inline]
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _inside = self.runtime.as_ref().map(Runtime::enter);
        f()
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // Without blocking: the pool may be dropped inside an async context
        // (a `#[tokio::main]` application), where a blocking drop panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
