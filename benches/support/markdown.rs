//! A result as Markdown: the ratio table first, then every figure.

use std::fmt::Write;

use crate::results::{fmt_bytes, fmt_ns, fmt_rate, fmt_ratio, BenchResult, Role};

/// Marks the start of the part of a result's Markdown that goes into
/// `results/SUMMARY.md` (followed by ` <name> -->`).
pub const SUMMARY_BEGIN: &str = "<!-- summary:begin";
/// Marks the end of that part.
pub const SUMMARY_END: &str = "<!-- summary:end -->";

/// Renders `result`: title, machine, the table of knit's ratios to each peer
/// (with the chart, where knit is behind and any extra figure) between the
/// summary markers,
/// then the method and every median and p99.
///
/// ```
/// use knit_bench::results::*;
/// use knit_bench::machine::Machine;
/// let spec = |system: &str, role| Spec { group: "batch 1".into(), system: system.into(), role, bytes: None, x: None };
/// let result = BenchResult {
///     name: "pool".into(), title: "Pool".into(), about: "How.".into(),
///     machine: Machine { cpu: "X".into(), cores: 2, kernel: "6".into() },
///     quick: true, rounds: 3, primary: "crossbeam".into(), chart: Chart::Ratios,
///     rows: vec![
///         Row { spec: spec("knit", Role::Knit), median_ns: 200.0, p99_ns: 250.0, ratios: vec![("crossbeam".into(), 2.0)] },
///         Row { spec: spec("crossbeam", Role::Peer), median_ns: 100.0, p99_ns: 120.0, ratios: vec![] },
///     ],
///     extras: vec![],
/// };
/// let md = knit_bench::markdown::render(&result);
/// assert!(md.contains("| batch 1: knit | 2.00× |"));
/// assert!(md.contains("- batch 1: knit is 2.00× crossbeam's time"));
/// ```
pub fn render(result: &BenchResult) -> String {
    let mut md = String::new();
    let run = if result.quick {
        format!(
            "a `--quick` run ({} rounds; a smoke test, not a measurement)",
            result.rounds
        )
    } else {
        format!("a full run ({} rounds)", result.rounds)
    };
    let _ = writeln!(md, "## {}\n", result.title);
    let _ = writeln!(md, "Machine: {}. From {run}.\n", result.machine.line());
    let _ = writeln!(md, "{SUMMARY_BEGIN} {} -->", result.name);
    md += &ratio_table(result);
    let _ = writeln!(md, "\n![{}]({}.svg)\n", result.title, result.name);
    md += &behind(result);
    for e in &result.extras {
        let _ = writeln!(md, "\n{}: {:.1} {}", e.name, e.value, e.unit);
    }
    let _ = writeln!(md, "{SUMMARY_END}\n");
    let _ = writeln!(md, "{}\n", result.about);
    md += &figures(result);
    md
}

/// The table of ratios: one line per knit row, one column per compared system.
fn ratio_table(result: &BenchResult) -> String {
    let systems = result.compared_systems();
    let mut md = String::from("| knit ÷ other (time; < 1: knit faster) |");
    for s in &systems {
        let _ = write!(md, " vs {s} |");
    }
    md += "\n|---|";
    md += &"---:|".repeat(systems.len());
    md += "\n";
    for row in result.rows.iter().filter(|r| r.spec.role == Role::Knit) {
        let _ = write!(md, "| {}: {} |", row.spec.group, row.spec.system);
        for s in &systems {
            let cell = row.ratio_to(s).map_or_else(|| "–".into(), fmt_ratio);
            let _ = write!(md, " {cell} |");
        }
        md += "\n";
    }
    md
}

/// Ratios within this band around 1 are listed as neither behind nor ahead:
/// on a shared VM they are noise.
pub const NOISE: f64 = 1.05;

/// Where a knit row takes longer than a peer by more than the noise band
/// (floors excluded: they are lower bounds, not alternatives).
fn behind(result: &BenchResult) -> String {
    let peers: Vec<&str> = result
        .rows
        .iter()
        .filter(|r| r.spec.role == Role::Peer)
        .map(|r| r.spec.system.as_str())
        .collect();
    let mut lines = String::new();
    for row in result.rows.iter().filter(|r| r.spec.role == Role::Knit) {
        let losses: Vec<String> = row
            .ratios
            .iter()
            .filter(|(s, r)| *r > NOISE && peers.contains(&s.as_str()))
            .map(|(s, r)| format!("{} {s}'s time", fmt_ratio(*r)))
            .collect();
        if !losses.is_empty() {
            let _ = writeln!(
                lines,
                "- {}: {} is {}",
                row.spec.group,
                row.spec.system,
                losses.join(", ")
            );
        }
    }
    if peers.is_empty() {
        "No peer pool here: the ratios are to the floors (bare ping-pongs).\n".into()
    } else if lines.is_empty() {
        format!("knit is within {NOISE}× of every peer or ahead of it in this run.\n")
    } else {
        format!("Where knit takes more than {NOISE}× a peer's time in this run:\n\n{lines}")
    }
}

/// Every median and p99.
fn figures(result: &BenchResult) -> String {
    let with_bytes = result.rows.iter().any(|r| r.spec.bytes.is_some());
    let mut md = String::from("| scenario | system | median | p99 |");
    md += if with_bytes {
        " throughput |\n|---|---|---:|---:|---:|\n"
    } else {
        "\n|---|---|---:|---:|\n"
    };
    for row in &result.rows {
        let name = match row.spec.role {
            Role::Knit => format!("**{}**", row.spec.system),
            Role::Peer => row.spec.system.clone(),
            Role::Floor => format!("{} (floor)", row.spec.system),
        };
        let _ = write!(
            md,
            "| {} | {name} | {} | {} |",
            row.spec.group,
            fmt_ns(row.median_ns),
            fmt_ns(row.p99_ns)
        );
        if with_bytes {
            let rate = row.bytes_per_sec().map_or_else(|| "–".into(), fmt_rate);
            let _ = write!(md, " {rate} |");
        }
        md += "\n";
    }
    if result.rows.iter().any(|r| r.spec.bytes.is_some()) {
        let sizes: Vec<String> = result
            .rows
            .iter()
            .filter_map(|r| r.spec.bytes)
            .map(|b| fmt_bytes(b as f64))
            .collect();
        let _ = writeln!(md, "\nPayload sizes: {}.", dedup(sizes).join(", "));
    }
    md
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    v.retain(|s| {
        let new = !seen.contains(s);
        if new {
            seen.push(s.clone());
        }
        new
    });
    v
}
