//! Behaviour beyond the backend conformance suite: deadlines against dead servers, lost
//! responses of conditional puts, the parallelism and memory bound of streamed parts and the
//! blocking API. (The command-line tool is
//! `checkpoint-dump` in tidemark-tools, tested there.)

use std::{
    fmt,
    io::Write,
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, memory::InMemory, path::Path,
};
use tidemark_checkpoint::{
    CheckpointError, CheckpointOptions, CheckpointState, CheckpointStore, blocking,
};

/// A listener on 127.0.0.1 that accepts connections and never answers: a hung server.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn short_deadline() -> CheckpointOptions {
    CheckpointOptions::default().with_request_timeout(Duration::from_millis(800))
}

async fn assert_times_out(url: &str) {
    let store = CheckpointStore::open_with(url, short_deadline())
        .await
        .unwrap();
    let started = Instant::now();
    match store.latest().await {
        Err(CheckpointError::Timeout { .. }) => {}
        other => panic!("expected a timeout from {url}, got {other:?}"),
    }
    match store.begin().await {
        Err(CheckpointError::Timeout { .. }) => {}
        other => panic!("expected a timeout from {url}, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_client_does_not_hang_on_a_dead_namenode() {
    let (_listener, port) = silent_server();
    assert_times_out(&format!("hdfs://127.0.0.1:{port}/ckpt")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_client_does_not_hang_on_a_dead_server() {
    let (_listener, port) = silent_server();
    let url = format!(
        "s3://bucket/ckpt?endpoint=http://127.0.0.1:{port}&region=us-east-1&access_key_id=a&secret_access_key=b&allow_http=true"
    );
    assert_times_out(&url).await;
}

/// An in-memory store with faults to inject.
///
/// * Lost responses: conditional puts are applied, but the first `lose` of them report a
///   connection error.
/// * Held uploads: each multipart part upload waits for a permit of `uploads.gate`, and
///   `uploads` counts how many are in flight.
#[derive(Debug, Default)]
struct FaultyStore {
    inner: InMemory,
    lose: AtomicUsize,
    /// When set, the lost put is not applied either (the request itself was lost).
    drop_request: bool,
    uploads: Arc<HeldUploads>,
}

/// Multipart part uploads waiting on a gate (open by default); `in_flight` and its high-water
/// mark `peak`.
#[derive(Debug)]
struct HeldUploads {
    gate: tokio::sync::Semaphore,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Default for HeldUploads {
    fn default() -> Self {
        let uploads = HeldUploads::held();
        uploads.open();
        uploads
    }
}

impl HeldUploads {
    /// Holds every part upload until [`open`](Self::open).
    fn held() -> Self {
        HeldUploads {
            gate: tokio::sync::Semaphore::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Lets every part upload, held or still to come, through.
    fn open(&self) {
        self.gate
            .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }
}

/// A multipart upload whose parts wait on [`HeldUploads`].
#[derive(Debug)]
struct HeldUpload {
    inner: Box<dyn MultipartUpload>,
    uploads: Arc<HeldUploads>,
}

#[async_trait]
impl MultipartUpload for HeldUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        let uploads = Arc::clone(&self.uploads);
        let now = uploads.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        uploads.peak.fetch_max(now, Ordering::SeqCst);
        let upload = self.inner.put_part(data);
        Box::pin(async move {
            let permit = uploads.gate.acquire().await;
            let result = upload.await;
            drop(permit);
            uploads.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore")
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = matches!(opts.mode, PutMode::Create);
        let lose = create
            && self
                .lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if lose {
            if !self.drop_request {
                self.inner.put_opts(location, payload, opts).await?;
            }
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: "connection reset by peer".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(HeldUpload {
            inner,
            uploads: Arc::clone(&self.uploads),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn lossy_store(lose: usize, drop_request: bool) -> CheckpointStore {
    let store = FaultyStore {
        lose: AtomicUsize::new(lose),
        drop_request,
        ..FaultyStore::default()
    };
    CheckpointStore::from_object_store(
        Arc::new(store),
        Path::from("ckpt"),
        CheckpointOptions::default(),
    )
}

#[tokio::test]
async fn lost_response_of_a_conditional_put_is_resolved_by_reading_back() {
    // The claim and the manifest are both applied, and both responses are lost.
    let store = lossy_store(2, false);
    let mut w = store.begin().await.expect("claim settles by reading back");
    w.put_part("metadata", Bytes::from_static(b"m"))
        .await
        .unwrap();
    let epoch = w.commit().await.expect("commit settles by reading back");
    let cp = store.latest().await.unwrap().unwrap();
    assert_eq!(cp.epoch(), epoch);
    assert_eq!(cp.writer_id(), w.writer_id());
}

#[tokio::test]
async fn lost_request_of_a_conditional_put_is_retried() {
    let store = lossy_store(2, true);
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"m"))
        .await
        .unwrap();
    let epoch = w.commit().await.unwrap();
    assert_eq!(store.latest().await.unwrap().unwrap().epoch(), epoch);
}

/// Bytes a streamed part can take in while every part upload is held: one chunk per upload in
/// flight, the chunk being filled, and one `write` call's worth.
fn streaming_bound(chunk: usize, concurrency: usize, write: usize) -> usize {
    chunk * (concurrency + 1) + write
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_part_uploads_in_parallel_with_bounded_memory() {
    use tokio::io::AsyncWriteExt;
    const MIB: usize = 1024 * 1024;
    let (chunk, concurrency, write, total) = (5 * MIB, 3, MIB, 48 * MIB);
    let faulty = Arc::new(FaultyStore {
        uploads: Arc::new(HeldUploads::held()),
        ..FaultyStore::default()
    });
    let uploads = Arc::clone(&faulty.uploads);
    let mut options = CheckpointOptions::default();
    options.upload_chunk_size = chunk;
    options.upload_concurrency = concurrency;
    let store = CheckpointStore::from_object_store(faulty, Path::from("ckpt"), options);
    let data: Vec<u8> = (0..total).map(|i| (i * 131 % 251) as u8).collect();

    let mut w = store.begin().await.unwrap();
    let mut sink = w.part_writer("state").await.unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let writing = {
        let (accepted, data) = (Arc::clone(&accepted), data.clone());
        tokio::spawn(async move {
            for piece in data.chunks(write) {
                sink.write_all(piece).await?;
                accepted.fetch_add(piece.len(), Ordering::SeqCst);
            }
            sink.shutdown().await?;
            Ok::<_, std::io::Error>(())
        })
    };
    // With every part upload held, the writer stalls once the uploads in flight are full.
    let mut last = usize::MAX;
    while accepted.load(Ordering::SeqCst) != last {
        last = accepted.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        uploads.in_flight.load(Ordering::SeqCst),
        concurrency,
        "parts upload in parallel, up to upload_concurrency"
    );
    let bound = streaming_bound(chunk, concurrency, write);
    assert!(
        last <= bound,
        "the writer took in {last} bytes while nothing was uploaded (bound {bound})"
    );

    uploads.open();
    writing.await.unwrap().unwrap();
    let epoch = w.commit().await.unwrap();
    assert_eq!(uploads.peak.load(Ordering::SeqCst), concurrency);
    let cp = store.checkpoint(epoch).await.unwrap().unwrap();
    assert_eq!(cp.read_part("state").await.unwrap(), Bytes::from(data));
}

#[test]
fn blocking_api_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = blocking::CheckpointStore::open(&url).unwrap();
    assert!(store.latest().unwrap().is_none());
    let mut w = store.begin().unwrap();
    w.put_part("metadata", Bytes::from_static(b"blocking"))
        .unwrap();
    let mut sink = w.part_writer("state").unwrap();
    for _ in 0..100 {
        sink.write_all(&[7u8; 10_000]).unwrap();
    }
    sink.finish().unwrap();
    let epoch = w.commit().unwrap();
    let cp = store.latest().unwrap().unwrap();
    assert_eq!(cp.epoch(), epoch);
    assert_eq!(
        cp.part_names(),
        vec!["metadata".to_string(), "state".to_string()]
    );
    assert_eq!(
        cp.read_part("metadata").unwrap(),
        Bytes::from_static(b"blocking")
    );
    assert_eq!(cp.read_part("state").unwrap().len(), 1_000_000);
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut cp.part_reader("state").unwrap(), &mut streamed).unwrap();
    assert_eq!(streamed, vec![7u8; 1_000_000]);
    cp.verify().unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, CheckpointState::Complete);
    store.retain_last(1).unwrap();
    // A restarted driver fences this one.
    let restarted = blocking::CheckpointStore::open(&url).unwrap();
    restarted.begin().unwrap().commit().unwrap();
    assert!(matches!(store.begin(), Err(CheckpointError::Fenced { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_settings_from_options_and_signatures_are_checked() {
    use tidemark_test_servers::{
        S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY, seaweedfs, unique_name,
    };
    let server = seaweedfs();
    let url = format!("s3://{S3_BUCKET}/{}", unique_name("options"));
    let options = |secret: &str| {
        CheckpointOptions::default()
            .with_request_timeout(Duration::from_secs(10))
            .with_storage_option("endpoint", server.endpoint())
            .with_storage_option("region", S3_REGION)
            .with_storage_option("access_key_id", S3_ACCESS_KEY)
            .with_storage_option("secret_access_key", secret)
            .with_storage_option("allow_http", "true")
    };
    let store = CheckpointStore::open_with(&url, options(S3_SECRET_KEY))
        .await
        .unwrap();
    let mut w = store.begin().await.unwrap();
    w.put_part("metadata", Bytes::from_static(b"signed"))
        .await
        .unwrap();
    let epoch = w.commit().await.unwrap();
    assert_eq!(store.latest().await.unwrap().unwrap().epoch(), epoch);

    // A wrong secret yields bad signatures, which the server rejects.
    let forged = CheckpointStore::open_with(&url, options("not-the-secret"))
        .await
        .unwrap();
    match forged.latest().await {
        Err(CheckpointError::Store { .. }) => {}
        other => panic!("a request with a bad signature must fail, got {other:?}"),
    }
    assert!(matches!(
        CheckpointStore::open_with(
            &url,
            options(S3_SECRET_KEY).with_storage_option("no_such_option", "1")
        )
        .await,
        Err(CheckpointError::InvalidLocation { .. })
    ));
}

/// An HDFS store keeps working after the runtime it was opened and first used under has shut
/// down. hdfs-native caches NameNode and DataNode connections, and a connection is bound to the
/// runtime that opened it; unless every client does its I/O on one long-lived runtime, a store
/// (or a cached DataNode connection) from a finished runtime fails, which showed up in CI as
/// "All DataNodes failed" when one test's runtime ended while another test was reading.
#[test]
fn hdfs_store_outlives_the_runtime_that_opened_it() {
    use tidemark_test_servers::{minidfs, unique_name};
    let url = minidfs().url(&format!("/tidemark/{}", unique_name("runtimes")));
    let state = Bytes::from(
        (0..6 * 1024 * 1024)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let runtime = || tokio::runtime::Runtime::new().unwrap();

    let first = runtime();
    let store = first.block_on(async {
        let options = CheckpointOptions::default().with_inline_limit(0);
        let store = CheckpointStore::open_with(&url, options).await.unwrap();
        let mut w = store.begin().await.unwrap();
        w.put_part("state", state.clone()).await.unwrap();
        w.commit().await.unwrap();
        let cp = store.latest().await.unwrap().unwrap();
        assert_eq!(cp.read_part("state").await.unwrap(), state);
        store
    });
    drop(first);

    let second = runtime();
    second.block_on(async {
        let cp = store.latest().await.unwrap().unwrap();
        assert_eq!(cp.read_part("state").await.unwrap(), state);
        let reopened = CheckpointStore::open(&url).await.unwrap();
        let cp = reopened.latest().await.unwrap().unwrap();
        let mut streamed = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(
            &mut cp.part_reader("state").await.unwrap(),
            &mut streamed,
        )
        .await
        .unwrap();
        assert_eq!(streamed, state);
        cp.verify().await.unwrap();
    });
}
