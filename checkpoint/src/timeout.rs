//! An [`ObjectStore`] layer that puts a deadline on every remote call.
//!
//! Object stores (and the HDFS client in particular) can hang on a dead server. Every call made
//! through [`TimeoutStore`], including each multipart part upload, each page of a listing and
//! each chunk of a download, fails with [`TimedOut`] once the deadline passes, so no checkpoint
//! operation can hang forever.

use std::{fmt, future::Future, ops::Range, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
    path::Path,
};

/// The error a call that passed its deadline fails with (inside `object_store::Error::Generic`).
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {path} timed out after {timeout:?}")]
pub struct TimedOut {
    /// The call.
    pub operation: &'static str,
    /// The object or prefix.
    pub path: String,
    /// The deadline.
    pub timeout: Duration,
}

fn timed_out(operation: &'static str, path: &str, timeout: Duration) -> object_store::Error {
    object_store::Error::Generic {
        store: "tidemark-timeout",
        source: Box::new(TimedOut {
            operation,
            path: path.to_string(),
            timeout,
        }),
    }
}

async fn deadline<T>(
    timeout: Duration,
    operation: &'static str,
    path: &str,
    fut: impl Future<Output = object_store::Result<T>>,
) -> object_store::Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(operation, path, timeout)),
    }
}

/// Wraps each item of a stream in the deadline: a stalled stream ends with a timeout error.
fn stream_deadline<T: Send + 'static>(
    timeout: Duration,
    operation: &'static str,
    path: String,
    stream: BoxStream<'static, object_store::Result<T>>,
) -> BoxStream<'static, object_store::Result<T>> {
    futures::stream::unfold(Some(stream), move |state| {
        let path = path.clone();
        async move {
            let mut stream = state?;
            match tokio::time::timeout(timeout, stream.next()).await {
                Ok(Some(item)) => Some((item, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((Err(timed_out(operation, &path, timeout)), None)),
            }
        }
    })
    .boxed()
}

/// An object store whose every call has a deadline.
#[derive(Debug, Clone)]
pub struct TimeoutStore {
    inner: Arc<dyn ObjectStore>,
    timeout: Duration,
}

impl TimeoutStore {
    /// Wraps `inner`; each call (or stream item) may take at most `timeout`.
    pub fn new(inner: Arc<dyn ObjectStore>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl fmt::Display for TimeoutStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timeout({}, {:?})", self.inner, self.timeout)
    }
}

fn prefix_name(prefix: Option<&Path>) -> String {
    prefix.map(|p| p.to_string()).unwrap_or_default()
}

#[async_trait]
impl ObjectStore for TimeoutStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let fut = self.inner.put_opts(location, payload, opts);
        deadline(self.timeout, "put", location.as_ref(), fut).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let fut = self.inner.put_multipart_opts(location, opts);
        let upload = deadline(
            self.timeout,
            "start multipart upload",
            location.as_ref(),
            fut,
        )
        .await?;
        Ok(Box::new(TimeoutUpload {
            inner: upload,
            timeout: self.timeout,
            path: location.to_string(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let fut = self.inner.get_opts(location, options);
        let mut result = deadline(self.timeout, "get", location.as_ref(), fut).await?;
        if let GetResultPayload::Stream(stream) = result.payload {
            result.payload = GetResultPayload::Stream(stream_deadline(
                self.timeout,
                "read",
                location.to_string(),
                stream,
            ));
        }
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let fut = self.inner.get_ranges(location, ranges);
        deadline(self.timeout, "get ranges", location.as_ref(), fut).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        stream_deadline(
            self.timeout,
            "delete",
            String::new(),
            self.inner.delete_stream(locations),
        )
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        stream_deadline(
            self.timeout,
            "list",
            prefix_name(prefix),
            self.inner.list(prefix),
        )
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let stream = self.inner.list_with_offset(prefix, offset);
        stream_deadline(self.timeout, "list", prefix_name(prefix), stream)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let fut = self.inner.list_with_delimiter(prefix);
        deadline(self.timeout, "list", &prefix_name(prefix), fut).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let fut = self.inner.copy_opts(from, to, options);
        deadline(self.timeout, "copy", from.as_ref(), fut).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        let fut = self.inner.rename_opts(from, to, options);
        deadline(self.timeout, "rename", from.as_ref(), fut).await
    }
}

/// A multipart upload whose part uploads, completion and abort each have the deadline.
#[derive(Debug)]
struct TimeoutUpload {
    inner: Box<dyn MultipartUpload>,
    timeout: Duration,
    path: String,
}

#[async_trait]
impl MultipartUpload for TimeoutUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let fut = self.inner.put_part(data);
        let (timeout, path) = (self.timeout, self.path.clone());
        Box::pin(async move { deadline(timeout, "upload part", &path, fut).await })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let (timeout, path) = (self.timeout, self.path.clone());
        deadline(
            timeout,
            "complete multipart upload",
            &path,
            self.inner.complete(),
        )
        .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let (timeout, path) = (self.timeout, self.path.clone());
        deadline(timeout, "abort multipart upload", &path, self.inner.abort()).await
    }
}
