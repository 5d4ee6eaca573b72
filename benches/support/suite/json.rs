//! A result as JSON.

use knit_bench::results::{BenchResult, Chart};
use serde_json::{json, Map, Value};

/// The JSON document of `result`: name, title, machine, run settings, method,
/// rows (group, system, role, median and p99 in ns per operation, payload
/// bytes, x, bytes/s, and for knit rows a map of ratios) and extra figures.
pub fn to_value(result: &BenchResult) -> Value {
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|row| {
            let ratios: Map<String, Value> = row
                .ratios
                .iter()
                .map(|(system, r)| (system.clone(), json!(r)))
                .collect();
            json!({
                "group": row.spec.group,
                "system": row.spec.system,
                "role": row.spec.role.as_str(),
                "median_ns": row.median_ns,
                "p99_ns": row.p99_ns,
                "bytes": row.spec.bytes,
                "x": row.spec.x,
                "bytes_per_sec": row.bytes_per_sec(),
                "ratios": ratios,
            })
        })
        .collect();
    let extras: Vec<Value> = result
        .extras
        .iter()
        .map(|e| json!({"name": e.name, "value": e.value, "unit": e.unit}))
        .collect();
    let chart = match &result.chart {
        Chart::Ratios => json!({"kind": "ratios"}),
        Chart::Lines {
            x_label,
            y_label,
            log,
        } => json!({"kind": "lines", "x_label": x_label, "y_label": y_label, "log": log}),
    };
    json!({
        "name": result.name,
        "title": result.title,
        "machine": {
            "cpu": result.machine.cpu,
            "cores": result.machine.cores,
            "kernel": result.machine.kernel,
        },
        "quick": result.quick,
        "rounds": result.rounds,
        "about": result.about,
        "primary": result.primary,
        "chart": chart,
        "rows": rows,
        "extras": extras,
    })
}
