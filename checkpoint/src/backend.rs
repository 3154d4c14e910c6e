//! Opening the object store behind a checkpoint URL.
//!
//! | URL | backend |
//! | --- | --- |
//! | `file:///abs/dir` | `LocalFileSystem` rooted at the directory, fsync on (created if missing) |
//! | `memory://name` | `InMemory`, shared by every store opened with the same name in this process |
//! | `s3://bucket/prefix?key=value&...` | `AmazonS3` (feature `s3`) |
//! | `hdfs://host:port/path` | `hdfs-native-object-store` (feature `hdfs`) |
//!
//! S3 settings come, in increasing priority, from the usual `AWS_*` environment variables, the
//! URL's query (`endpoint`, `region`, `access_key_id`, `secret_access_key`, `allow_http`, ... any
//! key `AmazonS3ConfigKey` accepts) and [`CheckpointOptions::storage_options`]. For HDFS the
//! storage options are Hadoop configuration keys.
//!
//! Credentials in the URL or the options never appear in errors or `Debug` output (see the
//! `redact` module).
//!
//! On local disk every write is durable before it returns: `LocalFileSystem` with fsync on syncs
//! each written file before publishing it (rename, or hard link for put-if-absent) and then the
//! directory it was published in, and every directory it creates up to the first existing one.
//! The checkpoint directory itself, when `open` creates it, is synced into its parent here. On
//! Linux, manifests and parts given whole (`put_part`) are written by `local_fs` instead (an
//! anonymous file, synced, then linked into place and its directory synced): the same guarantee
//! with fewer steps. Streamed parts (`part_writer`) still go through `LocalFileSystem`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use object_store::{ObjectStore, local::LocalFileSystem, memory::InMemory, path::Path};
use url::Url;

use crate::{
    CheckpointError,
    error::Result,
    manifest::Compression,
    redact::{self, Secrets},
    timeout::TimeoutStore,
};

/// Settings for a [`crate::CheckpointStore`]. `Default` gives production-ready values.
/// `Debug` masks the values of credential-like storage options.
#[derive(Clone)]
#[non_exhaustive]
pub struct CheckpointOptions {
    /// Deadline for every single remote call (one request, one upload part, one listed page).
    pub request_timeout: Duration,
    /// Size of each multipart upload part of a streamed part (S3 needs at least 5 MiB).
    pub upload_chunk_size: usize,
    /// Multipart part uploads in flight per streamed part; with `upload_chunk_size` this bounds
    /// a part writer's memory.
    pub upload_concurrency: usize,
    /// Parts of at least this many (stored) bytes are written by `put_part` with a multipart
    /// upload (parallel part uploads, per-part retries). `None`: 64 MiB on remote stores (S3,
    /// HDFS); never on local disk and in memory, where one put of the bytes at hand is cheapest.
    pub multipart_threshold: Option<usize>,
    /// `put_part` keeps parts in memory and stores them inside the manifest record while their
    /// stored bytes add up to at most this many per checkpoint, so a small checkpoint commits
    /// with one durable write instead of one per part plus the manifest. Larger parts, and
    /// streamed parts, are objects of their own. `0` disables inlining.
    ///
    /// Default 4 MiB: below S3's 5 MiB minimum multipart part size, so every part it absorbs
    /// would have been a single PUT anyway; at the ~100 MB/s of one S3 connection, 4 MiB take
    /// about as long as one request's latency, which bounds what copying referenced inline parts
    /// into a new manifest can cost against the request it saves; and it bounds the memory a
    /// writer holds until `commit()`. Listing and retention read only manifest bodies, so
    /// inline bytes do not slow them.
    pub inline_limit: usize,
    /// Compression of parts written without explicit [`crate::PartOptions`].
    pub compression: Compression,
    /// zstd level used when compressing.
    pub zstd_level: i32,
    /// Backend settings (S3 config keys or Hadoop config keys) that override the URL and
    /// environment.
    pub storage_options: Vec<(String, String)>,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            upload_chunk_size: 8 * 1024 * 1024,
            upload_concurrency: 4,
            multipart_threshold: None,
            inline_limit: DEFAULT_INLINE_LIMIT,
            compression: Compression::None,
            zstd_level: 3,
            storage_options: Vec::new(),
        }
    }
}

/// Default [`CheckpointOptions::inline_limit`].
pub const DEFAULT_INLINE_LIMIT: usize = 4 * 1024 * 1024;

impl std::fmt::Debug for CheckpointOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let storage_options: Vec<(&str, &str)> = self
            .storage_options
            .iter()
            .map(|(k, v)| {
                let shown = if redact::is_secret_key(k) {
                    redact::MASK
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("CheckpointOptions")
            .field("request_timeout", &self.request_timeout)
            .field("upload_chunk_size", &self.upload_chunk_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("inline_limit", &self.inline_limit)
            .field("compression", &self.compression)
            .field("zstd_level", &self.zstd_level)
            .field("storage_options", &storage_options)
            .finish()
    }
}

impl CheckpointOptions {
    /// Sets the inline limit (`0` disables inline parts).
    pub fn with_inline_limit(mut self, bytes: usize) -> Self {
        self.inline_limit = bytes;
        self
    }

    /// Adds one backend setting.
    pub fn with_storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.push((key.into(), value.into()));
        self
    }

    /// Sets the per-request deadline.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the default part compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
}

/// Default multipart threshold of remote stores.
const REMOTE_MULTIPART_THRESHOLD: usize = 64 * 1024 * 1024;

/// An opened backend: the store (with deadlines) and the root prefix inside it.
pub(crate) struct Backend {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    /// The same store when it is a local directory: whole-object reads go to its files directly
    /// (`fetch.rs`), with paths resolved by it.
    pub local: Option<Arc<LocalFileSystem>>,
    /// `put_part` threshold for multipart uploads (resolved from the options and the backend).
    pub multipart_threshold: usize,
}

/// An invalid location, its credentials masked in the URL and in the reason.
fn invalid(url: &str, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::InvalidLocation {
        url: redact::url(url),
        reason: reason.into(),
    }
}

/// Opens the backend a checkpoint URL names. Errors never carry its credentials.
pub(crate) fn open(location: &str, options: &CheckpointOptions) -> Result<Backend> {
    open_unmasked(location, options).map_err(|e| match e {
        CheckpointError::InvalidLocation { url, reason } => CheckpointError::InvalidLocation {
            url,
            reason: Secrets::new(location, &options.storage_options).scrub(&reason),
        },
        other => other,
    })
}

fn open_unmasked(location: &str, options: &CheckpointOptions) -> Result<Backend> {
    let url = Url::parse(location).map_err(|e| invalid(location, e.to_string()))?;
    let mut local = None;
    let ((store, root), remote): ((Arc<dyn ObjectStore>, Path), bool) = match url.scheme() {
        "file" => {
            let fs = open_local(location, &url)?;
            local = Some(Arc::clone(&fs));
            ((fs as Arc<dyn ObjectStore>, Path::default()), false)
        }
        "memory" => (open_memory(location, &url)?, false),
        "s3" | "s3a" => (open_s3(location, &url, options)?, true),
        "hdfs" | "viewfs" => (open_hdfs(location, &url, options)?, true),
        other => return Err(invalid(location, format!("unsupported scheme {other:?}"))),
    };
    let default_threshold = if remote {
        REMOTE_MULTIPART_THRESHOLD
    } else {
        usize::MAX
    };
    Ok(Backend {
        store: Arc::new(TimeoutStore::new(store, options.request_timeout)),
        root,
        local,
        multipart_threshold: options.multipart_threshold.unwrap_or(default_threshold),
    })
}

/// Wraps an existing object store; `root` is the checkpoint directory inside it.
pub(crate) fn from_store(
    store: Arc<dyn ObjectStore>,
    root: Path,
    options: &CheckpointOptions,
) -> Backend {
    Backend {
        store: Arc::new(TimeoutStore::new(store, options.request_timeout)),
        root,
        local: None,
        multipart_threshold: options
            .multipart_threshold
            .unwrap_or(REMOTE_MULTIPART_THRESHOLD),
    }
}

fn open_local(location: &str, url: &Url) -> Result<Arc<LocalFileSystem>> {
    let dir = url
        .to_file_path()
        .map_err(|_| invalid(location, "not an absolute local path"))?;
    crate::local_fs::create_dir_durably(&dir).map_err(|e| CheckpointError::Io {
        context: format!("creating checkpoint directory {}", dir.display()),
        source: e,
    })?;
    let fs = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| invalid(location, e.to_string()))?
        .with_fsync(true)
        // Remove directories emptied by retention and garbage collection.
        .with_automatic_cleanup(true);
    Ok(Arc::new(fs))
}

/// In-memory stores by name, so a "restarted" store in the same process sees the same data.
fn memory_registry() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn open_memory(location: &str, url: &Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let name = url.host_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(invalid(
            location,
            "memory:// needs a name, e.g. memory://checkpoints",
        ));
    }
    let mut registry = memory_registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = registry
        .entry(name)
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone();
    Ok((store, root_of(url)))
}

/// The URL's path as an object store prefix.
fn root_of(url: &Url) -> Path {
    Path::from(url.path().trim_matches('/'))
}

#[cfg(feature = "s3")]
fn open_s3(
    location: &str,
    url: &Url,
    options: &CheckpointOptions,
) -> Result<(Arc<dyn ObjectStore>, Path)> {
    use object_store::{ClientConfigKey, aws::AmazonS3Builder, aws::AmazonS3ConfigKey};

    let bucket = url
        .host_str()
        .ok_or_else(|| invalid(location, "s3:// needs a bucket"))?;
    let millis = |d: Duration| format!("{}ms", d.as_millis());
    // Timeouts are set key by key: `with_client_options` would replace the client settings
    // `from_env` read (`AWS_ALLOW_HTTP`, proxies), not add to them.
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            millis(options.request_timeout),
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            millis(options.request_timeout.min(Duration::from_secs(10))),
        );
    let pairs = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain(options.storage_options.iter().cloned());
    for (key, value) in pairs {
        let key: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| invalid(location, format!("unknown S3 option {key:?}")))?;
        builder = builder.with_config(key, value);
    }
    let store = builder
        .build()
        .map_err(|e| invalid(location, e.to_string()))?;
    Ok((Arc::new(store), root_of(url)))
}

#[cfg(not(feature = "s3"))]
fn open_s3(location: &str, _: &Url, _: &CheckpointOptions) -> Result<(Arc<dyn ObjectStore>, Path)> {
    Err(invalid(
        location,
        "this build of tidemark-checkpoint lacks the `s3` feature",
    ))
}

#[cfg(feature = "hdfs")]
fn open_hdfs(
    location: &str,
    url: &Url,
    options: &CheckpointOptions,
) -> Result<(Arc<dyn ObjectStore>, Path)> {
    use hdfs_native_object_store::HdfsObjectStoreBuilder;

    let host = url
        .host_str()
        .ok_or_else(|| invalid(location, "hdfs:// needs a NameNode host"))?;
    let namenode = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let store = HdfsObjectStoreBuilder::new()
        .with_url(namenode)
        .with_config(options.storage_options.iter().cloned())
        .with_io_runtime(hdfs_io_runtime()?)
        .build()
        .map_err(|e| invalid(location, e.to_string()))?;
    Ok((Arc::new(store), root_of(url)))
}

/// The runtime every HDFS client of this process does its I/O on; it lives until the process
/// exits.
///
/// hdfs-native keeps one process-wide cache of DataNode connections, and a connection is bound
/// to the runtime that opened it. Left to itself the client opens connections on the caller's
/// runtime, so a connection opened under one runtime and reused under another breaks the moment
/// the first runtime shuts down ("All DataNodes failed" on a single-replica block), and a store
/// opened under a runtime that has since shut down cannot reach the NameNode at all. One
/// long-lived I/O runtime removes both failure modes.
#[cfg(feature = "hdfs")]
fn hdfs_io_runtime() -> Result<tokio::runtime::Handle> {
    type Started = std::result::Result<tokio::runtime::Runtime, (std::io::ErrorKind, String)>;
    static RUNTIME: OnceLock<Started> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tidemark-hdfs-io")
            .enable_all()
            .build()
            .map_err(|e| (e.kind(), e.to_string()))
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle().clone()),
        Err((kind, message)) => Err(CheckpointError::Io {
            context: "starting the HDFS I/O runtime".to_string(),
            source: std::io::Error::new(*kind, message.clone()),
        }),
    }
}

#[cfg(not(feature = "hdfs"))]
fn open_hdfs(
    location: &str,
    _: &Url,
    _: &CheckpointOptions,
) -> Result<(Arc<dyn ObjectStore>, Path)> {
    Err(invalid(
        location,
        "this build of tidemark-checkpoint lacks the `hdfs` feature",
    ))
}
