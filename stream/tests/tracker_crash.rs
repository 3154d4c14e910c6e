//! Real crashes: a child process adds blocks from one thread per stream while
//! its job generator allocates and cleans batches, printing every call that
//! returned. The parent SIGKILLs it after a random number of acknowledged adds,
//! reopens the tracker and checks it against what was acknowledged: every
//! acknowledged block is there (or in a batch a cleanup may have dropped),
//! every acknowledged batch is there as printed (or cleaned), and nothing
//! appears that the child did not add.

mod tracker_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tidemark_stream::tracker::{Allocation, ReceivedBlockTracker, TrackerOptions, TrackerSnapshot};
use tidemark_stream::{BatchTime, StreamBlockId};
use tidemark_test_servers::child::rerun_self;
use tracker_common::{STREAMS, all_blocks, block};

const CHILD_DIR: &str = "TIDEMARK_TRACKER_CRASH_DIR";
const CHILD_ROUND: &str = "TIDEMARK_TRACKER_CRASH_ROUND";
/// Unique ids of round r start at r times this.
const ROUND_IDS: u64 = 1_000_000;
/// The job generator cleans every this many batches, keeping the last two.
const CLEAN_EVERY: u64 = 4;
/// Crash rounds on one log.
const ROUNDS: u64 = 12;

/// 16 KiB segments: a few rotations per round, and room for a batch of ~480 blocks.
fn options() -> TrackerOptions {
    TrackerOptions {
        segment_size: 16 << 10,
        ..TrackerOptions::default()
    }
}

/// The child's body: runs only when re-executed by the crash test.
#[test]
fn tracker_crash_child() {
    let (Ok(dir), Ok(round)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROUND)) else {
        return;
    };
    let round: u64 = round.parse().expect("round");
    let tracker = Arc::new(
        ReceivedBlockTracker::open(Some(Path::new(&dir)), &STREAMS, options()).expect("open"),
    );
    let out = Arc::new(Mutex::new(std::io::stdout()));
    // The test harness has printed "test tracker_crash_child ... " without a newline.
    out.lock().expect("stdout").write_all(b"\n").expect("print");
    let print = move |line: String| {
        let mut out = out.lock().expect("stdout");
        out.write_all(line.as_bytes()).expect("print");
        out.flush().expect("flush");
    };
    let adders: Vec<_> = STREAMS
        .iter()
        .map(|&stream| {
            let (tracker, print) = (tracker.clone(), print.clone());
            thread::spawn(move || {
                for s in 0.. {
                    let unique = round * ROUND_IDS + s;
                    tracker.add_block(block(stream, unique)).expect("add");
                    print(format!("A {stream} {unique}\n"));
                }
            })
        })
        .collect();
    job_generator(&tracker, &print);
    for adder in adders {
        adder.join().expect("adder");
    }
}

/// Allocates the next batch time about every millisecond, printing its blocks;
/// every fourth batch, cleans all but the last two and prints the threshold.
fn job_generator(tracker: &ReceivedBlockTracker, print: &impl Fn(String)) {
    let mut time = tracker.last_allocated_batch().map_or(0, |t| t.0);
    loop {
        time += 1;
        let done = tracker
            .allocate_blocks_to_batch(BatchTime(time))
            .expect("allocate");
        assert_eq!(done, Allocation::Allocated);
        let blocks: Vec<String> = tracker
            .blocks_of_batch(BatchTime(time))
            .values()
            .flatten()
            .map(|i| format!("{}:{}", i.block.stream_id, i.block.unique_id))
            .collect();
        print(format!("B {time} {}\n", blocks.join(",")));
        if time.is_multiple_of(CLEAN_EVERY) {
            tracker
                .cleanup_old_batches(BatchTime(time - 2))
                .expect("cleanup");
            print(format!("C {}\n", time - 2));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// What one child printed before it died.
#[derive(Default, Debug)]
struct Acked {
    adds: BTreeSet<StreamBlockId>,
    batches: BTreeMap<BatchTime, Vec<StreamBlockId>>,
    cleanups: Vec<BatchTime>,
}

impl Acked {
    fn parse(&mut self, line: &str) {
        let mut fields = line.split(' ');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("A"), Some(stream), Some(unique)) => {
                self.adds.insert(id(stream, unique));
            }
            (Some("B"), Some(time), list) => {
                let blocks = list
                    .unwrap_or("")
                    .split(',')
                    .filter(|b| !b.is_empty())
                    .map(|b| b.split_once(':').map(|(s, u)| id(s, u)).expect("s:u"))
                    .collect();
                self.batches
                    .insert(BatchTime(time.parse().expect("time")), blocks);
            }
            (Some("C"), Some(threshold), None) => {
                self.cleanups
                    .push(BatchTime(threshold.parse().expect("threshold")));
            }
            _ => {} // the test harness's own lines
        }
    }
}

fn id(stream: &str, unique: &str) -> StreamBlockId {
    StreamBlockId {
        stream_id: stream.parse().expect("stream"),
        unique_id: unique.parse().expect("unique"),
    }
}

/// Runs a child for `round`, SIGKILLs it once it acknowledged `kill_after`
/// adds, and returns everything it printed.
fn run_and_kill(dir: &Path, round: u64, kill_after: usize) -> Acked {
    let mut child = rerun_self("tracker_crash_child")
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("stdout");
    let mut acked = Acked::default();
    let mut killed = false;
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        // A line the kill cut short has no newline and acknowledges nothing.
        let Some(whole) = line.strip_suffix('\n') else {
            break;
        };
        acked.parse(whole);
        if !killed && acked.adds.len() >= kill_after {
            child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
            killed = true;
        }
    }
    reap(&mut child, killed, round);
    acked
}

fn reap(child: &mut Child, killed: bool, round: u64) {
    let status = child.wait().expect("reap");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        killed,
        "round {round}: the child ended by itself ({status}):\n{stderr}"
    );
}

/// The kill points' seed: `TIDEMARK_TRACKER_CRASH_SEED` (as a failure prints
/// it, to reuse a run's kill points), else the clock.
fn crash_seed() -> u64 {
    let given = std::env::var("TIDEMARK_TRACKER_CRASH_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
    let clock = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x2545_F491_4F6C_DD1D, |d| d.as_nanos() as u64)
    };
    given.unwrap_or_else(clock) | 1
}

/// xorshift64: enough randomness for kill points, reproducible from the seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_while_adding_from_several_threads_loses_no_acknowledged_block() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut seed = crash_seed();
    let first_seed = seed;
    let mut prior = TrackerSnapshot::default();
    let (mut adds, mut cleanups) = (0, 0);
    for round in 1..=ROUNDS {
        let kill_after = 50 + (next(&mut seed) % 550) as usize;
        let acked = run_and_kill(tmp.path(), round, kill_after);
        let tracker =
            ReceivedBlockTracker::open(Some(tmp.path()), &STREAMS, options()).expect("reopen");
        let recovered = tracker.snapshot();
        let context = format!("seed {first_seed:#x}, round {round}, kill after {kill_after}");
        check_round(&prior, &acked, &recovered, round, &context);
        adds += acked.adds.len();
        cleanups += acked.cleanups.len();
        prior = recovered;
        if round == ROUNDS {
            let first = tracker.wal_span().map(|s| s.0.0);
            assert!(first > Some(1), "{context}: no segment was ever retired");
        }
    }
    assert!(
        adds > 400 && cleanups > 0,
        "too little happened: {adds} adds, {cleanups} cleanups"
    );
}

/// Checks the reopened state against the state before the round and what the
/// child acknowledged in it.
fn check_round(
    prior: &TrackerSnapshot,
    acked: &Acked,
    recovered: &TrackerSnapshot,
    round: u64,
    context: &str,
) {
    let present = all_blocks(recovered);
    let unique: BTreeSet<StreamBlockId> = present.iter().copied().collect();
    assert_eq!(
        unique.len(),
        present.len(),
        "{context}: a block is in two places"
    );

    // Nothing appears that was not added: blocks from before the round, acknowledged
    // ones, and at most the one add per stream that was in flight.
    let before: BTreeSet<StreamBlockId> = all_blocks(prior).into_iter().collect();
    for b in &unique {
        let in_flight = in_flight_add(acked, b.stream_id, round);
        assert!(
            before.contains(b) || acked.adds.contains(b) || *b == in_flight,
            "{context}: block {b} appeared from nowhere"
        );
    }

    let known = known_batches(prior, acked);
    let (certain, possible) = cleanup_bounds(prior, acked);
    for (time, blocks) in &known {
        let got = recovered
            .batches
            .get(time)
            .map(|b| b.values().flatten().map(|i| i.block).collect::<Vec<_>>());
        match got {
            Some(got) => {
                assert!(
                    *time >= certain,
                    "{context}: batch {time} survived its cleanup"
                );
                assert_eq!(&got, blocks, "{context}: batch {time} changed");
            }
            None => assert!(*time < possible, "{context}: batch {time} vanished"),
        }
    }
    let latest_known = known.keys().next_back().copied().max(prior.last_allocated);
    assert!(
        recovered.last_allocated >= latest_known,
        "{context}: allocation lost"
    );
    let unknown: Vec<_> = recovered
        .batches
        .keys()
        .filter(|t| !known.contains_key(t))
        .collect();
    assert!(
        unknown.len() <= 1 && unknown.iter().all(|t| Some(**t) > latest_known),
        "{context}: batches {unknown:?} appeared from nowhere"
    );

    // Every acknowledged block (and every block waiting before the round) is
    // there, unless it is in a batch that a cleanup dropped.
    let cleaned: BTreeSet<StreamBlockId> = known
        .iter()
        .filter(|(t, _)| !recovered.batches.contains_key(t))
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let waiting_before = prior.unallocated.values().flatten().map(|i| i.block);
    for b in acked.adds.iter().copied().chain(waiting_before) {
        assert!(
            unique.contains(&b) || cleaned.contains(&b),
            "{context}: acknowledged block {b} is lost"
        );
    }
}

/// The add of `stream` that may have been in flight: the one after its last acknowledged.
fn in_flight_add(acked: &Acked, stream: u32, round: u64) -> StreamBlockId {
    let last = acked
        .adds
        .iter()
        .filter(|b| b.stream_id == stream)
        .map(|b| b.unique_id)
        .max();
    StreamBlockId {
        stream_id: stream,
        unique_id: last.map_or(round * ROUND_IDS, |u| u + 1),
    }
}

/// Batches known before the round or acknowledged in it, with their blocks.
fn known_batches(
    prior: &TrackerSnapshot,
    acked: &Acked,
) -> BTreeMap<BatchTime, Vec<StreamBlockId>> {
    let mut known: BTreeMap<_, _> = prior
        .batches
        .iter()
        .map(|(t, b)| {
            (
                *t,
                b.values().flatten().map(|i| i.block).collect::<Vec<_>>(),
            )
        })
        .collect();
    known.extend(acked.batches.iter().map(|(t, b)| (*t, b.clone())));
    known
}

/// The cleanup thresholds that surely took effect and that may have: the last
/// acknowledged allocation's cleanup may have been in flight.
fn cleanup_bounds(prior: &TrackerSnapshot, acked: &Acked) -> (BatchTime, BatchTime) {
    let oldest_before = prior.batches.keys().next().copied().unwrap_or(BatchTime(0));
    let certain = acked
        .cleanups
        .iter()
        .copied()
        .max()
        .unwrap_or(BatchTime(0))
        .max(oldest_before);
    let pending = acked
        .batches
        .keys()
        .next_back()
        .filter(|t| t.0.is_multiple_of(CLEAN_EVERY))
        .map_or(BatchTime(0), |t| BatchTime(t.0 - 2));
    (certain, certain.max(pending))
}
