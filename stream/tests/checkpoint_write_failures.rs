//! A checkpoint store that really fails: the local store's directory is
//! replaced by a plain file after the driver opened it (so even root cannot
//! write there). Writes are retried with backoff; the last failure is returned
//! and stops the writer (never a stream running on without checkpoints).

mod checkpoint_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use checkpoint_support::*;
use tidemark_stream::StreamError;

/// Moves the store directory aside and puts a file where it was.
fn break_store(root: &Path) -> PathBuf {
    let aside = root.with_extension("aside");
    std::fs::rename(root, &aside).expect("move the store aside");
    std::fs::write(root, b"not a directory").expect("put a file in its place");
    aside
}

fn repair_store(root: &Path, aside: &Path) {
    std::fs::remove_file(root).expect("remove the file");
    std::fs::rename(aside, root).expect("move the store back");
}

#[test]
fn failed_writes_are_retried_and_the_last_failure_stops_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ckpt");
    let url = local_url(&root);
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1)).expect("checkpoint");
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = retries.clone();
    driver.checkpointer.on_retry(move |attempt, error| {
        seen.lock()
            .expect("retries")
            .push((attempt, error.to_string()));
    });
    let aside = break_store(&root);

    driver.checkpointer.batch_allocated(t(2)).expect("allocate");
    count(&mut driver.state, t(2));
    let err = driver
        .checkpointer
        .mark_completed(t(2), &offsets_after(t(2)), &[("counts", &driver.state)])
        .expect_err("the store cannot be written");
    let message = err.to_string();
    match err {
        StreamError::CheckpointWrite {
            batch,
            attempts,
            last,
        } => {
            assert_eq!((batch, attempts), (t(2), 3));
            // The real cause travels with it (here: a part cannot be created).
            assert!(
                matches!(
                    *last,
                    StreamError::Checkpoint { .. } | StreamError::Io { .. }
                ),
                "{last:?}"
            );
            assert!(format!("{last:?}").contains("NotADirectory"), "{last:?}");
        }
        other => panic!("expected CheckpointWrite, got {other:?}"),
    }
    assert!(message.contains("stop the stream"), "{message}");
    let retried: Vec<u32> = retries
        .lock()
        .expect("retries")
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(retried, vec![1, 2], "each failure but the last is retried");

    // The writer takes nothing more, even once the store works again.
    repair_store(&root, &aside);
    let refused = driver.checkpointer.batch_allocated(t(3));
    assert!(
        matches!(refused, Err(StreamError::CheckpointerFailed { failed_at }) if failed_at == t(2)),
        "{refused:?}"
    );
    let refused = driver.checkpointer.mark_completed(
        t(2),
        &offsets_after(t(2)),
        &[("counts", &driver.state)],
    );
    assert!(
        matches!(refused, Err(StreamError::CheckpointerFailed { .. })),
        "{refused:?}"
    );

    // A restarted driver resumes from the last checkpoint that was written.
    let resumed = resume(&url, 2_000);
    assert_eq!(resumed.last_completed, t(1));
    assert_eq!(resumed.rerun, vec![t(2)]);
}

#[test]
fn a_write_that_fails_once_succeeds_on_its_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ckpt");
    let url = local_url(&root);
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1)).expect("checkpoint");
    let aside = break_store(&root);
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = retries.clone();
    let (hook_root, hook_aside) = (root.clone(), aside.clone());
    driver.checkpointer.on_retry(move |attempt, _| {
        seen.lock().expect("retries").push(attempt);
        // The operator fixes the store during the backoff.
        if attempt == 1 {
            repair_store(&hook_root, &hook_aside);
        }
    });

    let commit = driver.run(t(2)).expect("a checkpoint");
    assert_eq!((commit.batch, commit.attempts), (t(2), 2));
    assert_eq!(*retries.lock().expect("retries"), vec![1]);
    let resumed = resume(&url, 2_000);
    assert_eq!(resumed.epoch, commit.epoch);
    assert_eq!(resumed.last_completed, t(2));
    assert_eq!(resumed.states.get("counts"), Some(&driver.state));
}
