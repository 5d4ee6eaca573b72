//! Pools that run closures: rayon (`spawn`, result sent back on a channel)
//! and tokio (`spawn_blocking`, result through its `JoinHandle`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use knit_bench::pin_to;

/// A rayon thread pool; each call is a `spawn` whose closure sends the result
/// back on a channel.
pub struct Rayon<I, O> {
    pool: rayon::ThreadPool,
    tx: mpsc::Sender<O>,
    rx: mpsc::Receiver<O>,
    work: fn(I) -> O,
}

impl<I: Send + 'static, O: Send + 'static> Rayon<I, O> {
    /// `workers` rayon threads, worker `i` pinned to core `i + 1`.
    pub fn start(workers: usize, work: fn(I) -> O) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .start_handler(|i| pin_to(i + 1))
            .build()
            .expect("rayon pool");
        let (tx, rx) = mpsc::channel();
        Rayon { pool, tx, rx, work }
    }

    fn send(&self, input: I) {
        let (tx, work) = (self.tx.clone(), self.work);
        self.pool.spawn(move || {
            let _ = tx.send(work(input));
        });
    }

    /// One spawn, then its result.
    pub fn call(&mut self, input: I) -> O {
        self.send(input);
        self.rx.recv().expect("rayon task lost")
    }

    /// Spawns every input, then takes the results in completion order.
    pub fn batch(&mut self, inputs: impl IntoIterator<Item = I>, mut each: impl FnMut(O)) {
        let mut pending = 0usize;
        for x in inputs {
            self.send(x);
            pending += 1;
        }
        for _ in 0..pending {
            each(self.rx.recv().expect("rayon task lost"));
        }
    }
}

/// A tokio current-thread runtime whose blocking pool has `workers` threads;
/// each call is a `spawn_blocking`, awaited with `block_on` on the caller.
pub struct Tokio<I, O> {
    rt: tokio::runtime::Runtime,
    work: fn(I) -> O,
}

impl<I: Send + 'static, O: Send + 'static> Tokio<I, O> {
    /// A runtime with at most `workers` blocking threads, pinned in the order
    /// they start to cores 1, 2, ... (wrapping).
    pub fn start(workers: usize, work: fn(I) -> O) -> Self {
        let started = AtomicUsize::new(0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(workers)
            .on_thread_start(move || pin_to(started.fetch_add(1, Ordering::Relaxed) % workers + 1))
            .build()
            .expect("tokio runtime");
        Tokio { rt, work }
    }

    /// One `spawn_blocking`, awaited.
    pub fn call(&mut self, input: I) -> O {
        let work = self.work;
        let handle = self.rt.spawn_blocking(move || work(input));
        self.rt.block_on(handle).expect("tokio task failed")
    }

    /// Spawns every input, then awaits the handles in order.
    pub fn batch(&mut self, inputs: impl IntoIterator<Item = I>, mut each: impl FnMut(O)) {
        let work = self.work;
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|x| self.rt.spawn_blocking(move || work(x)))
            .collect();
        self.rt.block_on(async {
            for h in handles {
                each(h.await.expect("tokio task failed"));
            }
        });
    }
}
