//! The program a power-cut VM runs (as PID 1's child; see `initramfs.rs`).
//!
//! `powercut-guest wal-write DIR perwrite|group SEGMENT_SIZE`: appends until the
//! VM dies, from one writer (PerWrite) or four (Group), printing `ACK` after each
//! append returns; writer 0 retires old segments now and then (so segments are
//! recycled under new names while the power may go).
//!
//! `powercut-guest wal-check DIR SEGMENT_SIZE`: opens the log with the default recovery mode
//! and prints every record it reads back. The line formats are in `workload.rs`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tidemark_powercut::workload::{parse_record, record};
use tidemark_wal::{Durability, Lsn, RecoveryMode, Wal, WalOptions};

/// Writer 0 asks for retirement every this many of its appends...
const TRUNCATE_EVERY: u64 = 400;
/// ...of every record more than this many LSNs behind its latest.
const KEEP_BEHIND: u64 = 1500;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["wal-write", dir, mode, segment] => write(dir, mode, segment),
        ["wal-check", dir, segment] => check(dir, segment),
        _ => Err(format!(
            "usage: powercut-guest wal-write DIR perwrite|group SEGMENT_SIZE | wal-check DIR SEGMENT_SIZE (got {args:?})"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("GUESTFAIL {e}");
            ExitCode::FAILURE
        }
    }
}

fn options(durability: Durability, segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        durability,
        recovery: RecoveryMode::TolerateCorruptedTail,
        ..WalOptions::default()
    }
}

fn segment_size(arg: &str) -> Result<u64, String> {
    arg.parse().map_err(|e| format!("segment size {arg}: {e}"))
}

fn write(dir: &str, mode: &str, segment: &str) -> Result<(), String> {
    let (durability, writers) = match mode {
        "perwrite" => (Durability::PerWrite, 1),
        "group" => (
            Durability::Group {
                max_delay: Duration::from_micros(500),
            },
            4,
        ),
        other => return Err(format!("unknown durability {other}")),
    };
    let segment_size = segment_size(segment)?;
    let wal =
        Arc::new(Wal::open(dir, options(durability, segment_size)).map_err(|e| e.to_string())?);
    println!("STARTED");
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let wal = wal.clone();
            std::thread::spawn(move || append_forever(&wal, w))
        })
        .collect();
    for t in threads {
        match t.join() {
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {}
            Err(_) => return Err("a writer panicked".into()),
        }
    }
    Ok(())
}

fn append_forever(wal: &Wal, writer: u64) -> Result<(), String> {
    for seq in 1.. {
        let lsn = wal
            .append(&record(writer, seq))
            .map_err(|e| e.to_string())?;
        say(&format!("ACK {} {writer} {seq}", lsn.0));
        if writer == 0 && seq % TRUNCATE_EVERY == 0 && lsn.0 > KEEP_BEHIND {
            let below = lsn.0 - KEEP_BEHIND;
            say(&format!("TRUNCATING {below}"));
            wal.truncate_before(Lsn(below)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Prints one whole line at once, so lines of several writers never interleave.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn check(dir: &str, segment: &str) -> Result<(), String> {
    let wal = match Wal::open(dir, options(Durability::PerWrite, segment_size(segment)?)) {
        Ok(w) => w,
        Err(e) => {
            println!("OPENFAIL {e}");
            return Ok(());
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut records, mut bad) = (0u64, 0u64);
    for r in wal.iter_from(Lsn(1)) {
        match r {
            Ok(r) => {
                records += 1;
                match parse_record(&r.data) {
                    Some((w, s)) => writeln!(out, "R {} {w} {s}", r.lsn.0),
                    None => {
                        bad += 1;
                        writeln!(out, "BAD {}", r.lsn.0)
                    }
                }
                .ok();
            }
            Err(e) => {
                bad += 1;
                writeln!(out, "READERR {e}").ok();
                break;
            }
        }
    }
    writeln!(out, "CHECK records={records} bad={bad}").ok();
    out.flush().ok();
    Ok(())
}
