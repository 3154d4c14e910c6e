//! Real crashes: a child process appends and prints each acknowledged LSN; the
//! test SIGKILLs it at random moments and checks the log after every crash.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{check_payload, payload, small_opts};
use tidemark_test_servers::child::rerun_self;
use tidemark_wal::{DamageKind, Durability, Lsn, Wal};

const CHILD_DIR: &str = "TIDEMARK_CRASH_CHILD_DIR";
const CHILD_WRITERS: &str = "TIDEMARK_CRASH_CHILD_WRITERS";

fn durability(writers: u64) -> Durability {
    if writers == 1 {
        Durability::PerWrite
    } else {
        Durability::Group {
            max_delay: Duration::from_micros(100),
        }
    }
}

/// The child's body: runs only when re-executed by a crash test.
#[test]
fn crash_child_process() {
    let (Ok(dir), Ok(writers)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_WRITERS)) else {
        return;
    };
    let writers: u64 = writers.parse().expect("writers");
    let wal = Arc::new(Wal::open(&dir, small_opts(durability(writers))).expect("child open"));
    let start = wal.last_lsn().map_or(0, |l| l.0);
    let out = Arc::new(parking_lot_free_stdout());
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (wal, out) = (wal.clone(), out.clone());
            thread::spawn(move || {
                for s in start.. {
                    let acked = if s % 5 == 0 {
                        let r = wal
                            .append_batch([payload(w, s), payload(w + 1000, s)])
                            .expect("append_batch");
                        format!("{} {w} {s}\n{} {} {s}\n", r.start(), r.end(), w + 1000)
                    } else {
                        format!("{} {w} {s}\n", wal.append(&payload(w, s)).expect("append"))
                    };
                    let mut o = out.lock().expect("stdout");
                    o.write_all(acked.as_bytes()).expect("print");
                    o.flush().expect("flush");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("child writer");
    }
}

fn parking_lot_free_stdout() -> std::sync::Mutex<std::io::Stdout> {
    std::sync::Mutex::new(std::io::stdout())
}

/// Runs the child for `run_for`, SIGKILLs it, returns the acknowledged records.
fn run_and_kill(dir: &std::path::Path, writers: u64, run_for: Duration) -> Vec<(u64, u64, u64)> {
    let mut child = rerun_self("crash_child_process")
        .env(CHILD_DIR, dir)
        .env(CHILD_WRITERS, writers.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let collector = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let f: Vec<u64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
            if f.len() == 3 {
                let _ = tx.send((f[0], f[1], f[2]));
            }
        }
    });
    thread::sleep(run_for);
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    child.wait().expect("reap");
    collector.join().expect("collector");
    rx.try_iter().collect()
}

fn crash_loop(writers: u64, rounds: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ writers;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(40 + seed % 160);
        for (lsn, w, s) in run_and_kill(dir.path(), writers, run_for) {
            acked.insert(lsn, (w, s));
        }
        verify_after_crash(dir.path(), writers, &acked, round);
    }
    assert!(
        acked.len() > 100,
        "the child acknowledged too little to prove anything: {}",
        acked.len()
    );
}

fn verify_after_crash(
    dir: &std::path::Path,
    writers: u64,
    acked: &BTreeMap<u64, (u64, u64)>,
    round: u64,
) {
    let wal = Wal::open(dir, small_opts(durability(writers)))
        .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    let report = wal.recovery_report().clone();
    assert!(
        report.damage.iter().all(|d| d.kind == DamageKind::TornTail),
        "round {round}: a crash may only tear the tail: {:?}",
        report.damage
    );
    for (&lsn, &(w, s)) in acked {
        let rec = wal
            .read(Lsn(lsn))
            .unwrap_or_else(|e| panic!("round {round}: acknowledged LSN {lsn} lost: {e}"));
        assert_eq!(rec.data, payload(w, s), "round {round}: LSN {lsn} changed");
    }
    let mut expect = 1;
    for rec in wal.iter_from(Lsn(1)) {
        let rec = rec.unwrap_or_else(|e| panic!("round {round}: replay error: {e}"));
        assert_eq!(rec.lsn.0, expect, "round {round}: replay is dense");
        assert!(
            check_payload(&rec.data).is_some(),
            "round {round}: LSN {} is garbage",
            rec.lsn
        );
        expect += 1;
    }
    assert_eq!(
        wal.last_lsn().map_or(0, |l| l.0),
        expect - 1,
        "round {round}: nothing after the last good record"
    );
}

#[test]
fn sigkill_a_per_write_appender_many_times() {
    crash_loop(1, 24);
}

#[test]
fn sigkill_four_group_commit_appenders_many_times() {
    crash_loop(4, 20);
}
