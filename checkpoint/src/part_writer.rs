//! Streaming a large part through a multipart upload with bounded memory.

use std::{
    io::Write,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use object_store::{buffered::BufWriter, path::Path};
use tokio::io::AsyncWrite;

use crate::{
    CheckpointError,
    error::Result,
    manifest::{Compression, PartInfo},
    store::Shared,
};

/// Where a streamed part reports its outcome to its [`crate::CheckpointWriter`].
#[derive(Debug)]
pub(crate) enum PartSlot {
    /// Still being written (or dropped before shutdown).
    Open,
    /// Shut down successfully: the part as it will appear in the manifest.
    Done(PartInfo),
    /// A write or the upload failed.
    Failed(String),
}

/// A part being streamed into the store: a Tokio [`AsyncWrite`].
///
/// Bytes go through an optional zstd encoder into object_store's `BufWriter`, which switches to
/// a multipart upload once a chunk fills and keeps at most `upload_concurrency` chunk uploads in
/// flight, so memory stays bounded by about `upload_chunk_size * (upload_concurrency + 1)`.
/// Size and CRC32C of the logical and of the stored bytes are computed on the way through. The
/// part is part of the checkpoint only after `shutdown()` returned `Ok`.
pub struct PartWriter {
    upload: BufWriter,
    path: Path,
    info: PartInfo,
    encoder: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    /// Compressed bytes produced but not yet accepted by the upload.
    pending: Vec<u8>,
    pending_from: usize,
    slot: Arc<Mutex<PartSlot>>,
    /// No more input: the encoder is finished.
    finished: bool,
    /// The upload is complete.
    closed: bool,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter")
            .field("path", &self.path)
            .field("written", &self.info.size)
            .finish()
    }
}

impl PartWriter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        path: Path,
        info: PartInfo,
        slot: Arc<Mutex<PartSlot>>,
    ) -> Result<Self> {
        let options = &shared.options;
        let chunk = options.upload_chunk_size.max(5 * 1024 * 1024);
        let upload = BufWriter::with_capacity(Arc::clone(&shared.store), path.clone(), chunk)
            .with_max_concurrency(options.upload_concurrency.max(1));
        let encoder = match info.compression {
            Compression::None => None,
            Compression::Zstd => Some(
                zstd::stream::write::Encoder::new(Vec::new(), options.zstd_level).map_err(|e| {
                    CheckpointError::Io {
                        context: format!("starting zstd for part {:?}", info.name),
                        source: e,
                    }
                })?,
            ),
        };
        Ok(Self {
            upload,
            path,
            info,
            encoder,
            pending: Vec::new(),
            pending_from: 0,
            slot,
            finished: false,
            closed: false,
        })
    }

    /// Bytes accepted so far (before compression).
    pub fn bytes_written(&self) -> u64 {
        self.info.size
    }

    fn fail(&self, error: &std::io::Error) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = PartSlot::Failed(error.to_string());
    }

    /// Moves stored bytes into the pending buffer, accounting for them.
    fn stage(&mut self, stored: Vec<u8>) {
        self.info.stored_crc32c = crate::checksum::append(self.info.stored_crc32c, &stored);
        self.info.stored_size += stored.len() as u64;
        if self.pending_from == self.pending.len() {
            self.pending = stored;
            self.pending_from = 0;
        } else {
            self.pending.extend_from_slice(&stored);
        }
    }

    /// Writes pending compressed bytes to the upload.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.pending_from < self.pending.len() {
            let n = ready!(
                Pin::new(&mut self.upload).poll_write(cx, &self.pending[self.pending_from..])
            )?;
            self.pending_from += n;
        }
        self.pending.clear();
        self.pending_from = 0;
        Poll::Ready(Ok(()))
    }

    fn poll_write_inner(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.finished {
            return Poll::Ready(Err(std::io::Error::other("part writer already shut down")));
        }
        ready!(self.poll_drain(cx))?;
        let accepted = match self.encoder.as_mut() {
            None => {
                let n = ready!(Pin::new(&mut self.upload).poll_write(cx, buf))?;
                self.info.stored_crc32c =
                    crate::checksum::append(self.info.stored_crc32c, &buf[..n]);
                self.info.stored_size += n as u64;
                n
            }
            Some(encoder) => {
                encoder.write_all(buf)?;
                let out = std::mem::take(encoder.get_mut());
                self.stage(out);
                buf.len()
            }
        };
        self.info.crc32c = crate::checksum::append(self.info.crc32c, &buf[..accepted]);
        self.info.size += accepted as u64;
        Poll::Ready(Ok(accepted))
    }

    fn poll_shutdown_inner(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        if !self.finished {
            if let Some(encoder) = self.encoder.take() {
                let tail = encoder.finish()?;
                self.stage(tail);
            }
            self.finished = true;
        }
        ready!(self.poll_drain(cx))?;
        ready!(Pin::new(&mut self.upload).poll_shutdown(cx))?;
        self.closed = true;
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = PartSlot::Done(self.info.clone());
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PartWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = ready!(this.poll_write_inner(cx, buf));
        if let Err(e) = &result {
            this.fail(e);
        }
        Poll::Ready(result)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(this.poll_drain(cx)).and(Ok(()));
        let result = match result {
            Ok(()) => ready!(Pin::new(&mut this.upload).poll_flush(cx)),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            this.fail(e);
        }
        Poll::Ready(result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let result = ready!(this.poll_shutdown_inner(cx));
        if let Err(e) = &result {
            this.fail(e);
        }
        Poll::Ready(result)
    }
}
