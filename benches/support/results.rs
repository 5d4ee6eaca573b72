//! What a benchmark produces: rows of medians, p99s and ratios, plus the
//! context needed to read them.

use crate::machine::Machine;
use crate::runner::Report;

/// What a system is to the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// knit itself (any configuration); its rows get ratios.
    Knit,
    /// Another pool doing the same work.
    Peer,
    /// A lower bound that is not a pool (bare ping-pongs).
    Floor,
}

impl Role {
    /// Lower-case name, as written to JSON.
    ///
    /// ```
    /// assert_eq!(knit_bench::results::Role::Floor.as_str(), "floor");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Knit => "knit",
            Role::Peer => "peer",
            Role::Floor => "floor",
        }
    }
}

/// A scenario before it is measured: which group and system it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The scenario group: every system in a group does the same work.
    pub group: String,
    /// The system doing it ("knit", "crossbeam", ...).
    pub system: String,
    /// What the system is to the comparison.
    pub role: Role,
    /// Payload bytes per operation, when throughput is meaningful.
    pub bytes: Option<u64>,
    /// Position on a sweep's x axis (payload size, workers), if any.
    pub x: Option<f64>,
}

impl Spec {
    /// The runner's scenario name for this spec.
    ///
    /// ```
    /// use knit_bench::results::{Role, Spec};
    /// let s = Spec { group: "batch 10".into(), system: "knit".into(), role: Role::Knit, bytes: None, x: None };
    /// assert_eq!(s.key(), "batch 10 | knit");
    /// ```
    pub fn key(&self) -> String {
        format!("{} | {}", self.group, self.system)
    }
}

/// One system in one group, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub spec: Spec,
    /// Median over rounds of the time per operation, in ns.
    pub median_ns: f64,
    /// 99th percentile over rounds of the time per operation, in ns (the
    /// slowest round when there are fewer than 100 rounds).
    pub p99_ns: f64,
    /// For knit rows: `(other system, ratio)` for every non-knit system of the
    /// group; the ratio is the median of per-round `knit / other` time ratios,
    /// so below 1 means knit is faster.
    pub ratios: Vec<(String, f64)>,
}

impl Row {
    /// Payload bytes per second at the median, when the spec has bytes.
    ///
    /// ```
    /// use knit_bench::results::{Role, Row, Spec};
    /// let spec = Spec { group: "g".into(), system: "s".into(), role: Role::Peer, bytes: Some(1000), x: None };
    /// let row = Row { spec, median_ns: 1000.0, p99_ns: 1000.0, ratios: vec![] };
    /// assert_eq!(row.bytes_per_sec(), Some(1e9));
    /// ```
    pub fn bytes_per_sec(&self) -> Option<f64> {
        self.spec.bytes.map(|b| b as f64 * 1e9 / self.median_ns)
    }

    /// This row's ratio to `system`, if measured.
    pub fn ratio_to(&self, system: &str) -> Option<f64> {
        self.ratios
            .iter()
            .find(|(s, _)| s == system)
            .map(|(_, r)| *r)
    }
}

/// Builds the rows of `specs` from a runner's report, with ratios for every
/// knit row against the other systems of its group. Specs missing from the
/// report (filtered out) are skipped.
///
/// ```
/// use knit_bench::results::{rows, Role, Spec};
/// use knit_bench::{Runner, Scenario};
/// let spec = |system: &str, role| Spec { group: "g".into(), system: system.into(), role, bytes: None, x: None };
/// let specs = [spec("knit", Role::Knit), spec("peer", Role::Peer)];
/// let mut r = Runner::new(3).quiet();
/// r.add(Scenario::new("g | knit", 10, |n| std::time::Duration::from_nanos(n)));
/// r.add(Scenario::new("g | peer", 10, |n| std::time::Duration::from_nanos(4 * n)));
/// let rows = rows(&specs, &r.run());
/// assert_eq!(rows[0].ratio_to("peer"), Some(0.25));
/// assert!(rows[1].ratios.is_empty());
/// ```
pub fn rows(specs: &[Spec], report: &Report) -> Vec<Row> {
    specs
        .iter()
        .filter_map(|spec| {
            let key = spec.key();
            let ratios = if spec.role == Role::Knit {
                specs
                    .iter()
                    .filter(|o| o.group == spec.group && o.role != Role::Knit)
                    .filter_map(|o| Some((o.system.clone(), report.ratio(&key, &o.key())?)))
                    .collect()
            } else {
                Vec::new()
            };
            Some(Row {
                spec: spec.clone(),
                median_ns: report.median(&key)?,
                p99_ns: report.p99(&key)?,
                ratios,
            })
        })
        .collect()
}

/// A figure that is not a time per operation (e.g. an idle pool's CPU use).
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
}

/// How a result's chart is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// One bar per knit row: its ratio to the result's primary peer, on a log
    /// axis centred on 1.
    Ratios,
    /// One line per system over the rows' `x`: bytes/s when rows have bytes,
    /// operations/s otherwise.
    Lines {
        /// Label of the x axis.
        x_label: String,
        /// Label of the y axis (bytes/s or operations/s, per operation of
        /// this result).
        y_label: String,
        /// Whether both axes are logarithmic.
        log: bool,
    },
}

/// Everything one benchmark result holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// File stem of the result (`results/<name>.json`).
    pub name: String,
    /// Human title.
    pub title: String,
    /// How the scenarios were run (one paragraph).
    pub about: String,
    /// Where it ran.
    pub machine: Machine,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// Rounds per scenario.
    pub rounds: usize,
    /// The peer the chart's ratios refer to.
    pub primary: String,
    /// How the chart is drawn.
    pub chart: Chart,
    /// The measured rows.
    pub rows: Vec<Row>,
    /// Other figures.
    pub extras: Vec<Extra>,
}

impl BenchResult {
    /// Non-knit systems that some knit row has a ratio to, in order of first
    /// appearance.
    pub fn compared_systems(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for (system, _) in self.rows.iter().flat_map(|r| &r.ratios) {
            if !seen.contains(system) {
                seen.push(system.clone());
            }
        }
        seen
    }

    /// The ratio a chart shows for `row`: to the primary peer, else the
    /// first ratio the row has.
    pub fn chart_ratio(&self, row: &Row) -> Option<(String, f64)> {
        row.ratio_to(&self.primary)
            .map(|r| (self.primary.clone(), r))
            .or_else(|| row.ratios.first().cloned())
    }
}

/// A duration in ns as text with a fitting unit.
///
/// ```
/// use knit_bench::results::fmt_ns;
/// assert_eq!(fmt_ns(12.34), "12.3 ns");
/// assert_eq!(fmt_ns(4_560.0), "4.56 µs");
/// assert_eq!(fmt_ns(7_890_000.0), "7.89 ms");
/// ```
pub fn fmt_ns(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", three_digits(v))
}

/// A byte count per second as text (binary units).
///
/// ```
/// assert_eq!(knit_bench::results::fmt_rate(3.0 * 1024.0 * 1024.0), "3.00 MiB/s");
/// ```
pub fn fmt_rate(bytes_per_sec: f64) -> String {
    format!("{}/s", fmt_bytes(bytes_per_sec))
}

/// A byte count as text (binary units).
///
/// ```
/// assert_eq!(knit_bench::results::fmt_bytes(8.0), "8 B");
/// assert_eq!(knit_bench::results::fmt_bytes(8.0 * 1024.0 * 1024.0), "8.00 MiB");
/// ```
pub fn fmt_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut v = bytes / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", three_digits(v), UNITS[unit])
}

/// A ratio as text: `0.82×`.
///
/// ```
/// assert_eq!(knit_bench::results::fmt_ratio(0.8234), "0.82×");
/// assert_eq!(knit_bench::results::fmt_ratio(12.34), "12.3×");
/// ```
pub fn fmt_ratio(r: f64) -> String {
    format!("{}×", three_digits(r))
}

fn three_digits(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
