//! Local (`file://`) commits are durable before `commit()` returns: the test runs itself as a
//! child process under `strace` and reads, from the system calls the child made, that every
//! part file, every manifest and every directory entry pointing at them was fsynced before the
//! call that wrote them returned.
//!
//! Needs `strace` (`apt-get install -y strace`); without it the test fails.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use bytes::Bytes;
use tidemark_checkpoint::{CheckpointOptions, CheckpointStore};

/// Set in the child: the checkpoint directory to write.
const CHILD_ENV: &str = "TIDEMARK_FSYNC_CHILD_ROOT";
/// This test's name, so the child runs only it.
const TEST_NAME: &str = "local_commits_fsync_parts_manifests_and_directories";
/// Prefix of the marker paths the child looks up after each call returns.
const MARK: &str = "tidemark-mark-";

#[test]
fn local_commits_fsync_parts_manifests_and_directories() {
    match std::env::var(CHILD_ENV) {
        Ok(root) => child(Path::new(&root)),
        Err(_) => parent(),
    }
}

/// Records in the trace that the previous call returned (a failed `stat` of a marker path).
fn mark(root: &Path, what: &str) {
    let _ = std::fs::metadata(root.with_file_name(format!("{MARK}{what}")));
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
    let log = base.join("strace.log");
    let exe = std::env::current_exe().expect("test executable");
    let output = Command::new("strace")
        .args(["-f", "-y", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat,stat,newfstatat,statx",
        ])
        .arg(&exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run strace (apt-get install -y strace): {e}"));
    assert!(
        output.status.success(),
        "the traced child failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = Trace::read(&log);
    let opened = trace.marker("opened");
    let put = trace.marker("put-returned");
    let (commit, epoch) = trace.numbered_marker("commit-returned-");
    let (inline_commit, inline_epoch) = trace.numbered_marker("inline-commit-returned-");
    assert!(opened < put && put < commit && commit < inline_commit);

    // open() created the checkpoint directory durably: itself and its entry in the parent.
    trace.fsynced(&root, 0, opened);
    trace.fsynced(&base, 0, opened);

    // The part object: its staging file synced before the rename that publishes it, and the
    // directory holding it (created for it, up to the root) synced before put_part returned.
    let part = trace
        .published("rename", |dst| {
            dst.contains("/parts/") && dst.ends_with("/state")
        })
        .expect("the part was renamed into place");
    assert!(part.at < put, "part published after put_part returned");
    let part_dir = part.dst.parent().expect("part directory");
    assert!(trace.fsynced(&part.src, 0, part.at) < part.at);
    trace.fsynced(part_dir, part.at, put);
    for dir in part_dir.ancestors().take_while(|d| d.starts_with(&root)) {
        trace.fsynced(dir, opened, put);
    }

    // The manifest: staged, synced, hard-linked into place (put-if-absent), its directory
    // synced, all before commit() returned.
    trace.manifest_durable(&root, epoch, put, commit);

    // An inline-only checkpoint is the manifest alone: nothing published under parts/.
    let parts_after = trace
        .lines_between(commit, inline_commit)
        .filter(|l| l.contains("rename") && l.contains("/parts/"))
        .count();
    assert_eq!(parts_after, 0, "an inline part was written as an object");
    trace.manifest_durable(&root, inline_epoch, commit, inline_commit);
}

/// A publishing call (`rename*` or `link*`) seen in the trace.
struct Published {
    at: usize,
    src: PathBuf,
    dst: PathBuf,
}

struct Trace {
    lines: Vec<String>,
}

impl Trace {
    fn read(log: &Path) -> Trace {
        let text = std::fs::read_to_string(log).expect("strace log");
        Trace {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    fn lines_between(&self, from: usize, to: usize) -> impl Iterator<Item = &String> {
        self.lines[from..to].iter()
    }

    fn marker(&self, what: &str) -> usize {
        let needle = format!("{MARK}{what}\"");
        self.lines
            .iter()
            .position(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no marker {what} in the trace"))
    }

    /// A marker ending in a number, and the number.
    fn numbered_marker(&self, prefix: &str) -> (usize, u64) {
        let needle = format!("/{MARK}{prefix}");
        self.lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| {
                let rest = &l[l.find(&needle)? + needle.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                Some((i, digits.parse().ok()?))
            })
            .unwrap_or_else(|| panic!("no marker {prefix} in the trace"))
    }

    /// The line index of an fsync of `path` in `[from, to)`; fails the test if there is none.
    fn fsynced(&self, path: &Path, from: usize, to: usize) -> usize {
        let fd = format!("<{}>)", path.display());
        let unfinished = format!("<{}> <unfinished", path.display());
        (from..to)
            .find(|&i| {
                let l = &self.lines[i];
                (l.contains("fsync(") || l.contains("fdatasync("))
                    && (l.contains(&fd) || l.contains(&unfinished))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} was not fsynced between trace lines {from} and {to}",
                    path.display()
                )
            })
    }

    /// The first `call` (rename or link family) whose destination satisfies `dst`.
    fn published(&self, call: &str, dst: impl Fn(&str) -> bool) -> Option<Published> {
        self.lines.iter().enumerate().find_map(|(at, l)| {
            let name = l.split_whitespace().nth(1)?;
            if !name.starts_with(call) {
                return None;
            }
            let quoted: Vec<&str> = l.split('"').skip(1).step_by(2).collect();
            let [src, to, ..] = quoted[..] else {
                return None;
            };
            dst(to).then(|| Published {
                at,
                src: PathBuf::from(src),
                dst: PathBuf::from(to),
            })
        })
    }

    /// The manifest at `epoch` was staged and synced, linked into place and its directory
    /// synced, within `[from, to)`.
    fn manifest_durable(&self, root: &Path, epoch: u64, from: usize, to: usize) {
        let manifest = root.join("manifests").join(format!("{epoch:020}.manifest"));
        let wanted = manifest.display().to_string();
        let link = self
            .published("link", |dst| dst == wanted)
            .unwrap_or_else(|| panic!("manifest {wanted} was not linked into place"));
        assert!(
            from <= link.at && link.at < to,
            "manifest {wanted} published outside its commit"
        );
        assert!(
            link.src
                .to_str()
                .is_some_and(|s| s.starts_with(&format!("{wanted}#"))),
            "{}",
            link.src.display()
        );
        assert!(self.fsynced(&link.src, from, link.at) < link.at);
        self.fsynced(&root.join("manifests"), link.at, to);
    }
}
