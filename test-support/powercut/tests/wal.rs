//! Power cuts under a writing `tidemark-wal`, in a real VM (issue #16).
//!
//! Each round formats a fresh ext4 disk, boots a guest that appends (PerWrite
//! with one writer, or Group with four; 256 KiB segments, so a round crosses
//! many rotations, and old segments are retired and recycled as it goes),
//! cuts the power after a seeded random number of acknowledgements, boots a
//! checker on the same disk, and judges what it reads back
//! (`wal_verdict.rs`). The seed and the round count come from
//! `TIDEMARK_POWERCUT_SEED` and `TIDEMARK_POWERCUT_ROUNDS` (default 3 rounds a
//! mode); each round prints its seed so a failure can be repeated.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tidemark_powercut::wal_verdict::{WriterLog, judge};
use tidemark_powercut::{GuestImage, Vm, fresh_ext4_disk};

const SEGMENT_SIZE: &str = "262144";
/// Acknowledgements before the cut: from before the first rotation to well past recycling.
const CUT_AFTER_ACKS: std::ops::Range<usize> = 200..6000;
const WRITE_TIMEOUT: Duration = Duration::from_secs(240);
const CHECK_TIMEOUT: Duration = Duration::from_secs(240);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn image() -> GuestImage {
    GuestImage::build(Path::new(env!("CARGO_BIN_EXE_powercut-guest"))).unwrap_or_else(|e| {
        panic!("cannot build the power-cut guest (run scripts/setup-test-servers.sh): {e}")
    })
}

/// Boots the writer, lets it acknowledge `acks` appends, cuts the power.
fn write_then_cut(image: &GuestImage, disk: &Path, mode: &str, acks: usize) -> WriterLog {
    let vm = Vm::boot(
        image,
        disk,
        &["wal-write", "/mnt/wal", mode, SEGMENT_SIZE],
        2,
    )
    .expect("boot writer");
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut log = WriterLog::default();
    while log.acked.len() < acks {
        let Some(line) = vm.next_line(deadline) else {
            panic!(
                "writer gave {} of {acks} acks before it stopped or timed out",
                log.acked.len()
            );
        };
        log.take(&line).unwrap_or_else(|e| panic!("{e}"));
    }
    vm.power_cut();
    log
}

fn rounds(mode: &str, seed_offset: u64) {
    let image = image();
    let seed = env_u64("TIDEMARK_POWERCUT_SEED", 16) + seed_offset;
    let rounds = env_u64("TIDEMARK_POWERCUT_ROUNDS", 3);
    let mut failed = Vec::new();
    for round in 0..rounds {
        let round_seed = seed.wrapping_mul(1000).wrapping_add(round);
        let mut rng = rand::rngs::StdRng::seed_from_u64(round_seed);
        let acks = rng.random_range(CUT_AFTER_ACKS);
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = dir.path().join("disk.img");
        fresh_ext4_disk(&disk, 256).expect("disk");
        let started = Instant::now();
        let writer = write_then_cut(&image, &disk, mode, acks);
        let checker = Vm::boot(&image, &disk, &["wal-check", "/mnt/wal", SEGMENT_SIZE], 2)
            .expect("boot checker");
        let lines = checker.run_to_end(CHECK_TIMEOUT).expect("checker");
        let v = judge(&writer, &lines);
        eprintln!(
            "{mode} round {round} (seed {round_seed}): cut after {} acks (truncated below {}), read back {} records {:?} in {:.0?}: {}",
            writer.acked.len(),
            writer.truncated_below,
            v.records,
            v.lsns,
            started.elapsed(),
            if v.violations.is_empty() {
                "ok".to_string()
            } else {
                format!("VIOLATED: {:?}", v.violations)
            }
        );
        if !v.violations.is_empty() {
            failed.push((round_seed, v.violations));
        }
    }
    assert!(
        failed.is_empty(),
        "{mode}: {} of {rounds} power cuts broke the WAL's promise: {failed:?}",
        failed.len()
    );
}

#[test]
fn per_write_keeps_every_acknowledged_record_across_power_cuts() {
    rounds("perwrite", 0);
}

#[test]
fn group_commit_keeps_every_acknowledged_record_across_power_cuts() {
    rounds("group", 1);
}
