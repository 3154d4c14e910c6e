//! `tidemark bench --quick`: every case runs against the real WAL on this disk,
//! the table, JSON and SVG agree, and bad arguments are one-line usage errors.

use std::process::Command;

fn tidemark(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn quick_bench_measures_every_case_and_writes_table_json_and_svg() {
    let scratch = tempfile::tempdir().expect("scratch");
    // Someone's data beside the scratch space must survive the run.
    let bystander = scratch.path().join("checkpoints").join("keep.txt");
    std::fs::create_dir_all(bystander.parent().expect("parent")).expect("mkdir");
    std::fs::write(&bystander, "precious").expect("write");
    let out = tempfile::tempdir().expect("out");
    let out_dir = out.path().join("results");
    let args = [
        "bench",
        "--quick",
        "--writers",
        "4",
        "--dir",
        scratch.path().to_str().expect("utf8"),
        "--out",
        out_dir.to_str().expect("utf8"),
    ];
    let (code, stdout, stderr) = tidemark(&args);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.is_empty(),
        "no progress bar when stderr is not a terminal: {stderr}"
    );
    for case in [
        "write+fdatasync (append)",
        "pwrite+fdatasync (overwrite)",
        "sequential write+fdatasync",
        "sequential write (buffered)",
        "sequential read",
        "per_write",
        "group",
        "buffered",
        "interval_10ms",
        "open+scan",
        "checkpoint_write",
        "local/1MiB",
        "memory/1MiB",
    ] {
        assert!(stdout.contains(case), "table lacks {case}:\n{stdout}");
    }
    let json_path = out_dir.join("results.json");
    let svg_path = out_dir.join("results.svg");
    assert!(stdout.contains(&format!("results: {}", json_path.display())));
    assert!(stdout.contains(&format!("{}/tidemark-bench-", scratch.path().display())));
    assert!(stdout.contains(&format!("chart:   {}", svg_path.display())));

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("json file"))
            .expect("json");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 5 + 8 + 4 + 6 + 1);
    for group in ["blockstore_put", "blockstore_get"] {
        for level in ["MEMORY_ONLY_SER", "MEMORY_AND_DISK_SER", "DISK_ONLY"] {
            let case = format!("{level}/256KiB");
            let r = results
                .iter()
                .find(|r| r["group"] == group && r["case"] == case.as_str())
                .unwrap_or_else(|| panic!("no {group} {case}"));
            assert!(r["ops"].as_u64().expect("ops") >= 1);
            assert_eq!(r["limit"].is_null(), level != "DISK_ONLY");
        }
    }
    for group in ["checkpoint_write", "checkpoint_read"] {
        for backend in ["local/1MiB", "memory/1MiB"] {
            let r = results
                .iter()
                .find(|r| r["group"] == group && r["case"] == backend)
                .unwrap_or_else(|| panic!("no {group} {backend}"));
            assert!(r["ops"].as_u64().expect("ops") >= 1);
            assert_eq!(r["bytes"].as_u64(), r["ops"].as_u64().map(|n| n << 20));
            assert_eq!(r["limit"].is_null(), backend.starts_with("memory"));
        }
    }
    let appends: Vec<_> = results
        .iter()
        .filter(|r| r["group"] == "wal_append")
        .collect();
    assert_eq!(appends.len(), 8);
    for r in &appends {
        assert!(r["ops"].as_u64().expect("ops") > 0, "{r}");
        assert!(
            r["latency_us"]["p99"].as_f64().expect("p99")
                >= r["latency_us"]["p50"].as_f64().expect("p50")
        );
        assert!(r["ratio_to_limit"].as_f64().expect("ratio") > 0.0);
        let threads = r["threads"].as_u64().expect("threads");
        assert!(threads == 1 || threads == 4);
    }
    let buffered = appends
        .iter()
        .find(|r| r["case"] == "buffered")
        .expect("buffered");
    assert_eq!(
        buffered["limit"]["case"],
        "machine/sequential write (buffered)"
    );
    let durable = appends
        .iter()
        .find(|r| r["case"] == "per_write")
        .expect("per_write");
    assert_eq!(
        durable["limit"]["case"],
        "machine/pwrite+fdatasync (overwrite)"
    );
    let replay = results
        .iter()
        .find(|r| r["group"] == "wal_replay")
        .expect("replay");
    assert_eq!(replay["ops"], 20_000);
    assert_eq!(replay["limit"]["case"], "machine/sequential read");
    assert_eq!(doc["environment"]["quick"], true);

    let svg = std::fs::read_to_string(&svg_path).expect("svg");
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("per_write x4"));
    assert!(svg.matches("<rect").count() >= results.len());
    // The run worked in a subdirectory of its own, and removed it.
    assert_eq!(std::fs::read_dir(scratch.path()).expect("list").count(), 1);
    assert_eq!(
        std::fs::read_to_string(&bystander).expect("kept"),
        "precious"
    );
}

#[test]
fn bench_usage_errors_are_one_line() {
    let (code, _, stderr) = tidemark(&["bench", "--writers", "0", "--quick"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--writers"));
    let (code, _, _) = tidemark(&["bench", "--no-such-flag"]);
    assert_eq!(code, 2);
    let (code, stdout, _) = tidemark(&["bench", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--quick"));
}

#[test]
fn a_dead_s3_endpoint_fails_first_in_one_line_without_leaking_the_secret() {
    let out = tempfile::tempdir().expect("out");
    let url = "s3://bench/prefix?endpoint=http://127.0.0.1:1&region=us-east-1&allow_http=true\
               &access_key_id=AKIDBENCH&secret_access_key=hunter2-secret";
    let (code, stdout, stderr) = tidemark(&[
        "bench",
        "--quick",
        "--out",
        out.path().to_str().expect("utf8"),
        "--remote-timeout",
        "1",
        "--s3",
        url,
    ]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "nothing was benchmarked: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("checkpoint backend s3 at s3://bench/prefix?endpoint=http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("AKIDBENCH"),
        "{stderr}"
    );

    let (code, _, stderr) = tidemark(&[
        "bench",
        "--quick",
        "--out",
        out.path().to_str().expect("utf8"),
        "--s3",
        "ftp://x/y",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unsupported scheme"), "{stderr}");
}

#[test]
fn s3_and_hdfs_add_checkpoint_cases_measured_on_real_servers() {
    use tidemark_test_servers::{minidfs, seaweedfs, unique_name};
    let s3 = seaweedfs().url(&unique_name("bench"));
    let hdfs = minidfs().url(&format!("/tidemark/{}", unique_name("bench")));
    let out = tempfile::tempdir().expect("out");
    let (code, stdout, stderr) = tidemark(&[
        "bench",
        "--quick",
        "--json",
        "--out",
        out.path().to_str().expect("utf8"),
        "--s3",
        &s3,
        "--hdfs",
        &hdfs,
    ]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json on stdout");
    let results = doc["results"].as_array().expect("results");
    for group in ["checkpoint_write", "checkpoint_read"] {
        for case in ["s3/1MiB", "hdfs/1MiB"] {
            let r = results
                .iter()
                .find(|r| r["group"] == group && r["case"] == case)
                .unwrap_or_else(|| panic!("no {group} {case}"));
            assert!(r["ops"].as_u64().expect("ops") >= 1);
            assert!(r["latency_us"]["p50"].as_f64().expect("p50") > 0.0);
        }
    }
    assert!(!stdout.contains(tidemark_test_servers::S3_SECRET_KEY));
}
