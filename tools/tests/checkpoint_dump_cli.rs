//! End-to-end tests of `checkpoint-dump` over checkpoint stores written by the
//! real tidemark-checkpoint: complete, incomplete, corrupt and fenced
//! checkpoints on local disk, a smaller set on the real SeaweedFS (S3) and
//! MiniDFSCluster (HDFS) servers, and memory:// in-process. Each checks exit
//! codes, key facts in human and JSON output, and that nothing changed unless
//! `gc` ran without `--dry-run`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use common::{Run, arg};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use tidemark_checkpoint::CURRENT_FORMAT;
use tidemark_checkpoint::blocking::{
    CheckpointError, CheckpointStore, CheckpointWriter, Epoch, PartOptions,
};
use tidemark_tools::checkpoint_dump;
use tidemark_tools::outcome::Health;

/// Runs `checkpoint-dump` with `args` and no AWS_* settings from this environment.
fn dump(args: &[&str]) -> Run {
    dump_env(args, &[])
}

fn dump_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkpoint-dump"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run checkpoint-dump");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts a failure with one error line on stderr containing `needle`.
fn expect_one_line_error(run: &Run, code: i32, needle: &str) {
    run.expect_code(code);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("checkpoint-dump: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "want {needle:?} in {}",
        run.stderr
    );
}

// ---------------------------------------------------------------- fixtures

/// A state part that compresses well (stored with zstd).
fn state_bytes(seed: u8) -> Vec<u8> {
    format!("state {seed} of the stream ")
        .repeat(8_000)
        .into_bytes()
}

/// The epochs of [`write_history`].
struct History {
    e1: Epoch,
    e2: Epoch,
    e3: Epoch,
}

/// Stores a part through a streamed writer: always an object of its own (small
/// parts given to `put_part` may travel inside the manifest).
fn stream_part(w: &mut CheckpointWriter, name: &str, data: &[u8], options: PartOptions) {
    let mut sink = w.part_writer_with(name, options).expect("part writer");
    sink.write_all(data).expect("write");
    sink.finish().expect("finish");
}

/// Three checkpoints by one driver (its claim takes position 0):
/// - e1: `metadata` "offsets 1", `state` S1 (zstd);
/// - e2: `metadata` "offsets 2", `state` shared from e1 by reference, `config` new;
/// - e3: `metadata` "offsets 2" stored again, `state` S2 (zstd), no `config`.
///
/// `state` and `config` are objects of their own; `metadata` is stored with
/// `put_part` (inside the manifest where the format allows).
fn write_history(store: &CheckpointStore) -> History {
    let mut w = store.begin().expect("begin");
    w.put_part("metadata", Bytes::from_static(b"offsets 1"))
        .expect("put");
    stream_part(&mut w, "state", &state_bytes(1), PartOptions::zstd());
    let e1 = w.commit().expect("commit");
    let cp1 = store.latest().expect("latest").expect("e1");
    let mut w = store.begin().expect("begin");
    w.put_part("metadata", Bytes::from_static(b"offsets 2"))
        .expect("put");
    w.reference_part("state", &cp1, "state").expect("reference");
    stream_part(&mut w, "config", b"batch=2s", PartOptions::uncompressed());
    let e2 = w.commit().expect("commit");
    let mut w = store.begin().expect("begin");
    w.put_part("metadata", Bytes::from_static(b"offsets 2"))
        .expect("put");
    stream_part(&mut w, "state", &state_bytes(2), PartOptions::zstd());
    let e3 = w.commit().expect("commit");
    History { e1, e2, e3 }
}

/// One checkpoint with one streamed part.
fn commit_one(store: &CheckpointStore, text: &'static str) -> Epoch {
    let mut w = store.begin().expect("begin");
    stream_part(
        &mut w,
        "metadata",
        text.as_bytes(),
        PartOptions::uncompressed(),
    );
    w.commit().expect("commit")
}

/// A writer that stored one streamed part of `data` and is then given up.
fn abandoned_attempt(w: &mut CheckpointWriter, data: &[u8]) {
    stream_part(w, "state", data, PartOptions::uncompressed());
}

/// A fresh local checkpoint directory and a driver's store on it.
struct Local {
    dir: tempfile::TempDir,
    url: String,
    store: CheckpointStore,
}

fn local() -> Local {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    let store = CheckpointStore::open(&url).expect("open");
    Local { dir, url, store }
}

impl Local {
    fn path(&self) -> &str {
        arg(self.dir.path())
    }

    /// The file of part `name` of checkpoint `epoch`.
    fn part_file(&self, epoch: Epoch, name: &str) -> PathBuf {
        let cp = self.store.checkpoint(epoch).expect("read").expect("exists");
        let part = cp.as_async().part(name).expect("part");
        self.dir.path().join(&part.path)
    }

    fn manifest_file(&self, epoch: Epoch) -> PathBuf {
        self.dir
            .path()
            .join("manifests")
            .join(format!("{:020}.manifest", epoch.0))
    }
}

/// Every file under `dir`, recursively, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.insert(p, bytes);
            }
        }
    }
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).expect("write");
}

/// Every object under a (remote) checkpoint location with its bytes.
fn raw_snapshot(url: &str) -> BTreeMap<String, Vec<u8>> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = tidemark_checkpoint::CheckpointStore::open(url)
            .await
            .expect("open");
        let metas: Vec<_> = store
            .object_store()
            .list(Some(store.root()))
            .try_collect()
            .await
            .expect("list");
        let mut out = BTreeMap::new();
        for m in metas {
            let got = store.object_store().get(&m.location).await.expect("get");
            let bytes = got.bytes().await.expect("bytes");
            out.insert(m.location.to_string(), bytes.to_vec());
        }
        out
    })
}

/// Overwrites part `name` of checkpoint `epoch` with bytes of the same size, one flipped.
fn corrupt_remote_part(url: &str, store: &CheckpointStore, epoch: Epoch, name: &str) {
    let cp = store.checkpoint(epoch).expect("read").expect("exists");
    let part = cp.as_async().part(name).expect("part").clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = tidemark_checkpoint::CheckpointStore::open(url)
            .await
            .expect("open");
        let path = store.part_path(&part).expect("path");
        let got = store.object_store().get(&path).await.expect("get");
        let mut bytes = got.bytes().await.expect("bytes").to_vec();
        bytes[0] ^= 0x20;
        store
            .object_store()
            .put(&path, PutPayload::from(bytes))
            .await
            .expect("put");
    });
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

// ------------------------------------------------------------------- local

#[test]
fn healthy_store_lists_shows_verifies_cats_and_diffs_without_changing_anything() {
    let l = local();
    let h = write_history(&l.store);
    let d = l.path();
    let before = tree(l.dir.path());

    let run = dump(&[d, "list"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("3 entries: 3 complete, 0 corrupt, 0 incomplete, 0 fenced"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("a restarted driver resumes from epoch {}", h.e3))
    );
    assert_eq!(
        run.stdout.matches(" complete ").count(),
        3,
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        run.stderr
    );
    assert!(
        dump(&[d])
            .expect_code(0)
            .stdout
            .contains("resumes from epoch"),
        "list is the default"
    );

    let v = dump(&[&l.url, "list", "--json"]).expect_code(0).json();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["latest"], h.e3.0);
    let cps = v["checkpoints"].as_array().expect("checkpoints");
    let epochs: Vec<u64> = cps
        .iter()
        .map(|c| c["epoch"].as_u64().expect("epoch"))
        .collect();
    assert_eq!(epochs, vec![h.e1.0, h.e2.0, h.e3.0]);
    assert!(
        cps.iter()
            .all(|c| c["state"] == "complete" && c["generation"] == 0)
    );
    assert_eq!(cps[1]["parts"], 3);
    assert!(cps[0]["created"].as_str().expect("time").ends_with('Z'));

    let run = dump(&[d, "show", "latest"]);
    run.expect_code(0);
    let format = format!("format      v{CURRENT_FORMAT}");
    for fact in [
        "checkpoint epoch 3",
        "state       complete",
        &format,
        "zstd",
        "metadata",
        // `metadata` went through put_part: it travels inside the manifest.
        "inline in manifests/",
    ] {
        assert!(run.stdout.contains(fact), "want {fact:?} in {}", run.stdout);
    }
    let v = dump(&[d, "show", "2", "--json"]).expect_code(0).json();
    assert_eq!(v["state"], "complete");
    assert_eq!(v["format_version"], CURRENT_FORMAT);
    let parts = v["manifest"]["parts"].as_array().expect("parts");
    let state = parts.iter().find(|p| p["name"] == "state").expect("state");
    assert_eq!(state["origin_epoch"], h.e1.0, "shared from e1");
    assert_eq!(state["compression"], "zstd");
    assert_eq!(state["size"], state_bytes(1).len());

    let run = dump(&[d, "verify"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("read 6 part object(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("verdict: healthy; a restarted driver resumes from epoch 3"),
        "{}",
        run.stdout
    );
    let v = dump(&[d, "verify", "--json"]).expect_code(0).json();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["part_objects_read"], 6, "the shared state is read once");
    let e2_state = &v["checkpoints"][1]["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .find(|p| p["name"] == "state")
        .expect("state")
        .clone();
    assert_eq!(e2_state["already_read_for_an_earlier_checkpoint"], true);
    dump(&[d, "verify", "1"]).expect_code(0);

    let run = dump(&[d, "cat", "1", "state"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout.as_bytes(),
        state_bytes(1).as_slice(),
        "decompressed"
    );
    assert_eq!(
        dump(&[d, "cat", "latest", "metadata"])
            .expect_code(0)
            .stdout,
        "offsets 2"
    );
    let v = dump(&[d, "cat", "2", "config", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(v["text"], "batch=2s");
    assert_eq!(v["hex"], "62617463683d3273");

    let run = dump(&[d, "diff", "1", "2"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("1 added, 0 removed, 1 changed, 0 unchanged, 1 shared"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("same object, written at epoch 1"),
        "{}",
        run.stdout
    );
    let v = dump(&[d, "diff", "2", "latest", "--json"])
        .expect_code(0)
        .json();
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .expect(k)
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_string())
            .collect()
    };
    assert_eq!(names("unchanged"), vec!["metadata"]);
    assert_eq!(names("changed"), vec!["state"]);
    assert_eq!(names("removed"), vec!["config"]);
    assert!(names("added").is_empty() && names("shared").is_empty());

    assert_eq!(
        tree(l.dir.path()),
        before,
        "a read-only command changed a file"
    );
    // No command claimed a generation: the driver still commits.
    assert!(commit_one(&l.store, "after the tools") > h.e3);
}

#[test]
fn incomplete_and_fenced_attempts_are_listed_and_gc_plans_then_deletes_them() {
    let l = local();
    let d = l.path();
    let e1 = commit_one(&l.store, "one");
    let mut zombie = l.store.begin().expect("begin");
    abandoned_attempt(&mut zombie, b"zombie state");
    let restarted = CheckpointStore::open(&l.url).expect("open");
    let e3 = commit_one(&restarted, "three");
    assert!(matches!(
        zombie.commit(),
        Err(CheckpointError::Fenced { .. })
    ));
    let mut crashed = restarted.begin().expect("begin");
    abandoned_attempt(&mut crashed, b"half written");
    let crashed_epoch = crashed.epoch();
    drop(crashed);
    let before = tree(l.dir.path());

    let run = dump(&[d, "list"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("4 entries: 2 complete, 0 corrupt, 1 incomplete, 1 fenced"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("epoch 2 was taken by writer"),
        "{}",
        run.stdout
    );
    let v = dump(&[d, "list", "--json"]).expect_code(0).json();
    let states: Vec<(u64, String)> = v["checkpoints"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            (
                c["epoch"].as_u64().expect("epoch"),
                c["state"].as_str().expect("state").to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (e1.0, "complete".to_string()),
            (2, "fenced".to_string()),
            (e3.0, "complete".to_string()),
            (crashed_epoch.0, "incomplete".to_string()),
        ]
    );
    assert_eq!(v["latest"], e3.0);

    expect_one_line_error(
        &dump(&[d, "show", "2"]),
        2,
        "epoch 2 has no committed checkpoint: fenced",
    );
    expect_one_line_error(
        &dump(&[d, "show", &crashed_epoch.to_string()]),
        2,
        "incomplete",
    );
    let run = dump(&[d, "verify"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("2 uncommitted writer attempt(s) not verified"),
        "{}",
        run.stdout
    );

    let run = dump(&[d, "gc", "--dry-run"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("retention would delete 1 record(s) (checkpoints: none; claims and other records: 0) and 0 part object(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("orphan collection would delete 0 part object(s)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("spare (young)").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing was deleted (--dry-run)"));

    let v = dump(&[
        d,
        "gc",
        "--dry-run",
        "--keep",
        "1",
        "--grace",
        "0s",
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["retention"]["kept"], serde_json::json!([e3.0]));
    assert_eq!(
        v["retention"]["delete_records"],
        serde_json::json!([0, 1, 2])
    );
    assert_eq!(
        v["retention"]["delete_checkpoints"],
        serde_json::json!([e1.0])
    );
    assert_eq!(
        v["retention"]["delete_other_records"],
        serde_json::json!([0, 2])
    );
    assert_eq!(
        v["retention"]["delete_parts"]
            .as_array()
            .expect("parts")
            .len(),
        1
    );
    let orphans: Vec<u64> = v["orphans"]["delete"]
        .as_array()
        .expect("orphans")
        .iter()
        .map(|o| o["epoch"].as_u64().expect("epoch"))
        .collect();
    assert_eq!(orphans, vec![2, crashed_epoch.0]);
    assert_eq!(v["orphans"]["delete_bytes"], 12 + 12);
    assert_eq!(tree(l.dir.path()), before, "--dry-run deleted something");

    let v = dump(&[d, "gc", "--keep", "1", "--grace", "0s", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(v["dry_run"], false);
    assert_eq!(
        v["retention"]["deleted_records"],
        serde_json::json!([0, 1, 2])
    );
    assert_eq!(v["retention"]["deleted_parts"], 1);
    assert_eq!(
        v["orphans"]["deleted"].as_array().expect("deleted").len(),
        2
    );
    assert_ne!(tree(l.dir.path()), before);
    let v = dump(&[d, "list", "--json"]).expect_code(0).json();
    assert_eq!(v["checkpoints"].as_array().expect("list").len(), 1);
    assert_eq!(v["checkpoints"][0]["epoch"], e3.0);
    dump(&[d, "verify"]).expect_code(0);
    assert_eq!(
        dump(&[d, "cat", "latest", "metadata"])
            .expect_code(0)
            .stdout,
        "three"
    );
    // gc claims nothing either: the restarted driver goes on.
    assert!(commit_one(&restarted, "after gc") > e3);
}

#[test]
fn a_damaged_part_is_found_by_verify_and_cat_and_a_short_one_by_list() {
    let l = local();
    let h = write_history(&l.store);
    let d = l.path();
    // Same size, one flipped byte in the compressed state of e3: only reading can tell.
    let state = l.part_file(h.e3, "state");
    let len = std::fs::metadata(&state).expect("stat").len() as usize;
    flip_byte(&state, len / 2);
    let before = tree(l.dir.path());

    let run = dump(&[d, "list"]);
    run.expect_code(0);
    assert!(run.stdout.contains("3 complete"), "{}", run.stdout);

    let run = dump(&[d, "verify"]);
    run.expect_code(1);
    assert!(run.stdout.contains("DAMAGED"), "{}", run.stdout);
    assert!(run.stdout.contains("part \"state\""), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("verdict: DAMAGE FOUND in 1 checkpoint(s)"),
        "{}",
        run.stdout
    );
    let v = dump(&[d, "verify", "--json"]).expect_code(1).json();
    assert_eq!(v["healthy"], false);
    let cps = v["checkpoints"].as_array().expect("checkpoints");
    assert_eq!(cps.iter().filter(|c| c["ok"] == false).count(), 1);
    assert_eq!(cps[2]["epoch"], h.e3.0);
    assert_eq!(cps[2]["ok"], false);
    dump(&[d, "verify", "1"]).expect_code(0);

    let run = dump(&[d, "cat", "3", "state"]);
    run.expect_code(1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("checkpoint-dump: damage: part \"state\""),
        "{}",
        run.stderr
    );
    let run = dump(&[d, "cat", "3", "state", "--json"]);
    run.expect_code(1);
    assert!(
        run.stdout.is_empty(),
        "nothing unverified in JSON: {}",
        run.stdout
    );
    assert_eq!(
        dump(&[d, "cat", "3", "metadata"]).expect_code(0).stdout,
        "offsets 2"
    );
    assert_eq!(tree(l.dir.path()), before);

    // A part cut short is damage that listing sees.
    let config = l.part_file(h.e2, "config");
    std::fs::write(&config, b"bat").expect("truncate");
    let run = dump(&[d, "list"]);
    run.expect_code(1);
    assert!(run.stdout.contains("1 corrupt"), "{}", run.stdout);
    let v = dump(&[d, "list", "--json"]).expect_code(1).json();
    assert_eq!(v["checkpoints"][1]["state"], "corrupt");
    assert!(
        v["checkpoints"][1]["detail"]
            .as_str()
            .expect("detail")
            .contains("is 3 bytes, manifest says 8"),
        "{v}"
    );
    let run = dump(&[d, "show", "2"]);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("state       corrupt (part \"config\" is 3 bytes"),
        "{}",
        run.stdout
    );
    let run = dump(&[d, "cat", "2", "config"]);
    run.expect_code(1);
    assert!(run.stderr.contains("stored size 3 "), "{}", run.stderr);
}

#[test]
fn a_damaged_manifest_is_damage_and_latest_falls_back() {
    let l = local();
    let h = write_history(&l.store);
    let d = l.path();
    flip_byte(&l.manifest_file(h.e3), 40);
    let before = tree(l.dir.path());

    let run = dump(&[d, "list"]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("latest() passes over epoch 3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("a restarted driver resumes from epoch 2"),
        "{}",
        run.stdout
    );
    let v = dump(&[d, "list", "--json"]).expect_code(1).json();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["latest"], h.e2.0);
    assert_eq!(v["skipped_by_latest"][0]["epoch"], h.e3.0);
    assert_eq!(v["checkpoints"][2]["state"], "corrupt");

    let run = dump(&[d, "show", "3"]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("DAMAGED: corrupt manifest"),
        "{}",
        run.stdout
    );
    let v = dump(&[d, "show", "3", "--json"]).expect_code(1).json();
    assert_eq!(v["state"], "corrupt");
    assert!(
        v["detail"]
            .as_str()
            .expect("detail")
            .starts_with("corrupt manifest at manifests/"),
        "{v}"
    );
    let run = dump(&[d, "show", "latest"]);
    run.expect_code(1);
    assert!(run.stdout.contains("checkpoint epoch 2"), "{}", run.stdout);
    assert!(
        run.stdout.contains("passed over newer epoch 3"),
        "{}",
        run.stdout
    );

    let v = dump(&[d, "verify", "--json"]).expect_code(1).json();
    let bad: Vec<_> = v["checkpoints"]
        .as_array()
        .expect("cps")
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["epoch"], h.e3.0);
    assert!(
        bad[0]["problems"][0]
            .as_str()
            .expect("problem")
            .contains("manifest")
    );
    dump(&[d, "diff", "2", "3"]).expect_code(1);

    let v = dump(&[d, "gc", "--dry-run", "--grace", "0s", "--json"])
        .expect_code(0)
        .json();
    assert!(
        v["orphans"]["delete"]
            .as_array()
            .expect("delete")
            .is_empty(),
        "{v}"
    );
    // Every part object of the damaged epoch is spared (it may be the manifest's).
    let spared = v["orphans"]["spared_damaged"].as_array().expect("spared");
    let epoch_prefix = format!("{:020}-", h.e3.0);
    let objects = tree(&l.dir.path().join("parts"))
        .keys()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&epoch_prefix))
        })
        .count();
    assert!(objects >= 1);
    assert_eq!(spared.len(), objects, "{v}");
    assert!(spared.iter().all(|o| o["epoch"] == h.e3.0));
    assert_eq!(tree(l.dir.path()), before);
}

#[test]
fn bad_locations_and_arguments_fail_in_one_line_without_creating_anything() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for cmd in [
        &["list"][..],
        &["verify"],
        &["gc", "--dry-run"],
        &["show", "latest"],
    ] {
        let args: Vec<&str> = std::iter::once(arg(&empty))
            .chain(cmd.iter().copied())
            .collect();
        expect_one_line_error(&dump(&args), 2, "no checkpoints: the directory is empty");
    }
    let foreign = scratch.path().join("foreign");
    std::fs::create_dir_all(foreign.join("data")).expect("mkdir");
    std::fs::write(foreign.join("notes.txt"), "hello").expect("write");
    expect_one_line_error(
        &dump(&[arg(&foreign), "list"]),
        2,
        "not a checkpoint directory",
    );

    let missing = scratch.path().join("missing");
    expect_one_line_error(
        &dump(&[arg(&missing), "list"]),
        2,
        "cannot open checkpoint directory",
    );
    let url = format!("file://{}", missing.display());
    expect_one_line_error(
        &dump(&[&url, "verify"]),
        2,
        "cannot open checkpoint directory",
    );
    assert!(!missing.exists(), "a read-only tool created the directory");
    let file = foreign.join("notes.txt");
    let url = format!("file://{}", file.display());
    expect_one_line_error(
        &dump(&[&url, "list"]),
        2,
        "is a file, not a checkpoint directory",
    );
    expect_one_line_error(&dump(&["ftp://host/x", "list"]), 2, "unsupported scheme");
    expect_one_line_error(&dump(&["memory://nothing", "list"]), 2, "no checkpoints");

    let port = closed_port();
    let started = Instant::now();
    let url = format!(
        "s3://bucket/p?endpoint=http://127.0.0.1:{port}&region=us-east-1&access_key_id=AKIDDEAD&secret_access_key=hunter2-secret"
    );
    let run = dump(&[&url, "list"]);
    expect_one_line_error(&run, 2, "cannot reach S3 endpoint");
    assert!(
        run.stderr.contains("secret_access_key=***"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("hunter2") && !run.stderr.contains("AKIDDEAD"),
        "{}",
        run.stderr
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "hunter2-env"),
    ];
    let run = dump_env(
        &[
            "s3://bucket/p",
            "--endpoint",
            &endpoint,
            "--region",
            "r",
            "verify",
        ],
        &env,
    );
    expect_one_line_error(&run, 2, "cannot reach S3 endpoint");
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    let hdfs = format!("hdfs://127.0.0.1:{port}/x");
    expect_one_line_error(&dump(&[&hdfs, "list"]), 2, "cannot reach HDFS NameNode");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "dead endpoints took {:?}",
        started.elapsed()
    );

    let l = local();
    write_history(&l.store);
    let d = l.path();
    expect_one_line_error(
        &dump(&[d, "show", "99"]),
        2,
        "no checkpoint at epoch 99 (committed epochs: 1, 2, 3)",
    );
    expect_one_line_error(
        &dump(&[d, "cat", "1", "nope"]),
        2,
        "has no part named \"nope\" (its parts: metadata, state)",
    );
    expect_one_line_error(
        &dump(&[d, "list", "--region", "x"]),
        2,
        "apply to s3:// locations",
    );
    dump(&[d, "gc", "--keep", "0"]).expect_code(2);
    dump(&[d, "gc", "--grace", "soon"]).expect_code(2);
    dump(&[d, "show", "newest"]).expect_code(2);
    dump(&[]).expect_code(2);
    let help = dump(&["--help"]);
    help.expect_code(0);
    assert!(
        help.stdout
            .contains("Exit codes: 0 healthy, 1 damage found, 2 usage or I/O error")
    );
}

// ------------------------------------------------------------------ memory

#[test]
fn memory_stores_work_in_process_through_the_library() {
    let url = format!("memory://checkpoint-dump-{}", std::process::id());
    let store = CheckpointStore::open(&url).expect("open");
    let h = write_history(&store);
    let run = |args: &[&str]| {
        let cli = checkpoint_dump::Cli::try_parse_from(
            std::iter::once("checkpoint-dump")
                .chain(std::iter::once(url.as_str()))
                .chain(args.iter().copied()),
        )
        .expect("arguments");
        let mut out = Vec::new();
        let health = checkpoint_dump::run(&cli, &mut out).expect("run");
        (health, String::from_utf8(out).expect("utf8"))
    };
    let (health, out) = run(&["verify", "--json"]);
    assert_eq!(health, Health::Healthy);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["part_objects_read"], 6);
    let (health, out) = run(&["cat", "2", "state"]);
    assert_eq!(health, Health::Healthy);
    assert_eq!(out.as_bytes(), state_bytes(1).as_slice());
    let (_, out) = run(&["gc", "--keep", "1", "--grace", "0s"]);
    assert!(
        out.contains(&format!("retention kept epochs {}", h.e3)),
        "{out}"
    );
    let (health, out) = run(&["list", "--json"]);
    assert_eq!(health, Health::Healthy);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["checkpoints"].as_array().expect("list").len(), 1);
}

// -------------------------------------------------------------- S3 and HDFS

#[test]
fn s3_store_on_seaweedfs_is_listed_verified_and_collected_with_secrets_masked() {
    use tidemark_test_servers::{
        S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY, seaweedfs, unique_name,
    };
    let server = seaweedfs();
    let prefix = unique_name("dump");
    let url = server.url(&prefix);
    let store = CheckpointStore::open(&url).expect("open");
    let h = write_history(&store);
    let mut crashed = store.begin().expect("begin");
    abandoned_attempt(&mut crashed, b"half");
    drop(crashed);
    let before = raw_snapshot(&url);

    let run = dump(&[&url, "list"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("4 entries: 3 complete, 0 corrupt, 1 incomplete, 0 fenced"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("secret_access_key=***"),
        "{}",
        run.stdout
    );
    let v = dump(&[&url, "verify", "--json"]).expect_code(0).json();
    assert_eq!(v["part_objects_read"], 6);
    let run = dump(&[&url, "cat", "2", "state"]);
    run.expect_code(0);
    assert_eq!(run.stdout.as_bytes(), state_bytes(1).as_slice());
    let v = dump(&[&url, "diff", "1", "2", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(v["shared"][0]["name"], "state");
    let v = dump(&[
        &url,
        "gc",
        "--dry-run",
        "--keep",
        "2",
        "--grace",
        "0s",
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(
        v["retention"]["delete_checkpoints"],
        serde_json::json!([h.e1.0])
    );
    assert_eq!(v["orphans"]["delete"].as_array().expect("orphans").len(), 1);

    // Credentials from the environment, endpoint and region from flags.
    let plain = format!("s3://{S3_BUCKET}/{prefix}");
    let env = [
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
    ];
    let run = dump_env(
        &[
            &plain,
            "--endpoint",
            &server.endpoint(),
            "--region",
            S3_REGION,
            "show",
            "latest",
        ],
        &env,
    );
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("checkpoint epoch {}", h.e3)),
        "{}",
        run.stdout
    );
    assert_eq!(
        raw_snapshot(&url),
        before,
        "a read-only command changed an object"
    );

    corrupt_remote_part(&url, &store, h.e2, "config");
    let run = dump(&[&url, "verify"]);
    run.expect_code(1);
    assert!(run.stdout.contains("part \"config\""), "{}", run.stdout);
    let v = dump(&[&url, "gc", "--keep", "2", "--grace", "0s", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(v["retention"]["deleted_records"], serde_json::json!([0, 1]));
    assert_eq!(
        v["orphans"]["deleted"].as_array().expect("deleted").len(),
        1
    );
    let v = dump(&[&url, "list", "--json"]).expect_code(0).json();
    assert_eq!(v["checkpoints"].as_array().expect("list").len(), 2);
    for run in [dump(&[&url, "list"]), dump(&[&url, "verify"])] {
        assert!(!run.stdout.contains(S3_SECRET_KEY) && !run.stderr.contains(S3_SECRET_KEY));
    }
}

#[test]
fn hdfs_store_on_minidfs_is_listed_shown_verified_and_planned() {
    use tidemark_test_servers::{minidfs, unique_name};
    let url = minidfs().url(&format!("/tidemark/{}", unique_name("dump")));
    let store = CheckpointStore::open(&url).expect("open");
    let h = write_history(&store);
    let before = raw_snapshot(&url);

    let v = dump(&[&url, "list", "--json"]).expect_code(0).json();
    assert_eq!(v["checkpoints"].as_array().expect("list").len(), 3);
    assert_eq!(v["latest"], h.e3.0);
    let v = dump(&[&url, "show", "2", "--json"]).expect_code(0).json();
    assert_eq!(v["manifest"]["parts"].as_array().expect("parts").len(), 3);
    dump(&[&url, "verify"]).expect_code(0);
    assert_eq!(
        dump(&[&url, "cat", "3", "metadata"]).expect_code(0).stdout,
        "offsets 2"
    );
    let run = dump(&[&url, "diff", "2", "3"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("0 added, 1 removed, 1 changed, 1 unchanged, 0 shared"),
        "{}",
        run.stdout
    );
    let v = dump(&[&url, "gc", "--dry-run", "--keep", "1", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(v["retention"]["kept"], serde_json::json!([h.e3.0]));
    assert_eq!(raw_snapshot(&url), before);
}
