//! A driver process SIGKILLed between writing its parts and creating its manifest leaves the
//! previous checkpoint as the latest, and its parts as an incomplete attempt that orphan
//! collection removes. The test re-runs itself as a child process (local `file://` store), lets
//! the child report that its parts are stored, and kills it with SIGKILL.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use bytes::Bytes;
use tidemark_checkpoint::{CheckpointState, CheckpointStore};
use tidemark_test_servers::child::rerun_self;

/// Set in the child: the checkpoint URL to write.
const CHILD_ENV: &str = "TIDEMARK_CRASH_CHILD_URL";
/// This test's name, so the child runs only it.
const TEST_NAME: &str = "driver_killed_between_parts_and_manifest_leaves_previous_latest";
/// What the child prints once its parts are stored and its manifest is not (libtest may put
/// its own "test ... " prefix on the same line).
const PARTS_STORED: &str = "PARTS-STORED";

#[test]
fn driver_killed_between_parts_and_manifest_leaves_previous_latest() {
    match std::env::var(CHILD_ENV) {
        Ok(url) => child(&url),
        Err(_) => parent(),
    }
}

/// Commits one checkpoint, stores the parts of a second, reports, and waits to be killed.
fn child(url: &str) {
    let store = tidemark_checkpoint::blocking::CheckpointStore::open(url).expect("open");
    let mut w = store.begin().expect("begin");
    w.put_part("metadata", Bytes::from_static(b"before the crash"))
        .expect("put");
    w.commit().expect("commit");
    let mut w = store.begin().expect("begin");
    w.put_part("metadata", Bytes::from_static(b"never committed"))
        .expect("put");
    // Larger than the inline limit: an object of its own, on disk before the manifest.
    w.put_part("state", vec![9u8; 5 * 1024 * 1024])
        .expect("put");
    println!("{PARTS_STORED}");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}/ckpt", dir.path().display());
    let mut child = rerun_self(TEST_NAME)
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let seen = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(PARTS_STORED));
        let _ = tx.send(seen);
    });
    // A child that neither reports nor exits fails the test instead of hanging it.
    let reported = rx.recv_timeout(Duration::from_secs(120)).unwrap_or(false);
    // `kill` sends SIGKILL on Unix: no destructor, no flush, no chance to commit.
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(
        reported,
        "the child exited before storing its parts: {status}"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = CheckpointStore::open(&url).await.expect("open");
        let latest = store.latest().await.expect("latest").expect("a checkpoint");
        assert_eq!(
            latest.read_part("metadata").await.expect("read"),
            Bytes::from_static(b"before the crash")
        );
        latest
            .verify()
            .await
            .expect("the previous checkpoint verifies");
        let list = store.list().await.expect("list");
        let complete = list
            .iter()
            .filter(|i| i.state == CheckpointState::Complete)
            .count();
        assert_eq!(complete, 1, "{list:?}");
        let attempt = list
            .iter()
            .find(|i| i.state == CheckpointState::Incomplete)
            .unwrap_or_else(|| panic!("the killed writer's parts are an attempt: {list:?}"));
        assert!(attempt.epoch > latest.epoch());
        let gc = store.collect_garbage(Duration::ZERO).await.expect("gc");
        assert_eq!(gc.deleted.len(), 1, "its part object is collected: {gc:?}");
        assert!(
            store
                .list()
                .await
                .expect("list")
                .iter()
                .all(|i| i.state == CheckpointState::Complete)
        );
    });
}
