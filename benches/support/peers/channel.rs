//! Request/response pools on channels: crossbeam-channel (one request queue
//! shared by every worker) and std mpsc (one request queue per worker, filled
//! round robin, because an mpsc receiver cannot be shared), both replying on
//! one channel; and crossbeam-channel with a reply channel per call, which
//! gives every call its own handle as a knit `Call` does.

use std::sync::mpsc;
use std::thread::JoinHandle;

use knit_bench::pin_to;

/// Request and reply queues hold this many messages.
pub const CAPACITY: usize = 4096;

/// A bounded channel, as the channel pools use it.
pub trait Queue<T>: Sized + Send + 'static {
    /// The receiving end.
    type Rx: Send + 'static;
    /// A new channel holding up to `cap` messages.
    fn pair(cap: usize) -> (Self, Self::Rx);
    /// Sends unless the channel is full (gives the message back then).
    fn try_put(&self, v: T) -> Result<(), T>;
    /// Sends, waiting for room; false if the receiver is gone.
    fn put(&self, v: T) -> bool;
    /// Receives, waiting; `None` once every sender is gone.
    fn take(rx: &Self::Rx) -> Option<T>;
}

impl<T: Send + 'static> Queue<T> for crossbeam_channel::Sender<T> {
    type Rx = crossbeam_channel::Receiver<T>;
    fn pair(cap: usize) -> (Self, Self::Rx) {
        crossbeam_channel::bounded(cap)
    }
    fn try_put(&self, v: T) -> Result<(), T> {
        self.try_send(v).map_err(|e| e.into_inner())
    }
    fn put(&self, v: T) -> bool {
        self.send(v).is_ok()
    }
    fn take(rx: &Self::Rx) -> Option<T> {
        rx.recv().ok()
    }
}

impl<T: Send + 'static> Queue<T> for mpsc::SyncSender<T> {
    type Rx = mpsc::Receiver<T>;
    fn pair(cap: usize) -> (Self, Self::Rx) {
        mpsc::sync_channel(cap)
    }
    fn try_put(&self, v: T) -> Result<(), T> {
        self.try_send(v).map_err(|e| match e {
            mpsc::TrySendError::Full(v) | mpsc::TrySendError::Disconnected(v) => v,
        })
    }
    fn put(&self, v: T) -> bool {
        self.send(v).is_ok()
    }
    fn take(rx: &Self::Rx) -> Option<T> {
        rx.recv().ok()
    }
}

/// A pool of worker threads that take requests from channel(s) `Q`, run the
/// work function and send the result back on one reply channel `R`.
pub struct ChannelPool<I, O, Q: Queue<I>, R: Queue<O>> {
    requests: Vec<Q>,
    next: usize,
    replies: R::Rx,
    workers: Vec<JoinHandle<()>>,
    _types: std::marker::PhantomData<fn(I) -> O>,
}

/// The crossbeam-channel pool: one shared request queue.
pub type Crossbeam<I, O> =
    ChannelPool<I, O, crossbeam_channel::Sender<I>, crossbeam_channel::Sender<O>>;
/// The std mpsc pool: one request queue per worker.
pub type Mpsc<I, O> = ChannelPool<I, O, mpsc::SyncSender<I>, mpsc::SyncSender<O>>;

/// Worker `index`: pinned like knit's worker `index` (to core `index + 1`),
/// serving requests until every sender is gone.
fn spawn_worker<I: 'static, O: 'static, Q: Queue<I>, R: Queue<O>>(
    index: usize,
    requests: Q::Rx,
    replies: R,
    work: fn(I) -> O,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        pin_to(index + 1);
        while let Some(x) = Q::take(&requests) {
            if !replies.put(work(x)) {
                return;
            }
        }
    })
}

impl<I: Send + 'static, O: Send + 'static> Crossbeam<I, O> {
    /// `workers` threads sharing one request queue.
    pub fn start(workers: usize, work: fn(I) -> O) -> Self {
        let (tx, rx) = crossbeam_channel::Sender::pair(CAPACITY);
        let (reply_tx, replies) = crossbeam_channel::Sender::pair(CAPACITY);
        let workers = (0..workers)
            .map(|i| {
                spawn_worker::<I, O, crossbeam_channel::Sender<I>, _>(
                    i,
                    rx.clone(),
                    reply_tx.clone(),
                    work,
                )
            })
            .collect();
        Self::assemble(vec![tx], replies, workers)
    }
}

impl<I: Send + 'static, O: Send + 'static> Mpsc<I, O> {
    /// `workers` threads with one request queue each.
    pub fn start(workers: usize, work: fn(I) -> O) -> Self {
        let (reply_tx, replies) = mpsc::SyncSender::pair(CAPACITY);
        let (requests, workers) = (0..workers)
            .map(|i| {
                let (tx, rx) = mpsc::SyncSender::pair(CAPACITY);
                (
                    tx,
                    spawn_worker::<I, O, mpsc::SyncSender<I>, _>(i, rx, reply_tx.clone(), work),
                )
            })
            .unzip();
        Self::assemble(requests, replies, workers)
    }
}

impl<I, O, Q: Queue<I>, R: Queue<O>> ChannelPool<I, O, Q, R> {
    fn assemble(requests: Vec<Q>, replies: R::Rx, workers: Vec<JoinHandle<()>>) -> Self {
        ChannelPool {
            requests,
            next: 0,
            replies,
            workers,
            _types: std::marker::PhantomData,
        }
    }

    fn queue(&mut self) -> &Q {
        let q = &self.requests[self.next];
        self.next = (self.next + 1) % self.requests.len();
        q
    }

    /// One request, then its reply.
    pub fn call(&mut self, input: I) -> O {
        assert!(self.queue().put(input), "channel pool worker gone");
        R::take(&self.replies).expect("channel pool worker gone")
    }

    /// Sends every input, then takes the replies (in completion order); when
    /// a queue is full, takes a reply first.
    pub fn batch(&mut self, inputs: impl IntoIterator<Item = I>, mut each: impl FnMut(O)) {
        let mut pending = 0usize;
        for mut x in inputs {
            loop {
                match self.queue().try_put(x) {
                    Ok(()) => break,
                    Err(back) => {
                        x = back;
                        each(R::take(&self.replies).expect("channel pool worker gone"));
                        pending -= 1;
                    }
                }
            }
            pending += 1;
        }
        for _ in 0..pending {
            each(R::take(&self.replies).expect("channel pool worker gone"));
        }
    }
}

impl<I, O, Q: Queue<I>, R: Queue<O>> Drop for ChannelPool<I, O, Q, R> {
    fn drop(&mut self) {
        self.requests.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// What a request of the reply-per-call pool carries: the input and where its
/// result goes.
type Request<I, O> = (I, crossbeam_channel::Sender<O>);

/// A crossbeam-channel pool in which every request brings its own one-slot
/// reply channel: each call gets a handle that any thread can wait on, in any
/// order (what a knit `Call` is), at the price of a channel per call.
pub struct CrossbeamPerCall<I, O> {
    requests: Option<crossbeam_channel::Sender<Request<I, O>>>,
    workers: Vec<JoinHandle<()>>,
}

impl<I: Send + 'static, O: Send + 'static> CrossbeamPerCall<I, O> {
    /// `workers` threads sharing one request queue.
    pub fn start(workers: usize, work: fn(I) -> O) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Request<I, O>>(CAPACITY);
        let workers = (0..workers)
            .map(|i| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    pin_to(i + 1);
                    while let Ok((x, reply)) = rx.recv() {
                        // The caller may have dropped its handle; that is its choice.
                        let _ = reply.send(work(x));
                    }
                })
            })
            .collect();
        CrossbeamPerCall {
            requests: Some(tx),
            workers,
        }
    }

    fn send(&self, input: I) -> crossbeam_channel::Receiver<O> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.requests
            .as_ref()
            .expect("the pool is running")
            .send((input, tx))
            .expect("reply-per-call pool worker gone");
        rx
    }

    /// One request, then its reply.
    pub fn call(&mut self, input: I) -> O {
        self.send(input)
            .recv()
            .expect("reply-per-call pool worker gone")
    }

    /// Sends every input, keeping each call's reply channel, then waits for
    /// each in the order sent.
    pub fn batch(&mut self, inputs: impl IntoIterator<Item = I>, mut each: impl FnMut(O)) {
        let handles: Vec<_> = inputs.into_iter().map(|x| self.send(x)).collect();
        for rx in handles {
            each(rx.recv().expect("reply-per-call pool worker gone"));
        }
    }
}

impl<I, O> Drop for CrossbeamPerCall<I, O> {
    fn drop(&mut self) {
        self.requests = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
