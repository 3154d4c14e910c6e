//! `stats`: record-size histogram, compression ratio, records per segment.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::scan::{LogScan, SIZE_BUCKETS};
use crate::outcome::{Health, ToolError};
use crate::table::{Table, human_bytes};

/// Totals over every live segment.
struct Totals {
    records: u64,
    compressed: u64,
    stored: u64,
    content: u64,
    hist: [u64; SIZE_BUCKETS],
}

/// Prints statistics of the records in `dir` (the in-order verified frames of
/// each live segment).
pub(crate) fn run(dir: &Path, json: bool, out: &mut dyn Write) -> Result<Health, ToolError> {
    let scan = LogScan::load(dir)?;
    let health = Health::from_damage(scan.damaged());
    let mut t = Totals {
        records: 0,
        compressed: 0,
        stored: 0,
        content: 0,
        hist: [0; SIZE_BUCKETS],
    };
    for (_, f) in scan.live() {
        t.records += f.records;
        t.compressed += f.compressed_records;
        t.stored += f.stored_bytes;
        t.content += f.content_bytes;
        for (a, b) in t.hist.iter_mut().zip(f.size_hist) {
            *a += b;
        }
    }
    let ratio = if t.stored == 0 {
        1.0
    } else {
        t.content as f64 / t.stored as f64
    };
    let per_segment: Vec<(u64, u64, u64)> = scan
        .live()
        .map(|(s, f)| (s.file.seq, f.records, f.used_bytes))
        .collect();
    if json {
        let v = json!({
            "dir": dir.display().to_string(),
            "healthy": health == crate::outcome::Health::Healthy,
            "records": t.records,
            "compressed_records": t.compressed,
            "stored_payload_bytes": t.stored,
            "payload_bytes": t.content,
            "compression_ratio": ratio,
            "size_histogram": buckets(&t.hist).map(|(lo, hi, n)| json!({"min": lo, "max": hi, "records": n})).collect::<Vec<_>>(),
            "segments": per_segment.iter().map(|(seq, n, used)| json!({"seq": seq, "records": n, "used_bytes": used})).collect::<Vec<_>>(),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
        return Ok(health);
    }
    writeln!(out, "records            {}", t.records)?;
    writeln!(
        out,
        "payload            {} as appended, {} stored",
        human_bytes(t.content),
        human_bytes(t.stored)
    )?;
    writeln!(
        out,
        "compression        {ratio:.2}x ({} of {} records compressed)",
        t.compressed, t.records
    )?;
    if let Some(avg) = t.content.checked_div(t.records) {
        writeln!(out, "mean record        {}", human_bytes(avg))?;
    }
    let counts: Vec<u64> = per_segment.iter().map(|p| p.1).collect();
    if let (Some(min), Some(max)) = (counts.iter().min(), counts.iter().max()) {
        let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
        writeln!(
            out,
            "records/segment    min {min}, mean {mean:.1}, max {max} over {} live segments",
            counts.len()
        )?;
    }
    writeln!(out, "\nrecord sizes (as appended)")?;
    let peak = t.hist.iter().copied().max().unwrap_or(0).max(1);
    let mut h = Table::new(&[">from", ">to", ">records", "share"]);
    for (lo, hi, n) in buckets(&t.hist) {
        let bar = "#".repeat(((n * 40).div_ceil(peak)) as usize);
        h.row(vec![human_bytes(lo), human_bytes(hi), n.to_string(), bar]);
    }
    h.write(out)?;
    writeln!(out, "\nrecords per segment")?;
    let mut s = Table::new(&[">seq", ">records", ">used"]);
    for (seq, n, used) in per_segment {
        s.row(vec![seq.to_string(), n.to_string(), human_bytes(used)]);
    }
    s.write(out)?;
    Ok(health)
}

/// Non-empty histogram buckets as (smallest size, largest size, records).
fn buckets(hist: &[u64; SIZE_BUCKETS]) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
    hist.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| match i {
            0 => (0, 0, *n),
            i => (1u64 << (i - 1), (1u64 << i) - 1, *n),
        })
}
