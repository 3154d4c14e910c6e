//! Conformance cases for inline parts (manifest format 3) and old formats: small parts travel
//! inside the manifest, so a small checkpoint is a single put-if-absent.

use std::path::Path as FsPath;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload, path::Path};
use tidemark_checkpoint::{
    CheckpointError, CheckpointOptions, CheckpointState, CheckpointStore, Compression, Epoch,
    PartOptions, PartStorage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{UrlFn, count_parts, inline_options, noise};

async fn open_with(url: &str, options: CheckpointOptions) -> CheckpointStore {
    CheckpointStore::open_with(url, options)
        .await
        .expect("open store")
}

async fn read_streamed(cp: &tidemark_checkpoint::Checkpoint, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    cp.part_reader(name)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

fn storage_of(cp: &tidemark_checkpoint::Checkpoint, name: &str) -> PartStorage {
    cp.part(name).unwrap().storage
}

async fn raw_get(store: &CheckpointStore, path: &Path) -> Vec<u8> {
    store
        .object_store()
        .get(path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

pub async fn small_checkpoint_is_one_manifest_with_inline_parts(url: UrlFn) {
    let location = url("inline-small");
    let store = open_with(&location, inline_options()).await;
    let state = noise(1024 * 1024, 21);
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"offsets: 7"))
        .await
        .unwrap();
    w.put_part("state", state.clone()).await.unwrap();
    let epoch = w.commit().await.unwrap();
    assert_eq!(count_parts(&store).await, 0, "no part objects: one write");

    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), epoch);
    assert_eq!(cp.format_version(), 3);
    assert_eq!(cp.part_names(), vec!["metadata", "state"]);
    assert_eq!(
        storage_of(&cp, "metadata"),
        PartStorage::Inline { offset: 0 }
    );
    assert_eq!(storage_of(&cp, "state"), PartStorage::Inline { offset: 10 });
    assert_eq!(
        store.part_path(cp.part("state").unwrap()).unwrap(),
        store.manifest_path(epoch),
        "an inline part's object is its manifest"
    );
    assert_eq!(cp.read_part("metadata").await.unwrap(), &b"offsets: 7"[..]);
    assert_eq!(cp.read_part("state").await.unwrap().as_ref(), &state[..]);
    assert_eq!(read_streamed(&cp, "state").await, state);
    cp.verify().await.unwrap();

    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].state, CheckpointState::Complete);
    assert_eq!(list[0].parts, 2);
    assert_eq!(list[0].bytes, 10 + state.len() as u64);

    // A writer dropped with only inline parts leaves nothing at all behind.
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"dropped"))
        .await
        .unwrap();
    drop(w);
    assert_eq!(count_parts(&store).await, 0);
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert_eq!(store.latest().await.unwrap().unwrap().epoch(), epoch);

    // A restarted driver finds the tail past the 1 MiB manifest (reading a prefix of it).
    let restarted = open_with(&location, inline_options()).await;
    let mut w = restarted.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"restarted"))
        .await
        .unwrap();
    assert!(w.commit().await.unwrap() > epoch);
}

pub async fn mixed_inline_and_object_parts(url: UrlFn) {
    let options = inline_options().with_inline_limit(64 * 1024);
    let store = open_with(&url("inline-mixed"), options).await;
    let (a, big, b) = (noise(10_000, 1), noise(100_000, 2), noise(20_000, 3));
    let streamed = noise(7 * 1024 * 1024, 4);
    let mut w = store.begin().await.unwrap();
    w.put_part("a", a.clone()).await.unwrap();
    w.put_part("big", big.clone()).await.unwrap(); // over the limit: an object
    w.put_part("b", b.clone()).await.unwrap(); // fits in what is left: inline
    let mut sink = w.part_writer("streamed").await.unwrap(); // streamed: always an object
    sink.write_all(&streamed).await.unwrap();
    sink.shutdown().await.unwrap();
    w.put_part("c", noise(40_000, 5)).await.unwrap(); // over what is left: an object
    w.commit().await.unwrap();
    assert_eq!(count_parts(&store).await, 3);

    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.part_names(), vec!["a", "big", "b", "streamed", "c"]);
    assert_eq!(storage_of(&cp, "a"), PartStorage::Inline { offset: 0 });
    assert_eq!(storage_of(&cp, "big"), PartStorage::Object);
    assert_eq!(storage_of(&cp, "b"), PartStorage::Inline { offset: 10_000 });
    assert_eq!(storage_of(&cp, "streamed"), PartStorage::Object);
    assert_eq!(storage_of(&cp, "c"), PartStorage::Object);
    for (name, data) in [("a", &a), ("big", &big), ("b", &b), ("streamed", &streamed)] {
        assert_eq!(
            cp.read_part(name).await.unwrap().as_ref(),
            &data[..],
            "{name}"
        );
        assert_eq!(&read_streamed(&cp, name).await, data, "{name}");
    }
    cp.verify().await.unwrap();
    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].state, CheckpointState::Complete);

    // A missing part object still makes the checkpoint incomplete, inline parts or not.
    let path = store.part_path(cp.part("big").unwrap()).unwrap();
    store.object_store().delete(&path).await.unwrap();
    assert!(store.latest().await.unwrap().is_none());
    assert_eq!(
        store.list().await.unwrap()[0].state,
        CheckpointState::Corrupt
    );
}

pub async fn inline_parts_with_compression(url: UrlFn) {
    let options = inline_options().with_inline_limit(64 * 1024);
    let store = open_with(&url("inline-zstd"), options).await;
    let text: Vec<u8> = b"state line that compresses well\n".repeat(60_000);
    let mut w = store.begin().await.unwrap();
    // 1.9 MB of logical bytes, a few KiB stored: the stored size decides.
    w.put_part_with("text", text.clone(), PartOptions::zstd())
        .await
        .unwrap();
    // Incompressible bytes beyond the limit even compressed: an object.
    let noisy = noise(100_000, 6);
    w.put_part_with("noise", noisy.clone(), PartOptions::zstd())
        .await
        .unwrap();
    w.commit().await.unwrap();
    assert_eq!(count_parts(&store).await, 1);

    let cp = store.latest().await.unwrap().unwrap();
    let part = cp.part("text").unwrap();
    assert!(part.is_inline());
    assert_eq!(part.compression, Compression::Zstd);
    assert_eq!(part.size, text.len() as u64);
    assert!(part.stored_size * 20 < part.size, "{part:?}");
    assert_eq!(storage_of(&cp, "noise"), PartStorage::Object);
    assert_eq!(cp.read_part("text").await.unwrap().as_ref(), &text[..]);
    assert_eq!(read_streamed(&cp, "text").await, text);
    assert_eq!(cp.read_part("noise").await.unwrap().as_ref(), &noisy[..]);
    cp.verify().await.unwrap();
}

pub async fn inline_part_referenced_by_a_later_checkpoint(url: UrlFn) {
    let options = inline_options().with_inline_limit(64 * 1024);
    let store = open_with(&url("inline-ref"), options).await;
    let base = noise(40_000, 7);
    let mut w = store.begin().await.unwrap();
    w.put_part("base", base.clone()).await.unwrap();
    w.put_part("delta", Bytes::from("delta 0")).await.unwrap();
    let first = w.commit().await.unwrap();

    // The reference copies the bytes into the new manifest: no object, no tie to `first`.
    let cp1 = store.latest().await.unwrap().unwrap();
    let mut w = store.begin().await.unwrap();
    w.put_part("delta", Bytes::from("delta 1")).await.unwrap();
    w.reference_part("base", &cp1, "base").unwrap();
    let second = w.commit().await.unwrap();
    let cp2 = store.latest().await.unwrap().unwrap();
    let copied = cp2.part("base").unwrap();
    assert_eq!(copied.storage, PartStorage::Inline { offset: 7 });
    assert_eq!(copied.origin_epoch, second);
    assert_eq!(
        copied.stored_crc32c,
        cp1.part("base").unwrap().stored_crc32c
    );
    assert_eq!(count_parts(&store).await, 0);

    // Past the inline limit, the copy becomes an object of the new checkpoint.
    let mut w = store.begin().await.unwrap();
    w.put_part("delta", noise(30_000, 8)).await.unwrap();
    w.reference_part("base", &cp2, "base").unwrap();
    let third = w.commit().await.unwrap();
    assert_eq!(count_parts(&store).await, 1);
    let cp3 = store.latest().await.unwrap().unwrap();
    let object = cp3.part("base").unwrap();
    assert_eq!(object.storage, PartStorage::Object);
    assert_eq!(object.origin_epoch, third);

    // Retention of everything but the newest keeps every byte the kept checkpoint needs.
    let report = store.retain_last(1).await.unwrap();
    assert_eq!(report.kept, vec![third]);
    assert!(report.deleted_records.contains(&first));
    assert_eq!(report.deleted_parts, 0, "inline parts are not objects");
    let cp = store.latest().await.unwrap().unwrap();
    cp.verify().await.unwrap();
    assert_eq!(cp.read_part("base").await.unwrap().as_ref(), &base[..]);
    // The next checkpoint references the object by path again, as for any part object.
    let mut w = store.begin().await.unwrap();
    w.reference_part("base", &cp, "base").unwrap();
    w.commit().await.unwrap();
    assert_eq!(count_parts(&store).await, 1);
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.part("base").unwrap().origin_epoch, third);
    assert_eq!(cp.read_part("base").await.unwrap().as_ref(), &base[..]);
}

pub async fn retention_with_inline_parts(url: UrlFn) {
    let options = inline_options().with_inline_limit(64 * 1024);
    let store = open_with(&url("inline-retention"), options).await;
    let mut epochs = Vec::new();
    for i in 0..5u64 {
        let mut w = store.begin().await.unwrap();
        w.put_part("metadata", Bytes::from(format!("meta {i}")))
            .await
            .unwrap();
        if i % 2 == 0 {
            // Every other checkpoint also has a part object.
            w.put_part("state", noise(100_000, i)).await.unwrap();
        }
        epochs.push(w.commit().await.unwrap());
    }
    assert_eq!(count_parts(&store).await, 3);
    let report = store.retain_last(2).await.unwrap();
    assert_eq!(report.kept, vec![epochs[4], epochs[3]]);
    assert_eq!(
        report.deleted_parts, 2,
        "the state objects of epochs 0 and 2"
    );
    assert_eq!(count_parts(&store).await, 1);
    let list = store.list().await.unwrap();
    let states: Vec<_> = list.iter().map(|i| (i.epoch, i.state)).collect();
    assert_eq!(
        states,
        vec![
            (epochs[3], CheckpointState::Complete),
            (epochs[4], CheckpointState::Complete)
        ]
    );
    let cp = store.latest().await.unwrap().unwrap();
    cp.verify().await.unwrap();
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        Bytes::from("meta 4")
    );
    assert!(cp.part("state").is_some());
    let gc = store
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(gc.deleted.is_empty(), "{gc:?}");
}

pub async fn damaged_inline_bytes_are_caught(url: UrlFn) {
    let store = open_with(&url("inline-damage"), inline_options()).await;
    let older = {
        let mut w = store.begin().await.unwrap();
        w.put_part("state", Bytes::from_static(b"older"))
            .await
            .unwrap();
        w.commit().await.unwrap()
    };
    let state = noise(200_000, 9);
    let mut w = store.begin().await.unwrap();
    w.put_part("state", state.clone()).await.unwrap();
    let newer = w.commit().await.unwrap();
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), newer);

    // One flipped bit in the blob: the manifest no longer verifies.
    let path = store.manifest_path(newer);
    let mut bytes = raw_get(&store, &path).await;
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x04;
    store
        .object_store()
        .put(&path, PutPayload::from(bytes.clone()))
        .await
        .unwrap();
    match cp.verify().await {
        Err(CheckpointError::Corrupt { what, .. }) => assert_eq!(what, "manifest"),
        other => panic!("verify must catch damaged inline bytes, got {other:?}"),
    }
    let fallback = store.latest().await.unwrap().unwrap();
    assert_eq!(fallback.epoch(), older);
    assert_eq!(fallback.skipped()[0].epoch, newer);

    // A flip in the body is caught by listing too, which reads only the body.
    bytes[at] ^= 0x04;
    bytes[60] ^= 0x01;
    store
        .object_store()
        .put(&path, PutPayload::from(bytes))
        .await
        .unwrap();
    let list = store.list().await.unwrap();
    let damaged: Vec<_> = list
        .iter()
        .filter(|i| i.state == CheckpointState::Corrupt)
        .map(|i| i.epoch)
        .collect();
    assert_eq!(damaged, vec![newer]);
}

pub async fn inline_writers_race_for_one_epoch(url: UrlFn) {
    const WRITERS: usize = 4;
    let store = open_with(&url("inline-race"), inline_options()).await;
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let mut w = store.begin().await.unwrap();
        w.put_part("state", noise(256 * 1024, i as u64))
            .await
            .unwrap();
        writers.push(w);
    }
    let commits = futures::future::join_all(writers.iter_mut().map(|w| w.commit())).await;
    let winners: Vec<usize> = (0..WRITERS).filter(|i| commits[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{commits:?}");
    assert!(
        commits
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(CheckpointError::Fenced { .. })))
    );
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(
        cp.read_part("state").await.unwrap().as_ref(),
        &noise(256 * 1024, winners[0] as u64)[..]
    );
    assert_eq!(count_parts(&store).await, 0, "losers leave nothing behind");
}

/// Copies the files under `dir` into the store's root at the same relative paths.
async fn upload_tree(store: &CheckpointStore, dir: &FsPath) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let target: Path = store
                .root()
                .parts()
                .chain(Path::from(rel.as_str()).parts())
                .collect();
            let bytes = std::fs::read(&path).unwrap();
            store
                .object_store()
                .put(&target, PutPayload::from(bytes))
                .await
                .unwrap();
        }
    }
}

/// A checkpoint directory written by the format 2 release (a claim, a checkpoint with a plain
/// and a zstd part, and an incremental checkpoint referencing the zstd part) still reads, and a
/// current writer continues after it.
pub async fn format_2_fixture_still_reads(url: UrlFn) {
    let store = open_with(&url("v2-fixture"), inline_options()).await;
    let fixture = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2");
    upload_tree(&store, &fixture).await;

    let cp = store.latest().await.unwrap().expect("the v2 checkpoint");
    assert_eq!(cp.epoch(), Epoch(2));
    assert_eq!(cp.format_version(), 2);
    assert_eq!(cp.part_names(), vec!["state", "metadata"]);
    let state = cp.part("state").unwrap();
    assert_eq!(state.compression, Compression::Zstd);
    assert_eq!(state.origin_epoch, Epoch(1));
    assert_eq!(state.storage, PartStorage::Object);
    let text = b"v2 state line that compresses well\n".repeat(100);
    assert_eq!(cp.read_part("state").await.unwrap().as_ref(), &text[..]);
    assert_eq!(read_streamed(&cp, "state").await, text);
    assert_eq!(
        cp.read_part("metadata").await.unwrap(),
        &b"v2 metadata, epoch 2"[..]
    );
    cp.verify().await.unwrap();
    let list = store.list().await.unwrap();
    assert!(
        list.iter().all(|i| i.state == CheckpointState::Complete),
        "{list:?}"
    );
    assert_eq!(list.len(), 2);

    // A current writer continues after it, in the current format, referencing the v2 object.
    let mut w = store.begin().await.unwrap();
    w.reference_part("state", &cp, "state").unwrap();
    w.put_part("metadata", Bytes::from_static(b"v3"))
        .await
        .unwrap();
    let next = w.commit().await.unwrap();
    assert!(next > Epoch(2));
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.format_version(), tidemark_checkpoint::CURRENT_FORMAT);
    assert_eq!(cp.read_part("state").await.unwrap().as_ref(), &text[..]);
    // Retention drops the v2 records and epoch 1's metadata, keeps the shared v2 state object.
    let report = store.retain_last(1).await.unwrap();
    assert_eq!(report.deleted_parts, 2, "both v2 metadata objects");
    assert_eq!(count_parts(&store).await, 1);
    store
        .latest()
        .await
        .unwrap()
        .unwrap()
        .verify()
        .await
        .unwrap();
}
