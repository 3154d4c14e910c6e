//! The conformance suite every backend must pass. Each function gets `url(tag)`, which returns a
//! fresh, empty checkpoint location on the backend under test.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use tidemark_checkpoint::{
    CheckpointError, CheckpointOptions, CheckpointState, CheckpointStore, Compression, Epoch,
    PartOptions,
};
use tokio::io::AsyncWriteExt;

mod inline;

pub use inline::*;

pub type UrlFn = fn(&str) -> String;

/// Options for the cases about part objects: every part is an object of its own (no inline
/// parts), 5 MiB upload chunks so a streamed part of a few MiB uses multipart. The inline cases
/// (module `inline`) use the default inline limit.
fn options() -> CheckpointOptions {
    inline_options().with_inline_limit(0)
}

/// Test options with the default inline limit.
fn inline_options() -> CheckpointOptions {
    let mut options = CheckpointOptions::default().with_request_timeout(Duration::from_secs(30));
    options.upload_chunk_size = 5 * 1024 * 1024;
    options.upload_concurrency = 3;
    options.multipart_threshold = Some(6 * 1024 * 1024);
    options
}

async fn open(url: &str) -> CheckpointStore {
    CheckpointStore::open_with(url, options())
        .await
        .expect("open store")
}

/// Deterministic pseudo-random bytes (incompressible).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn commit_simple(store: &CheckpointStore, tag: &str) -> Epoch {
    let mut w = store.begin().await.expect("begin");
    w.put_part("metadata", Bytes::from(format!("meta {tag}")))
        .await
        .expect("put");
    w.commit().await.expect("commit")
}

pub async fn round_trip_with_streamed_multipart_part(url: UrlFn) {
    let store = open(&url("round-trip")).await;
    assert!(
        store.latest().await.unwrap().is_none(),
        "a new store has no checkpoint"
    );
    let state = noise(11 * 1024 * 1024 + 123, 7);
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"offsets: 42"))
        .await
        .unwrap();
    let mut sink = w.part_writer("state").await.unwrap();
    for chunk in state.chunks(1024 * 1024 - 17) {
        sink.write_all(chunk).await.unwrap();
    }
    sink.shutdown().await.unwrap();
    let epoch = w.commit().await.unwrap();

    let cp = store.latest().await.unwrap().expect("a checkpoint");
    assert_eq!(cp.epoch(), epoch);
    assert_eq!(
        cp.part_names(),
        vec!["metadata".to_string(), "state".to_string()]
    );
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from_static(b"offsets: 42")
    );
    assert_eq!(cp.read_part("state").await.unwrap(), Bytes::from(state));
    cp.verify().await.unwrap();
    assert!(cp.skipped().is_empty());
    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0].epoch, list[0].state),
        (epoch, CheckpointState::Complete)
    );
    assert!(matches!(
        cp.read_part("nope").await,
        Err(CheckpointError::NoSuchPart { .. })
    ));
}

pub async fn large_put_part_uses_multipart_and_reads_back(url: UrlFn) {
    let store = open(&url("large-put")).await;
    let data = noise(13 * 1024 * 1024, 3);
    let mut w = store.begin().await.unwrap();
    w.put_part("big", data.clone()).await.unwrap();
    w.commit().await.unwrap();
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.read_part("big").await.unwrap().as_ref(), &data[..]);
    cp.verify().await.unwrap();
}

pub async fn epochs_increase_and_latest_is_newest(url: UrlFn) {
    let location = url("epochs");
    let store = open(&location).await;
    let mut epochs = Vec::new();
    for i in 0..3 {
        epochs.push(commit_simple(&store, &i.to_string()).await);
    }
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    assert_eq!(
        epochs[1],
        Epoch(epochs[0].0 + 1),
        "one instance commits densely"
    );
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), epochs[2]);
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from("meta 2")
    );
    // A restarted driver (new instance) continues after the newest epoch.
    let restarted = open(&location).await;
    let next = commit_simple(&restarted, "after restart").await;
    assert!(next > epochs[2]);
}

pub async fn writer_killed_before_manifest_leaves_previous_latest(url: UrlFn) {
    let store = open(&url("killed")).await;
    let first = commit_simple(&store, "first").await;
    let mut w = store.begin().await.unwrap();
    let doomed = w.epoch();
    w.put_part("metadata", Bytes::from_static(b"never committed"))
        .await
        .unwrap();
    w.put_part("state", noise(1000, 1)).await.unwrap();
    drop(w); // the driver dies between its parts and its manifest

    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), first);
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from("meta first")
    );
    let list = store.list().await.unwrap();
    let states: Vec<_> = list.iter().map(|i| (i.epoch, i.state)).collect();
    assert_eq!(
        states,
        vec![
            (first, CheckpointState::Complete),
            (doomed, CheckpointState::Incomplete)
        ]
    );
    // The next writer takes the free epoch; the dead writer's parts become a fenced attempt.
    let next = commit_simple(&store, "next").await;
    assert_eq!(next, doomed);
    let list = store.list().await.unwrap();
    assert!(
        list.iter()
            .any(|i| i.epoch == doomed && i.state == CheckpointState::Complete)
    );
    assert!(
        list.iter()
            .any(|i| i.epoch == doomed && i.state == CheckpointState::Fenced)
    );
}

pub async fn corrupted_part_is_caught_by_verify(url: UrlFn) {
    let store = open(&url("corrupt-part")).await;
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"fine"))
        .await
        .unwrap();
    w.put_part("state", noise(4096, 9)).await.unwrap();
    w.commit().await.unwrap();
    let cp = store.latest().await.unwrap().unwrap();
    cp.verify().await.unwrap();

    // Same size, one flipped bit: only the checksum can tell.
    let part = cp.part("state").unwrap().clone();
    let path = store.part_path(&part).unwrap();
    let mut bytes = store
        .object_store()
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[1000] ^= 0x10;
    store
        .object_store()
        .put(&path, PutPayload::from(bytes))
        .await
        .unwrap();

    match cp.verify().await {
        Err(CheckpointError::Corrupt { what, .. }) => assert!(what.contains("state"), "{what}"),
        other => panic!("verify must report the corrupt part, got {other:?}"),
    }
    assert!(matches!(
        cp.read_part("state").await,
        Err(CheckpointError::Corrupt { .. })
    ));
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from_static(b"fine")
    );
}

pub async fn corrupted_manifest_makes_latest_fall_back(url: UrlFn) {
    let store = open(&url("corrupt-manifest")).await;
    let older = commit_simple(&store, "older").await;
    let newer = commit_simple(&store, "newer").await;
    let path = store.manifest_path(newer);
    let mut bytes = store
        .object_store()
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    store
        .object_store()
        .put(&path, PutPayload::from(bytes))
        .await
        .unwrap();

    let cp = store.latest().await.unwrap().expect("falls back");
    assert_eq!(cp.epoch(), older);
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from("meta older")
    );
    assert_eq!(cp.skipped().len(), 1);
    assert_eq!(cp.skipped()[0].epoch, newer);
    let list = store.list().await.unwrap();
    let corrupt: Vec<_> = list
        .iter()
        .filter(|i| i.state == CheckpointState::Corrupt)
        .collect();
    assert_eq!(corrupt.len(), 1);
    assert_eq!(corrupt[0].epoch, newer);
    // Its parts belong to that entry, not to a separate incomplete attempt.
    assert!(
        list.iter()
            .all(|i| i.epoch != newer || i.state == CheckpointState::Corrupt),
        "{list:?}"
    );

    // A checkpoint whose part vanished is passed over as well.
    let newest = commit_simple(&store, "newest").await;
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), newest);
    let part = store.part_path(cp.part("metadata").unwrap()).unwrap();
    store.object_store().delete(&part).await.unwrap();
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), older);
    assert_eq!(
        cp.skipped().iter().map(|s| s.epoch).collect::<Vec<_>>(),
        vec![newest, newer]
    );
}

pub async fn concurrent_writers_race_for_one_epoch(url: UrlFn) {
    const WRITERS: usize = 8;
    let store = open(&url("race")).await;
    let base = commit_simple(&store, "base").await;
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let mut w = store.begin().await.unwrap();
        assert_eq!(w.epoch(), base.next_for_test());
        w.put_part("metadata", Bytes::from(format!("writer {i}")))
            .await
            .unwrap();
        writers.push(w);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                (i, w.commit().await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match result {
            Ok(epoch) => winners.push((i, epoch)),
            Err(CheckpointError::Fenced { .. }) => {}
            Err(e) => panic!("a losing writer must be fenced, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one commit: {winners:?}");
    let (winner, epoch) = winners[0];
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), epoch);
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from(format!("writer {winner}"))
    );
    let list = store.list().await.unwrap();
    let at_epoch: Vec<_> = list
        .iter()
        .filter(|i| i.epoch == epoch)
        .map(|i| i.state)
        .collect();
    assert_eq!(
        at_epoch
            .iter()
            .filter(|s| **s == CheckpointState::Complete)
            .count(),
        1
    );
    assert_eq!(
        at_epoch
            .iter()
            .filter(|s| **s == CheckpointState::Fenced)
            .count(),
        WRITERS - 1
    );
}

/// Helper trait so the suite reads naturally.
trait NextEpoch {
    fn next_for_test(self) -> Epoch;
}

impl NextEpoch for Epoch {
    fn next_for_test(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

pub async fn restarted_drivers_race_and_one_commits(url: UrlFn) {
    const DRIVERS: usize = 3;
    let location = url("driver-race");
    let stores: Vec<CheckpointStore> =
        futures::future::join_all((0..DRIVERS).map(|_| open(&location))).await;
    // Every driver's first begin() claims a generation and gets the position after its claim.
    let begun = futures::future::join_all(stores.iter().map(|s| s.begin())).await;
    let mut writers: Vec<_> = begun.into_iter().map(|r| r.expect("first begin")).collect();
    let commits = futures::future::join_all(writers.iter_mut().map(|w| w.commit())).await;
    let ok = commits.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{commits:?}");
    assert!(
        commits
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(CheckpointError::Fenced { .. })))
    );
}

pub async fn zombie_writer_is_fenced_by_new_generation(url: UrlFn) {
    let location = url("zombie");
    let old = open(&location).await;
    let first = commit_simple(&old, "old driver").await;

    // Readers never fence: opening, listing and reading leave the old driver working.
    let reader = open(&location).await;
    assert_eq!(reader.latest().await.unwrap().unwrap().epoch(), first);
    reader.list().await.unwrap();
    let still_fine = commit_simple(&old, "still fine").await;
    assert!(still_fine > first);
    let mut in_flight = old.begin().await.unwrap();
    in_flight
        .put_part("metadata", Bytes::from_static(b"zombie"))
        .await
        .unwrap();

    // A restarted driver starts a new generation.
    let new = open(&location).await;
    let new_epoch = commit_simple(&new, "new driver").await;
    assert!(new.generation().await.unwrap() > old.generation().await.unwrap());

    match in_flight.commit().await {
        Err(CheckpointError::Fenced { .. }) => {}
        other => panic!("the zombie's commit must be fenced, got {other:?}"),
    }
    match old.begin().await {
        Err(CheckpointError::Fenced { .. }) => {}
        other => panic!("the zombie's begin must be fenced, got {other:?}"),
    }
    let cp = new.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), new_epoch);
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from("meta new driver")
    );
    let next = commit_simple(&new, "new again").await;
    assert!(next > new_epoch);
}

pub async fn retention_keeps_n_and_never_deletes_referenced_parts(url: UrlFn) {
    let store = open(&url("retention")).await;
    let base = noise(64 * 1024, 5);
    let mut w = store.begin().await.unwrap();
    w.put_part("base", base.clone()).await.unwrap();
    w.put_part("delta", Bytes::from("delta 0")).await.unwrap();
    w.commit().await.unwrap();
    let mut epochs = Vec::new();
    for i in 1..=5 {
        let previous = store.latest().await.unwrap().unwrap();
        let mut w = store.begin().await.unwrap();
        w.reference_part("base", &previous, "base").unwrap();
        w.put_part("delta", Bytes::from(format!("delta {i}")))
            .await
            .unwrap();
        epochs.push(w.commit().await.unwrap());
    }
    let objects_before = count_parts(&store).await;
    assert_eq!(
        objects_before, 7,
        "one base object shared by six checkpoints, six deltas"
    );

    let report = store.retain_last(2).await.unwrap();
    assert_eq!(report.kept, vec![epochs[4], epochs[3]]);
    let list = store.list().await.unwrap();
    let complete: Vec<_> = list
        .iter()
        .filter(|i| i.state == CheckpointState::Complete)
        .map(|i| i.epoch)
        .collect();
    assert_eq!(complete, vec![epochs[3], epochs[4]]);
    assert_eq!(list.len(), 2, "nothing else left behind: {list:?}");
    assert_eq!(
        count_parts(&store).await,
        3,
        "the shared base and two deltas"
    );

    let cp = store.latest().await.unwrap().unwrap();
    cp.verify().await.unwrap();
    assert_eq!(cp.read_part("base").await.unwrap().as_ref(), &base[..]);
    assert_eq!(cp.read_part("delta").await.unwrap(), Bytes::from("delta 5"));
    // Retention is idempotent and keeps at least one.
    store.retain_last(2).await.unwrap();
    assert_eq!(count_parts(&store).await, 3);
    assert!(matches!(
        store.retain_last(0).await,
        Err(CheckpointError::InvalidArgument(_))
    ));
    // Writing continues after retention.
    commit_simple(&store, "after retention").await;
}

pub(crate) async fn count_parts(store: &CheckpointStore) -> usize {
    let parts = store.root().clone().join("parts");
    let listed: Vec<_> = store
        .object_store()
        .list(Some(&parts))
        .try_collect()
        .await
        .unwrap();
    listed.len()
}

pub async fn orphan_gc_spares_young_parts(url: UrlFn) {
    let store = open(&url("gc")).await;
    let kept = commit_simple(&store, "kept").await;
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    w.put_part("state", noise(2048, 2)).await.unwrap();
    drop(w);
    assert_eq!(count_parts(&store).await, 3);

    let report = store
        .collect_garbage(Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.spared_young, 2);
    assert_eq!(count_parts(&store).await, 3);

    // S3 and HDFS keep modification times in whole seconds: let the orphans age past a
    // 1-second grace period.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = store.collect_garbage(Duration::from_secs(1)).await.unwrap();
    assert_eq!(report.deleted.len(), 2, "{report:?}");
    assert_eq!(count_parts(&store).await, 1);
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), kept);
    cp.verify().await.unwrap();
}

/// A writer slower than the grace period of a `collect_garbage` run meanwhile loses its parts
/// to it; its commit must then fail and publish nothing, never a checkpoint that cannot be
/// restored.
pub async fn parts_collected_before_commit_fail_the_commit(url: UrlFn) {
    let store = open(&url("gc-slow-writer")).await;
    let kept = commit_simple(&store, "kept").await;
    let mut w = store.begin().await.unwrap();
    w.put_part("state", noise(2048, 3)).await.unwrap();
    // Modification times are whole seconds on S3 and HDFS: age the part past a 1 s grace.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = store.collect_garbage(Duration::from_secs(1)).await.unwrap();
    assert_eq!(report.deleted.len(), 1, "{report:?}");

    let err = w.commit().await.unwrap_err();
    assert!(
        matches!(&err, CheckpointError::PartMissing { name, .. } if name == "state"),
        "{err}"
    );
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), kept);
    let complete = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.state == CheckpointState::Complete)
        .count();
    assert_eq!(complete, 1, "no checkpoint may name the collected part");
}

pub async fn old_format_manifest_fixture_still_reads(url: UrlFn) {
    let store = open(&url("v1-fixture")).await;
    let manifest = include_bytes!("../fixtures/v1.manifest");
    let part = include_bytes!("../fixtures/v1-part-metadata.bin");
    let raw = store.object_store();
    raw.put(
        &store.manifest_path(Epoch(1)),
        PutPayload::from_static(manifest),
    )
    .await
    .unwrap();
    let part_path = store
        .root()
        .clone()
        .join("parts")
        .join("00000000000000000001")
        .join("00000000000000000000-00000000000000000000000000legacy")
        .join("metadata");
    raw.put(&part_path, PutPayload::from_static(part))
        .await
        .unwrap();

    let cp = store.latest().await.unwrap().expect("the v1 checkpoint");
    assert_eq!(cp.epoch(), Epoch(1));
    assert_eq!(cp.format_version(), 1);
    assert_eq!(cp.part_names(), vec!["metadata".to_string()]);
    assert_eq!(cp.read_part("metadata").await.unwrap().as_ref(), &part[..]);
    cp.verify().await.unwrap();
    // A current writer continues after it, in the current format.
    let next = commit_simple(&store, "v2").await;
    assert!(next > Epoch(1));
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.format_version(), tidemark_checkpoint::CURRENT_FORMAT);
}

pub async fn unknown_newer_format_is_a_clear_error(url: UrlFn) {
    let store = open(&url("v99")).await;
    commit_simple(&store, "current").await;
    let covered = b"TIDEMARK-MANIFEST 99\n{\"whatever\":\"a future tidemark writes\"}\n".to_vec();
    let mut record = covered.clone();
    record.extend_from_slice(format!("crc32c {:08x}\n", crc32c::crc32c(&covered)).as_bytes());
    store
        .object_store()
        .put(&store.manifest_path(Epoch(100)), PutPayload::from(record))
        .await
        .unwrap();
    match store.latest().await {
        Err(CheckpointError::UnsupportedFormat { found: 99, .. }) => {}
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

pub async fn zstd_parts_round_trip(url: UrlFn) {
    let store = open(&url("zstd")).await;
    let text: Vec<u8> = b"state line that compresses well\n".repeat(200_000);
    let mut w = store.begin().await.unwrap();
    w.put_part_with(
        "small",
        Bytes::from(text[..10_000].to_vec()),
        PartOptions::zstd(),
    )
    .await
    .unwrap();
    let mut sink = w
        .part_writer_with("streamed", PartOptions::zstd())
        .await
        .unwrap();
    for chunk in text.chunks(100_000) {
        sink.write_all(chunk).await.unwrap();
    }
    sink.shutdown().await.unwrap();
    w.commit().await.unwrap();
    let cp = store.latest().await.unwrap().unwrap();
    let streamed = cp.part("streamed").unwrap();
    assert_eq!(streamed.compression, Compression::Zstd);
    assert_eq!(streamed.size, text.len() as u64);
    assert!(streamed.stored_size * 20 < streamed.size, "{streamed:?}");
    assert_eq!(cp.read_part("streamed").await.unwrap().as_ref(), &text[..]);
    assert_eq!(
        cp.read_part("small").await.unwrap().as_ref(),
        &text[..10_000]
    );
    cp.verify().await.unwrap();
}

pub async fn unfinished_streamed_part_blocks_commit(url: UrlFn) {
    let store = open(&url("unfinished")).await;
    let mut w = store.begin().await.unwrap();
    let mut sink = w.part_writer("state").await.unwrap();
    sink.write_all(b"partial").await.unwrap();
    drop(sink);
    assert!(matches!(
        w.commit().await,
        Err(CheckpointError::PartNotFinished { .. })
    ));
    assert!(store.latest().await.unwrap().is_none());
    assert!(matches!(
        w.put_part("state", Bytes::new()).await,
        Err(CheckpointError::DuplicatePart { .. })
    ));
}

pub async fn streamed_reads_verify_at_the_end(url: UrlFn) {
    use tokio::io::AsyncReadExt;
    let store = open(&url("part-reader")).await;
    let plain = noise(3 * 1024 * 1024 + 5, 11);
    let text: Vec<u8> = b"compressible state\n".repeat(300_000);
    let mut w = store.begin().await.unwrap();
    w.put_part("plain", plain.clone()).await.unwrap();
    w.put_part_with("zstd", text.clone(), PartOptions::zstd())
        .await
        .unwrap();
    w.commit().await.unwrap();
    let cp = store.latest().await.unwrap().unwrap();

    let mut out = Vec::new();
    cp.part_reader("plain")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, plain);
    out.clear();
    cp.part_reader("zstd")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, text);

    // Damage the stored object: the read fails at the end instead of returning bad data quietly.
    let path = store.part_path(cp.part("plain").unwrap()).unwrap();
    let mut bytes = plain.clone();
    bytes[12345] ^= 0x80;
    store
        .object_store()
        .put(&path, PutPayload::from(bytes))
        .await
        .unwrap();
    out.clear();
    let err = cp
        .part_reader("plain")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

/// The retirement check runs beside the manifest's create. The record before a writer's epoch
/// vanishing with nothing newer in the sequence does not fence it: retention always keeps a
/// checkpoint newer than what it deletes, so no other writer ever held this slot.
pub async fn commit_stands_when_only_the_previous_record_vanished(url: UrlFn) {
    let store = open(&url("vanished")).await;
    commit_simple(&store, "first").await;
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"second"))
        .await
        .unwrap();
    let previous = Epoch(w.epoch().0 - 1);
    store
        .object_store()
        .delete(&store.manifest_path(previous))
        .await
        .unwrap();
    let epoch = w
        .commit()
        .await
        .expect("nothing newer: the slot was never retired");
    let latest = store.latest().await.unwrap().unwrap();
    assert_eq!(latest.epoch(), epoch);
    assert_eq!(
        latest.read_part("metadata").await.unwrap(),
        Bytes::from_static(b"second")
    );
}

pub async fn zombie_cannot_commit_into_a_retired_epoch(url: UrlFn) {
    let location = url("retired");
    let old = open(&location).await;
    commit_simple(&old, "old").await;
    let mut zombie = old.begin().await.unwrap();
    zombie
        .put_part("metadata", Bytes::from_static(b"zombie"))
        .await
        .unwrap();

    // A new driver takes over, commits a few times and retires everything but the newest.
    let new = open(&location).await;
    for i in 0..3 {
        commit_simple(&new, &format!("new {i}")).await;
    }
    new.retain_last(1).await.unwrap();
    // The zombie's epoch slot is free again (its claim record was retired), yet it must not
    // take it.
    match zombie.commit().await {
        Err(CheckpointError::Fenced { .. }) => {}
        other => panic!("a stale writer must not commit into a retired epoch, got {other:?}"),
    }
    let list = new.list().await.unwrap();
    let complete: Vec<_> = list
        .iter()
        .filter(|i| i.state == CheckpointState::Complete)
        .collect();
    assert_eq!(complete.len(), 1, "{list:?}");
    assert_eq!(
        new.latest()
            .await
            .unwrap()
            .unwrap()
            .read_part("metadata")
            .await
            .unwrap(),
        Bytes::from("meta new 2")
    );
}
