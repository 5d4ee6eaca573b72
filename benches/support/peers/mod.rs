//! knit and its peers behind one interface, so every system is driven the
//! same way: same work function, same inputs, same batch sizes, workers
//! pinned from core 1 on and the caller on core 0. A bench binary includes
//! it next to the suite module: `#[path = "support/peers/mod.rs"] mod peers;`.
//!
//! Peers today: a crossbeam-channel pool, a std mpsc pool, rayon and tokio's
//! blocking pool. A new kind of contender (a JS lane, a process lane) is a
//! new [`Contender`] variant and a new [`Driver`] arm.

pub mod channel;
pub mod spawn;

use std::hint::black_box;
use std::time::Duration;

use knit::{create_pool, PoolOptions};
use knit_bench::pin_to;
use knit_bench::results::{Role, Spec};
use knit_bench::runner::{timed, timed_cold};

use crate::suite::{spec, Bench};

/// One piece of work, two ways: `task` sends it to a knit pool (a
/// `#[knit::task]` method), `plain` is the same function, which the peers
/// call directly.
pub struct Work<I, O> {
    /// Calls the task on a knit pool: `|c, x| c.my_task(x)`.
    pub task: fn(&knit::Caller, I) -> knit::Call<O>,
    /// The task's function itself.
    pub plain: fn(I) -> O,
}

impl<I, O> Clone for Work<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Work<I, O> {}

/// A system under test.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // A handful of contenders per run; boxing buys nothing.
pub enum Contender {
    /// knit with these options (`threads` and `pin` are set per scenario).
    Knit {
        /// Shown as the system's name.
        name: String,
        /// The pool's options.
        options: PoolOptions,
    },
    /// [`channel::Crossbeam`].
    Crossbeam,
    /// [`channel::CrossbeamPerCall`].
    CrossbeamPerCall,
    /// [`channel::Mpsc`].
    Mpsc,
    /// [`spawn::Rayon`].
    Rayon,
    /// [`spawn::Tokio`].
    Tokio,
}

impl Contender {
    /// knit with default options, named "knit".
    pub fn knit() -> Self {
        Self::knit_with("knit", PoolOptions::default())
    }

    /// knit with `options`, named `name`.
    pub fn knit_with(name: &str, options: PoolOptions) -> Self {
        Contender::Knit {
            name: name.into(),
            options,
        }
    }

    /// Every peer pool.
    pub fn peers() -> Vec<Contender> {
        vec![
            Contender::Crossbeam,
            Contender::CrossbeamPerCall,
            Contender::Mpsc,
            Contender::Rayon,
            Contender::Tokio,
        ]
    }

    /// `first` followed by every peer.
    pub fn with_peers(first: Contender) -> Vec<Contender> {
        let mut all = vec![first];
        all.extend(Self::peers());
        all
    }

    /// The name reports use.
    pub fn name(&self) -> &str {
        match self {
            Contender::Knit { name, .. } => name,
            Contender::Crossbeam => "crossbeam",
            Contender::CrossbeamPerCall => "crossbeam, reply per call",
            Contender::Mpsc => "std mpsc",
            Contender::Rayon => "rayon",
            Contender::Tokio => "tokio spawn_blocking",
        }
    }

    /// knit or peer.
    pub fn role(&self) -> Role {
        match self {
            Contender::Knit { .. } => Role::Knit,
            _ => Role::Peer,
        }
    }

    /// A spec for this contender in `group`.
    pub fn spec(&self, group: &str) -> Spec {
        spec(group, self.name(), self.role())
    }

    /// Starts this system with `workers` worker threads running `work`, and
    /// pins the calling thread to core 0.
    pub fn start<I, O>(&self, workers: usize, work: Work<I, O>) -> Driver<I, O>
    where
        I: Send + 'static,
        O: Send + 'static,
    {
        pin_to(0);
        match self {
            Contender::Knit { options, .. } => {
                let pool = create_pool(PoolOptions {
                    threads: workers,
                    pin: true,
                    ..options.clone()
                })
                .expect("create a knit pool");
                Driver::Knit(pool, work.task)
            }
            Contender::Crossbeam => {
                Driver::Crossbeam(channel::Crossbeam::start(workers, work.plain))
            }
            Contender::CrossbeamPerCall => {
                Driver::CrossbeamPerCall(channel::CrossbeamPerCall::start(workers, work.plain))
            }
            Contender::Mpsc => Driver::Mpsc(channel::Mpsc::start(workers, work.plain)),
            Contender::Rayon => Driver::Rayon(spawn::Rayon::start(workers, work.plain)),
            Contender::Tokio => Driver::Tokio(spawn::Tokio::start(workers, work.plain)),
        }
    }
}

/// A started system: calls one at a time or in batches.
pub enum Driver<I: Send + 'static, O: Send + 'static> {
    /// A knit pool and the task to call.
    Knit(knit::Pool, fn(&knit::Caller, I) -> knit::Call<O>),
    /// A crossbeam-channel pool.
    Crossbeam(channel::Crossbeam<I, O>),
    /// A crossbeam-channel pool with a reply channel per call.
    CrossbeamPerCall(channel::CrossbeamPerCall<I, O>),
    /// A std mpsc pool.
    Mpsc(channel::Mpsc<I, O>),
    /// A rayon pool.
    Rayon(spawn::Rayon<I, O>),
    /// A tokio blocking pool.
    Tokio(spawn::Tokio<I, O>),
}

impl<I, O> Driver<I, O>
where
    I: Send + 'static,
    O: Send + 'static + serde::de::DeserializeOwned,
{
    /// One call, waited for.
    pub fn call(&mut self, input: I) -> O {
        match self {
            Driver::Knit(pool, task) => task(&pool.call, input).wait().expect("knit call failed"),
            Driver::Crossbeam(p) => p.call(input),
            Driver::CrossbeamPerCall(p) => p.call(input),
            Driver::Mpsc(p) => p.call(input),
            Driver::Rayon(p) => p.call(input),
            Driver::Tokio(p) => p.call(input),
        }
    }

    /// Every input in flight at once, then every result, each handed to `each`.
    pub fn batch(&mut self, inputs: impl IntoIterator<Item = I>, mut each: impl FnMut(O)) {
        match self {
            Driver::Knit(pool, task) => {
                let calls: Vec<_> = inputs.into_iter().map(|x| task(&pool.call, x)).collect();
                for c in calls {
                    each(c.wait().expect("knit call failed"));
                }
            }
            Driver::Crossbeam(p) => p.batch(inputs, each),
            Driver::CrossbeamPerCall(p) => p.batch(inputs, each),
            Driver::Mpsc(p) => p.batch(inputs, each),
            Driver::Rayon(p) => p.batch(inputs, each),
            Driver::Tokio(p) => p.batch(inputs, each),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Drop for Driver<I, O> {
    fn drop(&mut self) {
        if let Driver::Knit(pool, _) = self {
            pool.shutdown();
        }
    }
}

/// How a scenario drives a system.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// One call at a time, each waited for (`iters` calls).
    RoundTrips,
    /// Batches of this many calls in flight (`iters` calls in all).
    Batches(u64),
    /// One call at a time after a pause long enough for every thread to park.
    Cold(Duration),
}

/// Runs `iters` operations of `shape` on a fresh `contender` with `workers`
/// workers and returns the time they took (start-up and warm-up excluded).
pub fn drive<I, O>(
    contender: &Contender,
    shape: Shape,
    workers: usize,
    work: Work<I, O>,
    input: &dyn Fn(u64) -> I,
    iters: u64,
) -> Duration
where
    I: Send + 'static,
    O: Send + 'static + serde::de::DeserializeOwned,
{
    let mut d = contender.start(workers, work);
    match shape {
        Shape::RoundTrips => timed(iters / 10 + 10, iters, |i| {
            black_box(d.call(input(i)));
        }),
        Shape::Batches(n) => timed(3, iters / n, |b| {
            d.batch((0..n).map(|j| input(b * n + j)), |o| {
                black_box(o);
            });
        }),
        Shape::Cold(pause) => timed_cold(2, iters, pause, |i| {
            black_box(d.call(input(i)));
        }),
    }
}

/// A scenario group: its name, how it drives the systems, with how many
/// workers, and how many operations per round.
#[derive(Clone, Copy, Debug)]
pub struct Group<'a> {
    /// The group's name (every system in it does the same work).
    pub name: &'a str,
    /// How the systems are driven.
    pub shape: Shape,
    /// Worker threads of every system.
    pub workers: usize,
    /// Operations per round.
    pub iters: u64,
    /// Position of the group on a sweep's x axis, if any.
    pub x: Option<f64>,
    /// Payload bytes per operation, when throughput is meaningful.
    pub bytes: Option<u64>,
}

impl<'a> Group<'a> {
    /// A group of one-worker systems, with no x position and no bytes.
    pub fn new(name: &'a str, shape: Shape, iters: u64) -> Self {
        Group {
            name,
            shape,
            workers: 1,
            iters,
            x: None,
            bytes: None,
        }
    }
}

/// Adds one scenario per contender to `bench`, each echoing a clone of
/// `value` (the clone is part of every system's work).
pub fn add_echo_group<T>(
    bench: &mut Bench,
    group: Group,
    contenders: &[Contender],
    work: Work<T, T>,
    value: T,
) where
    T: Clone + Send + Sync + 'static + serde::de::DeserializeOwned,
{
    let value = std::sync::Arc::new(value);
    add_group(bench, group, contenders, work, move |_| {
        value.as_ref().clone()
    });
}

/// Adds one scenario per contender to `bench`, all in `group`, with the same
/// work and inputs. `input` runs inside the timed part, for every system alike.
pub fn add_group<I, O>(
    bench: &mut Bench,
    group: Group,
    contenders: &[Contender],
    work: Work<I, O>,
    input: impl Fn(u64) -> I + Clone + 'static,
) where
    I: Send + 'static,
    O: Send + 'static + serde::de::DeserializeOwned,
{
    for c in contenders {
        let (c2, input) = (c.clone(), input.clone());
        let Group { shape, workers, .. } = group;
        let spec = Spec {
            x: group.x,
            bytes: group.bytes,
            ..c.spec(group.name)
        };
        let quantum = match shape {
            Shape::Batches(n) => n,
            _ => 1,
        };
        bench.add_in_steps(spec, group.iters, quantum, move |n| {
            drive(&c2, shape, workers, work, &input, n)
        });
    }
}
