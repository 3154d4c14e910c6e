//! Writes a log from several threads, "crashes" by dropping it without a sync,
//! reopens it, replays every record and prints what recovery saw.
//!
//! `cargo run --release -p tidemark-wal --example crash_replay [DIR]`
//! (without DIR it uses a temporary directory).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_wal::{Durability, Lsn, Wal, WalOptions};

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 25_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    if arg.as_deref().is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: crash_replay [DIR]   (without DIR: a temporary directory)");
        std::process::exit(2);
    }
    let tmp = tempfile::tempdir()?;
    let dir = arg.map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let opts = WalOptions {
        segment_size: 8 << 20,
        durability: Durability::Group {
            max_delay: Duration::from_micros(200),
        },
        ..WalOptions::default()
    };

    let wal = Arc::new(Wal::open(&dir, opts.clone())?);
    let first_new = wal.last_lsn().map_or(1, |l| l.0 + 1);
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let wal = wal.clone();
            s.spawn(move || {
                for i in 0..PER_WRITER {
                    let record = format!("writer {w} record {i}: block input-{w}-{i} stored");
                    wal.append(record.as_bytes()).expect("append");
                }
            });
        }
    });
    let took = started.elapsed();
    let n = WRITERS * PER_WRITER;
    println!(
        "appended {n} durable records from {WRITERS} threads in {took:.2?} ({:.0} records/s, group commit)",
        n as f64 / took.as_secs_f64()
    );
    println!(
        "last LSN {}, durable through {}",
        wal.last_lsn().unwrap_or(Lsn(0)),
        wal.durable_lsn()
    );
    drop(wal); // the crash: no close, no final sync

    let started = Instant::now();
    let wal = Wal::open(&dir, opts)?;
    let report = wal.recovery_report();
    println!(
        "reopened in {:.2?}: {} segments, {} records ({} bytes) verified, {} bytes truncated, {} records skipped, damage: {:?}",
        started.elapsed(),
        report.segments,
        report.records,
        report.bytes,
        report.bytes_truncated,
        report.records_skipped,
        report.damage
    );
    let mut replayed = 0u64;
    let mut last = None;
    for rec in wal.iter_from(Lsn(first_new)) {
        let rec = rec?;
        replayed += 1;
        last = Some(rec);
    }
    println!("replayed {replayed} records appended by this run; the last one:");
    if let Some(rec) = last {
        println!("  LSN {}: {}", rec.lsn, String::from_utf8_lossy(&rec.data));
    }
    if replayed != n {
        return Err(format!("expected {n} records back, got {replayed}").into());
    }
    println!("every acknowledged record came back intact");
    Ok(())
}
