//! The part of the benchmark support that needs the benches' dev-dependencies
//! (serde_json, plotters): a [`Bench`] that runs scenarios and writes the
//! result as JSON, Markdown and an SVG chart. Each bench binary includes it
//! with `#[path = "support/suite/mod.rs"] mod suite;`.

pub mod chart;
pub mod json;

use std::path::Path;
use std::time::Duration;

use knit_bench::cli::Args;
use knit_bench::machine::Machine;
use knit_bench::results::{rows, BenchResult, Chart, Extra, Role, Spec};
use knit_bench::{markdown, Runner, Scenario};

/// One benchmark result in the making: scenarios grouped so that every
/// system in a group does the same work, run in interleaved rounds.
pub struct Bench {
    args: Args,
    result: BenchResult,
    pending: Vec<Pending>,
}

/// A scenario before calibration.
struct Pending {
    spec: Spec,
    max_iters: u64,
    quantum: u64,
    run: Box<dyn FnMut(u64) -> Duration>,
}

/// What a result is: its name, title, method and how it is charted.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    /// File stem of the result (`<name>.json`).
    pub name: &'a str,
    /// Human title.
    pub title: &'a str,
    /// The method, one paragraph.
    pub about: &'a str,
    /// Rounds per scenario.
    pub rounds: usize,
    /// The peer the chart's ratios refer to.
    pub primary: &'a str,
    /// How the chart is drawn.
    pub chart: Chart,
}

impl Default for Meta<'_> {
    fn default() -> Self {
        Meta {
            name: "bench",
            title: "Benchmark",
            about: "",
            rounds: 3,
            primary: "crossbeam",
            chart: Chart::Ratios,
        }
    }
}

impl Bench {
    /// An empty result described by `meta`.
    pub fn new(args: &Args, meta: Meta) -> Self {
        Bench {
            args: args.clone(),
            result: BenchResult {
                name: meta.name.into(),
                title: meta.title.into(),
                about: meta.about.into(),
                machine: Machine::detect(),
                quick: args.quick,
                rounds: meta.rounds,
                primary: meta.primary.into(),
                chart: meta.chart,
                rows: Vec::new(),
                extras: Vec::new(),
            },
            pending: Vec::new(),
        }
    }

    /// Whether the filter selects this result or the scenario group `group`.
    pub fn wants(&self, group: &str) -> bool {
        self.args.selects(&[&self.result.name, group])
    }

    /// Adds a scenario (if the filter selects its group): `run(iters)`
    /// performs `iters` operations and returns their duration. Rounds do at
    /// most `max_iters` operations, fewer for slow systems (see [`Bench::finish`]).
    pub fn add(&mut self, spec: Spec, max_iters: u64, run: impl FnMut(u64) -> Duration + 'static) {
        self.add_in_steps(spec, max_iters, 1, run);
    }

    /// Like [`Bench::add`] for a scenario whose operation counts must be
    /// multiples of `quantum` (a batch size).
    pub fn add_in_steps(
        &mut self,
        spec: Spec,
        max_iters: u64,
        quantum: u64,
        run: impl FnMut(u64) -> Duration + 'static,
    ) {
        if self.wants(&spec.group) {
            self.pending.push(Pending {
                spec,
                max_iters: max_iters.max(quantum),
                quantum: quantum.max(1),
                run: Box::new(run),
            });
        }
    }

    /// Records a figure that is not a time per operation.
    pub fn extra(&mut self, name: &str, value: f64, unit: &str) {
        self.result.extras.push(Extra {
            name: name.into(),
            value,
            unit: unit.into(),
        });
    }

    /// Calibrates, runs every round and writes the result: Markdown (or
    /// with `--json`, one line of JSON) on stdout, and with `--out DIR` the
    /// files `DIR/<name>.json`, `.md` and `.svg`. Calibration runs each
    /// scenario once on a fiftieth of its maximum and sizes its rounds to a
    /// time budget (10 ms with `--quick`, 200 ms otherwise), so a system that
    /// is 100× slower does not take 100× longer. Does nothing if the filter
    /// selected nothing.
    pub fn finish(self) -> std::io::Result<()> {
        self.finish_with(|_| Vec::new())
    }

    /// Like [`Bench::finish`], with extra figures worked out from the
    /// measured rows (`derive` sees the result once its rows are in, and
    /// what it returns is added to the extras before anything is written):
    /// a goal's ratio, a throughput.
    pub fn finish_with(
        mut self,
        derive: impl FnOnce(&BenchResult) -> Vec<Extra>,
    ) -> std::io::Result<()> {
        if self.pending.is_empty() && self.result.extras.is_empty() {
            eprintln!("{}: nothing selected by the filter", self.result.name);
            return Ok(());
        }
        let budget = self.args.pick(10e6, 200e6);
        eprintln!(
            "{}: calibrating {} scenarios, then {} rounds",
            self.result.name,
            self.pending.len(),
            self.result.rounds
        );
        let mut runner = Runner::new(self.result.rounds);
        let mut specs = Vec::new();
        for mut p in self.pending.drain(..) {
            let pilot = round_to(p.max_iters / 50, p.quantum);
            let per_op = (p.run)(pilot).as_nanos() as f64 / pilot as f64;
            let fit = (budget / per_op.max(1.0)) as u64;
            let iters = round_to(fit.min(p.max_iters), p.quantum);
            runner.add(Scenario::new(&p.spec.key(), iters, p.run));
            specs.push(p.spec);
        }
        let report = runner.run();
        self.result.rows = rows(&specs, &report);
        let derived = derive(&self.result);
        self.result.extras.extend(derived);
        let result = &self.result;
        if self.args.json {
            println!("{}", json::to_value(result));
        } else {
            println!("{}", markdown::render(result));
        }
        if let Some(dir) = &self.args.out {
            write_files(dir, result)?;
        }
        Ok(())
    }
}

/// `n` rounded down to a multiple of `quantum`, at least `quantum`.
fn round_to(n: u64, quantum: u64) -> u64 {
    (n / quantum).max(1) * quantum
}

fn write_files(dir: &Path, result: &BenchResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(&json::to_value(result))?;
    std::fs::write(dir.join(format!("{}.json", result.name)), json + "\n")?;
    std::fs::write(
        dir.join(format!("{}.md", result.name)),
        markdown::render(result),
    )?;
    std::fs::write(dir.join(format!("{}.svg", result.name)), chart::svg(result))?;
    Ok(())
}

/// A spec for `system` in `group` with no bytes and no x position.
pub fn spec(group: &str, system: &str, role: Role) -> Spec {
    Spec {
        group: group.into(),
        system: system.into(),
        role,
        bytes: None,
        x: None,
    }
}
