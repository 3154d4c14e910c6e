//! End-to-end tests of `wal-inspect` over logs written by the real tidemark-wal:
//! exit codes, key facts in human and JSON output, and that nothing changes on
//! disk unless `repair` runs without `--dry-run`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    RECORDS, arg, flip_bit_in, healthy_log, open_writer, opts, payload, snapshot, torn_tail_log,
    wal_inspect,
};
use tidemark_wal::Wal;

fn file_name(p: &std::path::Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

#[test]
fn healthy_log_reports_healthy_in_every_read_only_command_and_changes_nothing() {
    let dir = healthy_log();
    let d = arg(dir.path());
    let before = snapshot(dir.path());

    let human = wal_inspect(&[d]);
    human.expect_code(0);
    let records_line = format!("records        {RECORDS} (LSN 1..{RECORDS})");
    assert!(human.stdout.contains(&records_line), "{}", human.stdout);
    assert!(human.stdout.contains("opens cleanly"));
    assert!(human.stdout.contains("verdict: healthy"));
    assert!(human.stdout.contains("sealed"), "{}", human.stdout);

    let summary = wal_inspect(&[d, "summary", "--json"]);
    let v = summary.expect_code(0).json();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["recovery"]["opens"], true);
    assert_eq!(v["recovery"]["report"]["last_lsn"], RECORDS);
    let segs = v["segments"].as_array().expect("segments");
    let live: Vec<_> = segs.iter().filter(|s| s["base_lsn"].is_u64()).collect();
    assert!(live.len() >= 2, "fixture spans several segments");
    let total: u64 = live.iter().map(|s| s["records"].as_u64().expect("n")).sum();
    assert_eq!(total, RECORDS);
    assert_eq!(live[0]["first_lsn"], 1);
    assert_eq!(live[0]["version"], 1);
    assert!(live[0]["sealed"].is_string());
    assert!(live[0]["fill"].as_f64().expect("fill") > 0.5);

    let verify = wal_inspect(&[d, "verify"]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains(&format!("verified {RECORDS} records"))
    );
    let v = wal_inspect(&[d, "verify", "--json"]).expect_code(0).json();
    assert_eq!(v["records_verified"], RECORDS);
    assert_eq!(v["problems"].as_array().expect("problems").len(), 0);

    let stats = wal_inspect(&[d, "stats"]);
    stats.expect_code(0);
    assert!(stats.stdout.contains("record sizes"));
    let v = wal_inspect(&[d, "stats", "--json"]).expect_code(0).json();
    assert_eq!(v["records"], RECORDS);
    assert_eq!(v["compressed_records"], RECORDS / 3);
    assert!(v["compression_ratio"].as_f64().expect("ratio") > 1.5);
    let want: u64 = (1..=RECORDS).map(|l| payload(l).len() as u64).sum();
    assert_eq!(v["payload_bytes"], want);
    let hist: u64 = v["size_histogram"]
        .as_array()
        .expect("hist")
        .iter()
        .map(|b| b["records"].as_u64().expect("n"))
        .sum();
    assert_eq!(hist, RECORDS);

    assert_eq!(
        snapshot(dir.path()),
        before,
        "a read-only command changed a file"
    );
}

#[test]
fn dump_prints_decompressed_records_as_text_hex_and_json() {
    let dir = healthy_log();
    let d = arg(dir.path());
    let before = snapshot(dir.path());

    let text = wal_inspect(&[d, "dump", "--from", "5", "--to", "7"]);
    text.expect_code(0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with(&format!("5\t{}\trecord 00005 ", payload(5).len())));
    assert!(lines[1].starts_with("6\t"));

    let hex = wal_inspect(&[d, "dump", "--from", "6", "--limit", "1", "--format", "hex"]);
    hex.expect_code(0);
    assert!(
        hex.stdout
            .starts_with(&format!("LSN 6  {} bytes\n", payload(6).len()))
    );
    assert!(
        hex.stdout.contains("  00000000  72 65 63 6f 72 64"),
        "{}",
        hex.stdout
    );

    let json = wal_inspect(&[d, "dump", "--from", "9", "--limit", "2", "--json"]);
    json.expect_code(0);
    let recs: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["lsn"], 9);
    // LSN 9 is stored compressed; dump shows it as appended.
    assert_eq!(
        recs[0]["text"].as_str().expect("text").as_bytes(),
        payload(9)
    );
    assert_eq!(recs[1]["lsn"], 10);

    let all = wal_inspect(&[d, "dump"]);
    assert_eq!(all.expect_code(0).stdout.lines().count() as u64, RECORDS);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn torn_tail_is_reported_with_segment_offset_and_lsn_and_changes_nothing() {
    let (dir, seg, frame) = torn_tail_log();
    let d = arg(dir.path());
    let before = snapshot(dir.path());

    let human = wal_inspect(&[d]);
    human.expect_code(1);
    let line = format!(
        "torn-tail in {} at byte {} (LSN {RECORDS})",
        seg.display(),
        frame.offset
    );
    assert!(human.stdout.contains(&line), "{}", human.stdout);
    assert!(human.stdout.contains("would repair"));
    assert!(human.stdout.contains("verdict: DAMAGE FOUND"));
    assert!(human.stdout.contains(&format!("break@{}", frame.offset)));

    let v = wal_inspect(&[d, "--json"]).expect_code(1).json();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["recovery"]["opens"], true);
    let p = &v["problems"][0];
    assert_eq!(p["kind"], "torn-tail");
    assert_eq!(p["segment"], seg.display().to_string());
    assert_eq!(p["offset"], frame.offset);
    assert_eq!(p["lsn"], RECORDS);

    let v = wal_inspect(&[d, "verify", "--json"]).expect_code(1).json();
    assert_eq!(v["records_verified"], RECORDS - 1);
    assert_eq!(v["problems"][0]["kind"], "torn-tail");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn bit_flip_in_the_middle_is_corruption_that_a_default_open_refuses() {
    let dir = healthy_log();
    let (seg, frame) = flip_bit_in(dir.path(), 100);
    let d = arg(dir.path());
    let before = snapshot(dir.path());

    let verify = wal_inspect(&[d, "verify"]);
    verify.expect_code(1);
    let line = format!(
        "corruption in {} at byte {} (LSN 100)",
        seg.display(),
        frame.offset
    );
    assert!(verify.stdout.contains(&line), "{}", verify.stdout);
    assert!(
        verify
            .stdout
            .contains("a default open (tolerate-corrupted-tail) refuses the log")
    );
    let human = wal_inspect(&[d]);
    human.expect_code(1);
    let records = format!(
        "records        {} (LSN 1..{RECORDS}), 1 lost to damage",
        RECORDS - 1
    );
    assert!(human.stdout.contains(&records), "{}", human.stdout);
    assert!(human.stdout.contains(&format!("break@{}", frame.offset)));

    let v = wal_inspect(&[d, "verify", "--json"]).expect_code(1).json();
    assert_eq!(v["problems"][0]["kind"], "corruption");
    assert_eq!(v["problems"][0]["lsn"], 100);
    assert_eq!(v["problems"][0]["offset"], frame.offset);
    assert_eq!(v["records_verified"], RECORDS - 1);
    assert_eq!(v["records_skipped"], 1);
    assert_eq!(v["recovery"]["opens"], false);

    let s = wal_inspect(&[d, "--json"]).expect_code(1).json();
    assert_eq!(s["recovery"]["opens"], false);
    assert!(
        s["recovery"]["action"]
            .as_str()
            .expect("action")
            .contains("refuses to open")
    );

    // dump still prints every readable record, and says what is missing.
    let dump = wal_inspect(&[d, "dump", "--json"]);
    dump.expect_code(1);
    assert!(
        dump.stderr.contains("damage: corruption"),
        "{}",
        dump.stderr
    );
    let lsns: Vec<u64> = dump
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["lsn"]
                .as_u64()
                .expect("lsn")
        })
        .collect();
    assert_eq!(lsns.len() as u64, RECORDS - 1);
    assert!(!lsns.contains(&100));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn repair_dry_run_changes_nothing_and_repair_keeps_a_broken_copy() {
    let dir = healthy_log();
    let (seg, _) = flip_bit_in(dir.path(), 100);
    let d = arg(dir.path());
    let before = snapshot(dir.path());

    let dry = wal_inspect(&[d, "repair", "--mode", "point-in-time", "--dry-run"]);
    dry.expect_code(1);
    assert!(dry.stdout.contains("nothing was changed"));
    assert!(
        dry.stdout
            .contains(&format!("keep a copy of {}", seg.display()))
    );
    assert!(
        dry.stdout.contains("leave 99 records, LSN 1..99"),
        "{}",
        dry.stdout
    );
    let v = wal_inspect(&[
        d,
        "repair",
        "--mode",
        "point-in-time",
        "--dry-run",
        "--json",
    ])
    .expect_code(1)
    .json();
    assert_eq!(v["plan"]["last_lsn"], 99);
    assert_eq!(snapshot(dir.path()), before, "--dry-run changed a file");

    // The default mode refuses corruption: repair with it says so, changes nothing.
    let refused = wal_inspect(&[d, "repair", "--mode", "tolerate-corrupted-tail"]);
    refused.expect_code(1);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("corruption in"));
    assert_eq!(snapshot(dir.path()), before);

    let done = wal_inspect(&[d, "repair", "--mode", "point-in-time", "--json"]);
    let v = done.expect_code(0).json();
    assert_eq!(v["repaired"], true);
    assert_eq!(v["healthy_after"], true);
    let copy = seg.with_extension("wal.broken");
    assert_eq!(v["kept_copies"][0]["copy"], copy.display().to_string());
    assert_eq!(
        std::fs::read(&copy).expect("copy"),
        before[&seg],
        "copy is the damaged original"
    );

    let after = wal_inspect(&[d, "--json"]).expect_code(0).json();
    assert_eq!(after["recovery"]["report"]["last_lsn"], 99);
    let others = after["other_files"].as_array().expect("others");
    assert!(
        others
            .iter()
            .any(|o| o.as_str().is_some_and(|s| s.ends_with(&file_name(&copy))))
    );
}

#[test]
fn repair_of_a_torn_tail_with_the_default_mode_drops_only_the_torn_record() {
    let (dir, seg, _) = torn_tail_log();
    let d = arg(dir.path());
    let original = std::fs::read(&seg).expect("read");
    let done = wal_inspect(&[d, "repair", "--mode", "tolerate-corrupted-tail"]);
    done.expect_code(0);
    assert!(
        done.stdout.contains("verdict: healthy after repair"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains(&format!("leave {} records", RECORDS - 1))
    );
    assert_eq!(
        std::fs::read(seg.with_extension("wal.broken")).expect("copy"),
        original
    );
    let wal = Wal::open_read_only(dir.path(), opts()).expect("open");
    assert_eq!(wal.last_lsn().map(|l| l.0), Some(RECORDS - 1));
    // Segments the repairing open prepared have the log's own size.
    for s in tidemark_wal::list_log_dir(dir.path())
        .expect("list")
        .segments
    {
        assert_eq!(s.file_size, opts().segment_size, "{}", s.path.display());
    }

    let again = wal_inspect(&[d, "repair", "--mode", "tolerate-corrupted-tail"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to repair"));
}

#[test]
fn repair_refuses_while_a_writer_holds_the_log_and_leaves_no_copies() {
    let dir = healthy_log();
    let (seg, _) = flip_bit_in(dir.path(), 100);
    let damaged = std::fs::read(&seg).expect("read");
    // The writer keeps every valid record and holds the lock.
    let writer = open_writer(
        dir.path(),
        tidemark_wal::WalOptions {
            recovery: tidemark_wal::RecoveryMode::SkipCorrupted,
            ..opts()
        },
    );
    let d = arg(dir.path());
    let r = wal_inspect(&[d, "repair", "--mode", "point-in-time"]);
    r.expect_code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("locked by another writer"),
        "{}",
        r.stderr
    );
    assert!(
        !seg.with_extension("wal.broken").exists(),
        "copy left behind"
    );
    assert_eq!(std::fs::read(&seg).expect("read"), damaged);
    drop(writer);
}

#[test]
fn a_foreign_file_named_like_a_segment_is_named_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let foreign = dir.path().join("seg-00000000000000000001.wal");
    std::fs::write(&foreign, "this is a CSV export, not a log\n".repeat(20)).expect("write");
    let d = arg(dir.path());
    let before = snapshot(dir.path());

    let human = wal_inspect(&[d]);
    human.expect_code(1);
    let line = format!(
        "foreign-file in {}: not a tidemark WAL segment: bad magic bytes",
        foreign.display()
    );
    assert!(human.stdout.contains(&line), "{}", human.stdout);
    let v = wal_inspect(&[d, "--json"]).expect_code(1).json();
    assert_eq!(v["segments"][0]["state"], "foreign");
    assert_eq!(v["problems"][0]["kind"], "foreign-file");

    wal_inspect(&[d, "verify"]).expect_code(1);
    for cmd in [&["dump"][..], &["repair", "--mode", "skip-corrupted"][..]] {
        let mut args = vec![d];
        args.extend_from_slice(cmd);
        let r = wal_inspect(&args);
        r.expect_code(1);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("is not a tidemark WAL segment"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn empty_missing_and_non_log_paths_are_usage_errors_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = arg(dir.path());
    let commands: [&[&str]; 7] = [
        &[],
        &["verify"],
        &["dump"],
        &["tail", "--limit", "1"],
        &["stats"],
        &["repair", "--mode", "point-in-time"],
        &["--json"],
    ];
    for cmd in commands {
        let mut args = vec![d];
        args.extend_from_slice(cmd);
        let r = wal_inspect(&args);
        r.expect_code(2);
        assert_eq!(r.stderr.lines().count(), 1, "{cmd:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("no segment files (seg-*.wal); it is empty"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(d));
    }
    assert!(snapshot(dir.path()).is_empty());

    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    let r = wal_inspect(&[d]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("holds 1 other file(s), e.g. notes.txt"),
        "{}",
        r.stderr
    );

    let missing = dir.path().join("nope");
    let r = wal_inspect(&[arg(&missing)]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("cannot open log directory"),
        "{}",
        r.stderr
    );

    let file = dir.path().join("notes.txt");
    let r = wal_inspect(&[arg(&file), "verify"]);
    r.expect_code(2);
    assert!(r.stderr.contains("is a file, not a log directory"));

    let r = wal_inspect(&[d, "dump", "--format", "yaml"]);
    r.expect_code(2);
    let r = wal_inspect(&[d, "frobnicate"]);
    r.expect_code(2);
    let r = wal_inspect(&[d, "dump", "--from", "9", "--to", "3"]);
    r.expect_code(2);
    let help = wal_inspect(&["--help"]);
    help.expect_code(0);
    for word in [
        "summary", "verify", "dump", "tail", "stats", "repair", "--json",
    ] {
        assert!(help.stdout.contains(word), "help lacks {word}");
    }
}

#[test]
fn truncated_segment_file_is_reported_not_panicked_on() {
    let dir = healthy_log();
    let listing = tidemark_wal::list_log_dir(dir.path()).expect("list");
    let last = listing.segments.last().expect("segment").path.clone();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len(40).expect("truncate");
    drop(file);
    let d = arg(dir.path());
    let r = wal_inspect(&[d]);
    r.expect_code(1);
    assert!(r.stdout.contains("too short for a segment"), "{}", r.stdout);
    let v = wal_inspect(&[d, "verify", "--json"]).expect_code(1).json();
    assert!(
        v["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p["kind"] == "foreign-file")
    );
}

#[test]
fn an_unreadable_segment_file_is_an_io_error_named_in_one_line() {
    let dir = healthy_log();
    let bad = dir.path().join("seg-00000000000000000099.wal");
    std::fs::create_dir(&bad).expect("mkdir");
    let d = arg(dir.path());
    let before = snapshot(dir.path());
    for cmd in [
        &[][..],
        &["verify"][..],
        &["stats", "--json"][..],
        &["dump"][..],
    ] {
        let mut args = vec![d];
        args.extend_from_slice(cmd);
        let r = wal_inspect(&args);
        r.expect_code(2);
        assert_eq!(r.stderr.lines().count(), 1, "{cmd:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&bad.display().to_string()),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn tail_follows_a_live_log_across_segments_while_the_writer_holds_its_lock() {
    let dir = healthy_log();
    let wal = open_writer(dir.path(), opts());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wal-inspect"))
        .args([
            arg(dir.path()),
            "tail",
            "--from",
            "395",
            "--limit",
            "120",
            "--poll-ms",
            "10",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map(|l| l.expect("line"))
            .collect::<Vec<String>>()
    });
    for lsn in RECORDS + 1..=RECORDS + 115 {
        assert_eq!(wal.append(&payload(lsn)).expect("append").0, lsn);
        if lsn.is_multiple_of(20) {
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tail did not print 120 records in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let lines = reader.join().expect("reader");
    assert_eq!(lines.len(), 120);
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let lsn = 395 + i as u64;
        assert_eq!(v["lsn"], lsn);
        assert_eq!(v["text"].as_str().expect("text").as_bytes(), payload(lsn));
    }
}

#[test]
fn tail_reads_a_record_larger_than_its_read_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(
        dir.path(),
        tidemark_wal::WalOptions {
            segment_size: 4 << 20,
            durability: tidemark_wal::Durability::Buffered,
            ..tidemark_wal::WalOptions::default()
        },
    )
    .expect("open");
    let big: Vec<u8> = (0..(3u32 << 19)).map(|i| (i % 251) as u8).collect();
    wal.append(b"small before").expect("append");
    wal.append(&big).expect("append big");
    wal.append(b"small after").expect("append");
    let r = wal_inspect(&[
        arg(dir.path()),
        "tail",
        "--from",
        "1",
        "--limit",
        "3",
        "--json",
    ]);
    r.expect_code(0);
    let recs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["text"], "small before");
    assert_eq!(recs[1]["len"], big.len());
    assert_eq!(recs[2]["text"], "small after");
    drop(wal);
}
