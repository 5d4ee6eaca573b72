//! Runs scenarios in interleaved rounds and reports medians, p99s and ratios.

use std::time::{Duration, Instant};

/// Runs `op` for `warmup` untimed iterations, then `iters` timed ones, and
/// returns the time of the timed part. `op` gets a counter that runs on across
/// both phases (`0..warmup + iters`), so protocols keyed by sequence numbers work.
///
/// ```
/// let mut seen = Vec::new();
/// let t = knit_bench::runner::timed(2, 3, |i| seen.push(i));
/// assert_eq!(seen, [0, 1, 2, 3, 4]);
/// assert!(t.as_nanos() > 0 || t.is_zero());
/// ```
pub fn timed(warmup: u64, iters: u64, mut op: impl FnMut(u64)) -> Duration {
    for i in 0..warmup {
        op(i);
    }
    let start = Instant::now();
    for i in warmup..warmup + iters {
        op(i);
    }
    start.elapsed()
}

/// Like [`timed`], but sleeps `pause` before each operation and times only the
/// operations, so every one of them meets threads that have gone idle (spun
/// out and parked): a cold call.
///
/// ```
/// use std::time::Duration;
/// let t = knit_bench::runner::timed_cold(1, 2, Duration::from_millis(1), |_| ());
/// assert!(t < Duration::from_millis(2));
/// ```
pub fn timed_cold(warmup: u64, iters: u64, pause: Duration, mut op: impl FnMut(u64)) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..warmup + iters {
        std::thread::sleep(pause);
        let start = Instant::now();
        op(i);
        if i >= warmup {
            total += start.elapsed();
        }
    }
    total
}

/// One measured thing: `run(iters)` performs `iters` operations and returns the
/// time they took (setup excluded).
pub struct Scenario {
    /// Short name shown in the report.
    pub name: String,
    /// Operations per round.
    pub iters: u64,
    /// Performs the operations and returns their duration.
    pub run: Box<dyn FnMut(u64) -> Duration>,
}

impl Scenario {
    /// A scenario from a name, a round size and a closure.
    ///
    /// ```
    /// let s = knit_bench::Scenario::new("noop", 10, |n| std::time::Duration::from_nanos(n));
    /// assert_eq!(s.name, "noop");
    /// ```
    pub fn new(name: &str, iters: u64, run: impl FnMut(u64) -> Duration + 'static) -> Self {
        Scenario {
            name: name.to_string(),
            iters,
            run: Box::new(run),
        }
    }
}

/// Interleaves scenarios: round 1 of each, then round 2 of each, and so on.
pub struct Runner {
    scenarios: Vec<Scenario>,
    rounds: usize,
    quiet: bool,
}

/// Nanoseconds per operation for every round of every scenario.
#[derive(Debug, Clone)]
pub struct Report {
    /// (scenario name, ns per operation of each round)
    pub results: Vec<(String, Vec<f64>)>,
}

impl Runner {
    /// A runner doing `rounds` rounds of each scenario.
    ///
    /// ```
    /// let mut r = knit_bench::Runner::new(3);
    /// r.add(knit_bench::Scenario::new("x", 5, |n| std::time::Duration::from_nanos(2 * n)));
    /// assert_eq!(r.run().median("x"), Some(2.0));
    /// ```
    pub fn new(rounds: usize) -> Self {
        Runner {
            scenarios: Vec::new(),
            rounds,
            quiet: false,
        }
    }

    /// Stops the per-round progress lines on stderr.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Rounds per scenario.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Adds a scenario.
    pub fn add(&mut self, scenario: Scenario) -> &mut Self {
        self.scenarios.push(scenario);
        self
    }

    /// Runs every round and collects ns/op.
    pub fn run(&mut self) -> Report {
        let mut results: Vec<(String, Vec<f64>)> = self
            .scenarios
            .iter()
            .map(|s| (s.name.clone(), Vec::new()))
            .collect();
        for round in 0..self.rounds {
            for (i, s) in self.scenarios.iter_mut().enumerate() {
                let t = (s.run)(s.iters);
                let ns = t.as_nanos() as f64 / s.iters as f64;
                results[i].1.push(ns);
                if self.quiet {
                    continue;
                }
                eprintln!(
                    "  round {}/{} {:<44} {:>12.1} ns/op",
                    round + 1,
                    self.rounds,
                    s.name,
                    ns
                );
            }
        }
        Report { results }
    }
}

fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((v.len() - 1) as f64 * p).round() as usize;
    Some(v[idx])
}

impl Report {
    fn rounds(&self, name: &str) -> Option<&[f64]> {
        self.results
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &v[..])
    }

    /// Median ns/op over the rounds of `name`.
    pub fn median(&self, name: &str) -> Option<f64> {
        percentile(self.rounds(name)?, 0.5)
    }

    /// 99th percentile ns/op over the rounds of `name` (the worst round when few).
    pub fn p99(&self, name: &str) -> Option<f64> {
        percentile(self.rounds(name)?, 0.99)
    }

    /// Median of the per-round ratios `a / b` (rounds are paired in time, so a
    /// noisy moment affects both sides of a ratio).
    pub fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        let (a, b) = (self.rounds(a)?, self.rounds(b)?);
        let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
        percentile(&ratios, 0.5)
    }

    /// A plain-text table of every scenario's median and p99.
    pub fn table(&self) -> String {
        let mut out = format!("{:<34} {:>12} {:>12}\n", "scenario", "median ns", "p99 ns");
        for (name, _) in &self.results {
            out += &format!(
                "{:<34} {:>12.1} {:>12.1}\n",
                name,
                self.median(name).unwrap_or(f64::NAN),
                self.p99(name).unwrap_or(f64::NAN)
            );
        }
        out
    }
}
