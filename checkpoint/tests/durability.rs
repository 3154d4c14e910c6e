//! Local (`file://`) commits are durable before `commit()` returns: the test runs itself as a
//! child process under `strace` and reads, from the system calls the child made, that every
//! part file, every manifest and every directory entry pointing at them was fsynced before the
//! call that wrote them returned.
//!
//! Needs `strace` (`apt-get install -y strace`); without it the test fails.

use std::{path::Path, time::Duration};

use bytes::Bytes;
use tidemark_checkpoint::{CheckpointOptions, CheckpointStore};
use tidemark_test_servers::strace::{MARK, Trace, trace_self};

/// Set in the child: the checkpoint directory to write.
const CHILD_ENV: &str = "TIDEMARK_FSYNC_CHILD_ROOT";
/// This test's name, so the child runs only it.
const TEST_NAME: &str = "local_commits_fsync_parts_manifests_and_directories";

#[test]
fn local_commits_fsync_parts_manifests_and_directories() {
    match std::env::var(CHILD_ENV) {
        Ok(root) => child(Path::new(&root)),
        Err(_) => parent(),
    }
}

/// Records in the trace that the previous call returned (a marker beside the store's root).
fn mark(root: &Path, what: &str) {
    if let Some(parent) = root.parent() {
        tidemark_test_servers::strace::mark(parent, what);
    }
}

/// Commits a checkpoint with a part object, then one with an inline part only.
fn child(root: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = format!("file://{}", root.display());
        let options = CheckpointOptions::default().with_request_timeout(Duration::from_secs(30));
        let store = CheckpointStore::open_with(&url, options.clone().with_inline_limit(0))
            .await
            .expect("open");
        mark(root, "opened");
        let mut w = store.begin().await.expect("begin");
        w.put_part("state", vec![7u8; 100_000]).await.expect("put");
        mark(root, "put-returned");
        let epoch = w.commit().await.expect("commit");
        mark(root, &format!("commit-returned-{}", epoch.0));

        let store = CheckpointStore::open_with(&url, options)
            .await
            .expect("open");
        let mut w = store.begin().await.expect("begin");
        w.put_part("metadata", Bytes::from_static(b"inline"))
            .await
            .expect("put");
        let epoch = w.commit().await.expect("commit");
        mark(root, &format!("inline-commit-returned-{}", epoch.0));
    });
}

fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().canonicalize().expect("canonical temp dir");
    let root = base.join("ckpt");
    let trace = trace_self(
        TEST_NAME,
        "openat,fsync,fdatasync,rename,renameat,renameat2,link,linkat,stat,newfstatat,statx",
        CHILD_ENV,
        &root,
        &base.join("strace.log"),
    );
    let opened = trace.marker("opened");
    let put = trace.marker("put-returned");
    let (commit, epoch) = numbered_marker(&trace, "commit-returned-");
    let (inline_commit, inline_epoch) = numbered_marker(&trace, "inline-commit-returned-");
    assert!(opened < put && put < commit && commit < inline_commit);

    // open() created the checkpoint directory durably: itself and its entry in the parent.
    trace.fsynced(&root, 0, opened);
    trace.fsynced(&base, 0, opened);

    // The part object: its file synced before the link (or rename) that publishes it, and the
    // directory holding it (created for the first part, up to the root) synced before put_part
    // returned.
    let is_part = |dst: &str| dst.contains("/parts/") && dst.ends_with("-state");
    let part = trace
        .published("link", is_part)
        .into_iter()
        .chain(trace.published("rename", is_part))
        .next()
        .expect("the part was linked or renamed into place");
    assert!(part.at < put, "part published after put_part returned");
    let part_dir = part.dst.parent().expect("part directory");
    trace.source_synced(&part, 0);
    trace.fsynced(part_dir, part.at, put);
    for dir in part_dir.ancestors().take_while(|d| d.starts_with(&root)) {
        trace.fsynced(dir, opened, put);
    }

    // The manifest: staged, synced, hard-linked into place (put-if-absent), its directory
    // synced, all before commit() returned.
    manifest_durable(&trace, &root, epoch, put, commit);

    // An inline-only checkpoint is the manifest alone: nothing published under parts/.
    let parts_after = trace.lines[commit..inline_commit]
        .iter()
        .filter(|l| (l.contains("rename") || l.contains("link")) && l.contains("/parts/"))
        .count();
    assert_eq!(parts_after, 0, "an inline part was written as an object");
    manifest_durable(&trace, &root, inline_epoch, commit, inline_commit);
}

/// A marker ending in a number, and the number.
fn numbered_marker(trace: &Trace, prefix: &str) -> (usize, u64) {
    let needle = format!("/{MARK}{prefix}");
    trace
        .lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let rest = &l[l.find(&needle)? + needle.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            Some((i, digits.parse().ok()?))
        })
        .unwrap_or_else(|| panic!("no marker {prefix} in the trace"))
}

/// The manifest at `epoch` was written and synced (an anonymous file, or a staged one), linked
/// into place and its directory synced, within `[from, to)`.
fn manifest_durable(trace: &Trace, root: &Path, epoch: u64, from: usize, to: usize) {
    let manifest = root.join("manifests").join(format!("{epoch:020}.manifest"));
    let wanted = manifest.display().to_string();
    let link = trace
        .published("link", |dst| dst == wanted)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("manifest {wanted} was not linked into place"));
    assert!(
        from <= link.at && link.at < to,
        "manifest {wanted} published outside its commit"
    );
    trace.source_synced(&link, from);
    trace.fsynced(&root.join("manifests"), link.at, to);
}
