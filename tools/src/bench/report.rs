//! The comparison table and the JSON document of a benchmark run.

use std::io::Write;

use serde_json::{Value, json};

use super::Environment;
use super::measure::CaseResult;
use crate::table::Table;

fn us(d: Option<std::time::Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e6))
}

/// Writes the human comparison table.
pub fn table(
    env: &Environment,
    results: &[CaseResult],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "tidemark bench{}: {} ({}), {} CPUs, {}-byte records",
        if env.quick { " --quick" } else { "" },
        env.scratch.display(),
        env.fs_type,
        env.cpus,
        env.record_size
    )?;
    if cfg!(debug_assertions) {
        writeln!(
            out,
            "note: this is a debug build; build with --release for representative numbers"
        )?;
    }
    if env.fs_type == "tmpfs" {
        writeln!(
            out,
            "note: the scratch directory is on tmpfs; sync costs nothing there"
        )?;
    }
    writeln!(out)?;
    let mut t = Table::new(&[
        "group",
        "case",
        ">threads",
        ">ops/s",
        ">MiB/s",
        ">p50 us",
        ">p99 us",
        ">p99.9 us",
        "vs limit",
        ">ratio",
    ]);
    for r in results {
        t.row(vec![
            r.group.to_string(),
            r.name.clone(),
            r.threads.to_string(),
            format!("{:.0}", r.ops_per_sec()),
            format!("{:.1}", r.mib_per_sec()),
            us(r.percentile(0.5)),
            us(r.percentile(0.99)),
            us(r.percentile(0.999)),
            r.limit.as_ref().map_or("-".into(), |l| l.name.clone()),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}")),
        ]);
    }
    t.write(out)
}

/// The results as one JSON document.
pub fn json(env: &Environment, results: &[CaseResult]) -> Value {
    json!({
        "environment": {
            "scratch_dir": env.scratch.display().to_string(),
            "fs_type": env.fs_type,
            "cpus": env.cpus,
            "record_size": env.record_size,
            "quick": env.quick,
            "optimized_build": !cfg!(debug_assertions),
        },
        "results": results.iter().map(|r| json!({
            "group": r.group,
            "case": r.name,
            "threads": r.threads,
            "ops": r.ops,
            "bytes": r.bytes,
            "seconds": r.elapsed.as_secs_f64(),
            "ops_per_sec": r.ops_per_sec(),
            "mib_per_sec": r.mib_per_sec(),
            "latency_us": {
                "p50": r.percentile(0.5).map(|d| d.as_secs_f64() * 1e6),
                "p99": r.percentile(0.99).map(|d| d.as_secs_f64() * 1e6),
                "p999": r.percentile(0.999).map(|d| d.as_secs_f64() * 1e6),
                "max": r.latencies_ns.last().map(|&n| n as f64 / 1e3),
            },
            "limit": r.limit.as_ref().map(|l| json!({"case": l.name, "by": if l.by_ops { "ops_per_sec" } else { "bytes_per_sec" }, "value": l.value})),
            "ratio_to_limit": r.ratio(),
        })).collect::<Vec<_>>(),
    })
}
