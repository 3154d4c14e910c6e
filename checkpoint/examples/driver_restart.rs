//! A driver checkpoints, dies, and a restarted driver resumes from the latest checkpoint while
//! the old one (still alive: a zombie) is fenced: Spark's `getOrCreate`, without its rename.
//!
//! ```text
//! cargo run -p tidemark-checkpoint --example driver_restart [CHECKPOINT_URL]
//! ```
//!
//! Without a URL it uses a fresh local directory; any `file://`, `s3://...` or `hdfs://` URL works.

use bytes::Bytes;
use tidemark_checkpoint::{CheckpointError, CheckpointState, CheckpointStore};
use tokio::io::AsyncWriteExt;

/// The driver's state: which batch it is at and the source offsets it has consumed.
fn metadata(batch: u64) -> Bytes {
    Bytes::from(format!(
        "{{\"batch\":{batch},\"offsets\":{{\"topic-0\":{}}}}}",
        batch * 1000
    ))
}

/// Writes one checkpoint: small metadata, a streamed state part, and (incrementally) the
/// configuration part of the previous checkpoint instead of a new copy.
async fn checkpoint(store: &CheckpointStore, batch: u64) -> Result<u64, CheckpointError> {
    let previous = store.latest().await?;
    let mut w = store.begin().await?;
    w.put_part("metadata", metadata(batch)).await?;
    let mut state = w.part_writer("state").await?;
    for i in 0..1000u64 {
        let line = format!("key-{i} = {}\n", i * batch);
        state
            .write_all(line.as_bytes())
            .await
            .map_err(|e| CheckpointError::Io {
                context: "writing state".into(),
                source: e,
            })?;
    }
    state.shutdown().await.map_err(|e| CheckpointError::Io {
        context: "finishing state".into(),
        source: e,
    })?;
    match previous {
        Some(cp) => w.reference_part("config", &cp, "config")?,
        None => {
            w.put_part("config", Bytes::from_static(b"batch_interval=1s"))
                .await?
        }
    }
    Ok(w.commit().await?.0)
}

#[tokio::main]
async fn main() -> Result<(), CheckpointError> {
    let dir = tempfile::tempdir().map_err(|e| CheckpointError::Io {
        context: "temp dir".into(),
        source: e,
    })?;
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("file://{}", dir.path().display()));
    println!("checkpoints at {url}");

    // The first driver runs three batches.
    let first = CheckpointStore::open(&url).await?;
    for batch in 1..=3 {
        let epoch = checkpoint(&first, batch).await?;
        println!("driver 1: batch {batch} checkpointed at epoch {epoch}");
    }

    // It hangs (GC pause, network partition) and the cluster manager starts a new driver.
    let second = CheckpointStore::open(&url).await?;
    match second.latest().await? {
        Some(cp) => {
            cp.verify().await?;
            let meta = cp.read_part("metadata").await?;
            println!(
                "driver 2: resuming from epoch {} ({} parts verified): {}",
                cp.epoch(),
                cp.part_names().len(),
                String::from_utf8_lossy(&meta)
            );
        }
        None => println!("driver 2: no checkpoint, starting fresh"),
    }
    let epoch = checkpoint(&second, 4).await?;
    println!("driver 2: batch 4 checkpointed at epoch {epoch}");

    // The first driver wakes up and tries to checkpoint: it is fenced, and cannot become latest.
    match checkpoint(&first, 4).await {
        Err(CheckpointError::Fenced { reason, .. }) => println!("driver 1: fenced ({reason})"),
        other => println!("driver 1: unexpected {other:?}"),
    }

    second.retain_last(2).await?;
    for info in second.list().await? {
        let state = match info.state {
            CheckpointState::Complete => "complete",
            CheckpointState::Incomplete => "incomplete",
            CheckpointState::Corrupt => "corrupt",
            CheckpointState::Fenced => "fenced",
        };
        println!("epoch {:>3}: {state} ({} parts)", info.epoch, info.parts);
    }
    Ok(())
}
