//! The WAL's durability claims, read from the system calls it makes: the test runs itself as a
//! child process under `strace` and checks, from the trace, that
//!
//! * `open()` of a new, nested log directory fsyncs every directory it created into its parent;
//! * each `PerWrite` append (through the mapping, and a large one through `pwritev`) has its
//!   bytes synced (`msync`) before the call returns;
//! * every segment file renamed into its live name is made durable by a directory fsync before
//!   the thread that renamed it goes on (so before any appender can use it);
//! * a segment that recovery sets aside as `*.wal.broken` is renamed durably before `open()`
//!   returns.
//!
//! Needs `strace` (`apt-get install -y strace`); without it the test fails.

mod common;

use std::path::{Path, PathBuf};

use common::small_opts;
use tidemark_test_servers::strace::{mark, trace_self};
use tidemark_wal::{Durability, RecoveryMode, Wal, WalOptions};

/// Set in the child: the directory to work in.
const CHILD_ENV: &str = "TIDEMARK_WAL_FSYNC_CHILD_ROOT";
/// This test's name, so the child runs only it.
const TEST_NAME: &str = "wal_syncs_appends_segments_and_directories";
/// Appends of 1 KiB after the first two: enough to fill several 64 KiB segments.
const FILL_APPENDS: usize = 200;

#[test]
fn wal_syncs_appends_segments_and_directories() {
    match std::env::var(CHILD_ENV) {
        Ok(root) => child(Path::new(&root)),
        Err(_) => parent(),
    }
}

fn log_dir(root: &Path) -> PathBuf {
    root.join("a").join("b").join("log")
}

fn child(root: &Path) {
    let dir = log_dir(root);
    let wal = Wal::open(&dir, small_opts(Durability::PerWrite)).expect("open");
    mark(root, "opened");
    let appends: [&[u8]; 2] = [&[1u8; 100], &[2u8; 16 * 1024]];
    for (i, record) in appends.iter().enumerate() {
        mark(root, &format!("before-{i}"));
        wal.append(record).expect("append");
        mark(root, &format!("after-{i}"));
    }
    for i in 0..FILL_APPENDS {
        wal.append(&[3u8; 1024]).expect("append");
        mark(root, &format!("after-fill-{i}"));
    }
    drop(wal);

    // Damage the header of the oldest segment; SkipCorrupted sets it aside.
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("list log")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    let oldest = segments.first().expect("a segment");
    let mut bytes = std::fs::read(oldest).expect("read segment");
    bytes[20] ^= 0xff;
    std::fs::write(oldest, bytes).expect("damage segment");
    mark(root, "damaged");
    let options = WalOptions {
        recovery: RecoveryMode::SkipCorrupted,
        ..small_opts(Durability::PerWrite)
    };
    let wal = Wal::open(&dir, options).expect("reopen");
    mark(root, "reopened");
    assert!(wal.recovery_report().repaired);
}

fn parent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().canonicalize().expect("canonical temp dir");
    let trace = trace_self(
        TEST_NAME,
        "fsync,fdatasync,msync,pwritev,pwritev2,pwrite64,rename,renameat,renameat2,stat,newfstatat,statx",
        CHILD_ENV,
        &root,
        &root.join("strace.log"),
    );
    let dir = log_dir(&root);

    // open() made every directory it created durable in its parent, and the log's own entries.
    let opened = trace.marker("opened");
    for d in [&root, &root.join("a"), &root.join("a/b"), &dir] {
        trace.fsynced(d, 0, opened);
    }

    // Each PerWrite append: bytes written, then synced, before it returned.
    for i in 0..2 {
        let (before, after) = (
            trace.marker(&format!("before-{i}")),
            trace.marker(&format!("after-{i}")),
        );
        let synced = trace
            .find(before, after, |l| l.contains("msync"))
            .unwrap_or_else(|| panic!("append {i} returned before an msync"));
        if i == 1 {
            let written = trace.find(before, after, |l| {
                l.contains("pwrite") && l.contains(".wal>")
            });
            assert!(
                written.is_some_and(|w| w < synced),
                "the 16 KiB append was not written with pwritev before its msync"
            );
        }
    }

    // Every segment renamed into its live name is made durable (the directory fsynced) by the
    // thread that renamed it before that thread does anything else, so before the segment can
    // be handed to an appender.
    let renamed = trace.published("rename", |dst| dst.ends_with(".wal"));
    assert!(
        renamed.len() >= 3,
        "expected several segments, saw {}",
        renamed.len()
    );
    for at in renamed.into_iter().map(|r| r.at) {
        let next = trace
            .next_call_of_same_thread(at)
            .unwrap_or_else(|| panic!("nothing followed the rename at trace line {at}"));
        trace.fsynced(&dir, next, next + 1);
    }

    // The set-aside segment's new name is durable before open() returned.
    let (damaged, reopened) = (trace.marker("damaged"), trace.marker("reopened"));
    let set_aside = trace
        .published("rename", |dst| dst.ends_with(".wal.broken"))
        .into_iter()
        .map(|r| r.at)
        .find(|&at| damaged < at && at < reopened)
        .expect("the damaged segment was renamed *.wal.broken");
    trace.fsynced(&dir, set_aside, reopened);
}
