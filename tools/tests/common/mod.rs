//! Fixtures for the CLI tests, made with the real tidemark-wal crate, and helpers
//! to run the binaries and to prove that no input file changed.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tidemark_wal::{
    Compression, Durability, FrameInfo, FrameKind, SegmentFileKind, SegmentImage, Wal, WalOptions,
    list_log_dir,
};

/// Records in every fixture log.
pub const RECORDS: u64 = 400;

/// The payload of record `lsn`: readable text, long enough to span segments,
/// every third one repetitive enough to be stored compressed.
pub fn payload(lsn: u64) -> Vec<u8> {
    if lsn.is_multiple_of(3) {
        format!("record {lsn:05} ").repeat(40).into_bytes()
    } else {
        let mut x = lsn.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let noise: String = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        format!("record {lsn:05} {noise}").into_bytes()
    }
}

/// Options of the fixture logs: 64 KiB segments, zstd for larger records.
pub fn opts() -> WalOptions {
    WalOptions {
        segment_size: 64 << 10,
        durability: Durability::Buffered,
        compression: Compression::Zstd {
            level: 1,
            min_size: 400,
        },
        ..WalOptions::default()
    }
}

/// A healthy log of [`RECORDS`] records over several segments, synced every
/// 10 records (so later frames prove earlier ones were durable).
pub fn healthy_log() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    for lsn in 1..=RECORDS {
        assert_eq!(wal.append(&payload(lsn)).expect("append").0, lsn);
        if lsn.is_multiple_of(10) {
            wal.sync().expect("sync");
        }
    }
    wal.sync().expect("sync");
    drop(wal);
    dir
}

/// Every record frame of the log in `dir`, with its segment file.
pub fn record_frames(dir: &Path) -> Vec<(PathBuf, FrameInfo)> {
    let listing = list_log_dir(dir).expect("list");
    let mut out = Vec::new();
    for seg in listing.segments {
        if !matches!(seg.kind, SegmentFileKind::Live(_)) {
            continue;
        }
        let image = SegmentImage::read(&seg.path).expect("read segment");
        for (info, _) in image.frames() {
            if info.kind == FrameKind::Record {
                out.push((seg.path.clone(), info));
            }
        }
    }
    out
}

/// Flips one bit in the payload of the record `lsn`; returns its segment and frame.
pub fn flip_bit_in(dir: &Path, lsn: u64) -> (PathBuf, FrameInfo) {
    let (path, info) = record_frames(dir)
        .into_iter()
        .find(|(_, f)| f.lsn.0 == lsn)
        .expect("record present");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[info.offset as usize + 32 + 10] ^= 0x04;
    std::fs::write(&path, &bytes).expect("write");
    (path, info)
}

/// A log whose last record was half written: its payload's second half is garbage.
pub fn torn_tail_log() -> (tempfile::TempDir, PathBuf, FrameInfo) {
    let dir = healthy_log();
    let (path, info) = record_frames(dir.path()).pop().expect("a record");
    assert_eq!(info.lsn.0, RECORDS);
    let mut bytes = std::fs::read(&path).expect("read");
    let start = info.offset as usize + 32 + info.stored_len as usize / 2;
    let end = info.offset as usize + 32 + info.stored_len as usize;
    bytes[start..end].iter_mut().for_each(|b| *b = 0xA5);
    std::fs::write(&path, &bytes).expect("write");
    (dir, path, info)
}

/// Every file under `dir` (not recursive) with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

/// Result of one run of a binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts the exit code and that nothing panicked.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic: {}",
            self.stderr
        );
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `wal-inspect` with `args`.
pub fn wal_inspect(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_wal-inspect"))
        .args(args)
        .output()
        .expect("run wal-inspect");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A path as a `&str` argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Opens `dir` for writing, retrying while it is locked: a log dropped a moment
/// ago can stay locked briefly while another test thread spawns a process (the
/// child shares the lock's open file until it execs).
pub fn open_writer(dir: &Path, opts: WalOptions) -> Wal {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Wal::open(dir, opts.clone()) {
            Err(tidemark_wal::WalError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.expect("open writer"),
        }
    }
}
