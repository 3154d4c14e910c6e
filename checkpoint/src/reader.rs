//! Streaming reads of parts: bounded memory, verified at the end.

use std::{
    io::Read,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use object_store::{GetResultPayload, ObjectStoreExt, path::Path};
use tokio::io::{AsyncRead, ReadBuf};

use crate::{
    CheckpointError,
    error::Result,
    manifest::{Compression, PartInfo},
    store::Shared,
};

/// Chunk size for reading local files.
const FILE_CHUNK: usize = 1024 * 1024;
/// Decompressed bytes produced per decoder step.
const DECODE_CHUNK: usize = 256 * 1024;

/// The object's bytes as a stream of chunks. Local files are read in 1 MiB blocking reads
/// (object_store's own file stream reads 8 KiB at a time).
pub(crate) async fn object_chunks(
    shared: &Shared,
    path: &Path,
) -> Result<BoxStream<'static, object_store::Result<Bytes>>> {
    let result = shared
        .store
        .get(path)
        .await
        .map_err(|e| CheckpointError::store("get", path, e))?;
    let GetResultPayload::File(file, _) = result.payload else {
        return Ok(result.into_stream());
    };
    let location = path.to_string();
    let stream = futures::stream::try_unfold(Some(file), move |file| {
        let location = location.clone();
        async move {
            let Some(mut file) = file else {
                return Ok(None);
            };
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; FILE_CHUNK];
                let n = read_full(&mut file, &mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>((buf, file))
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("reading {location}: {e}").into(),
            })?;
            let (buf, file) = read;
            if buf.is_empty() {
                return Ok(None);
            }
            Ok(Some((Bytes::from(buf), Some(file))))
        }
    });
    Ok(stream.boxed())
}

/// Fills `buf` unless the file ends first; returns the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A part being read as a Tokio [`AsyncRead`], decompressed on the fly, with memory bounded by
/// one stored chunk plus one decoded chunk.
///
/// Size and CRC32C of the stored and of the logical bytes are checked when the end is reached:
/// a damaged part makes the final read fail with `InvalidData`, so a consumer that reads to the
/// end never accepts damaged data silently (data read before the end is not yet verified).
pub struct PartReader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    part: PartInfo,
    path: String,
    /// Stored bytes not yet consumed.
    input: Bytes,
    decoder: Option<zstd::stream::raw::Decoder<'static>>,
    /// Decoded bytes not yet returned, and how many of them were returned.
    decoded: Vec<u8>,
    decoded_from: usize,
    /// The last decoder step filled its output: it may hold more for input already consumed.
    decoder_full: bool,
    stored_size: u64,
    stored_crc: u32,
    size: u64,
    crc: u32,
    finished: bool,
}

impl std::fmt::Debug for PartReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartReader")
            .field("path", &self.path)
            .field("read", &self.size)
            .finish()
    }
}

impl PartReader {
    pub(crate) async fn open(shared: &Shared, path: &Path, part: PartInfo) -> Result<PartReader> {
        let stream = object_chunks(shared, path).await?;
        Self::over(stream, path, part)
    }

    /// Reads a part whose stored bytes are at hand (an inline part), with the same checks.
    pub(crate) fn from_stored(stored: Bytes, path: &Path, part: PartInfo) -> Result<PartReader> {
        Self::over(futures::stream::iter([Ok(stored)]).boxed(), path, part)
    }

    fn over(
        stream: BoxStream<'static, object_store::Result<Bytes>>,
        path: &Path,
        part: PartInfo,
    ) -> Result<PartReader> {
        let decoder = match part.compression {
            Compression::None => None,
            Compression::Zstd => {
                Some(
                    zstd::stream::raw::Decoder::new().map_err(|e| CheckpointError::Io {
                        context: format!("starting zstd for {path}"),
                        source: e,
                    })?,
                )
            }
        };
        Ok(PartReader {
            stream,
            part,
            path: path.to_string(),
            input: Bytes::new(),
            decoder,
            decoded: Vec::new(),
            decoded_from: 0,
            decoder_full: false,
            stored_size: 0,
            stored_crc: 0,
            size: 0,
            crc: 0,
            finished: false,
        })
    }

    /// Hands out logical bytes, accounting for them.
    fn emit(&mut self, from: &[u8], buf: &mut ReadBuf<'_>) -> usize {
        let n = from.len().min(buf.remaining());
        buf.put_slice(&from[..n]);
        self.crc = crate::checksum::append(self.crc, &from[..n]);
        self.size += n as u64;
        n
    }

    /// Decodes some of `input` into `decoded`; returns the bytes produced.
    fn decode_step(&mut self) -> std::io::Result<usize> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(0);
        };
        let mut out = vec![0u8; DECODE_CHUNK];
        let mut input = InBuffer::around(&self.input);
        let mut output = OutBuffer::around(&mut out[..]);
        decoder.run(&mut input, &mut output)?;
        let (consumed, produced) = (input.pos(), output.pos());
        if consumed == 0 && produced == 0 && !self.input.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "zstd made no progress",
            ));
        }
        out.truncate(produced);
        self.input = self.input.slice(consumed..);
        self.decoded = out;
        self.decoded_from = 0;
        self.decoder_full = produced == DECODE_CHUNK;
        Ok(produced)
    }

    /// Checks sizes and checksums once the stored bytes ended.
    fn check_end(&self) -> std::io::Result<()> {
        let p = &self.part;
        let problem = if self.stored_size != p.stored_size || self.stored_crc != p.stored_crc32c {
            Some(format!(
                "stored size {} crc32c {:08x}, manifest says {} {:08x}",
                self.stored_size, self.stored_crc, p.stored_size, p.stored_crc32c
            ))
        } else if self.size != p.size || self.crc != p.crc32c {
            Some(format!(
                "size {} crc32c {:08x}, manifest says {} {:08x}",
                self.size, self.crc, p.size, p.crc32c
            ))
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(reason) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                CheckpointError::corrupt(format!("part {}", p.name), &self.path, reason),
            )),
        }
    }

    fn poll_read_inner(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.decoded_from < self.decoded.len() {
                let pending = std::mem::take(&mut self.decoded);
                let n = self.emit(&pending[self.decoded_from..], buf);
                self.decoded = pending;
                self.decoded_from += n;
                return Poll::Ready(Ok(()));
            }
            if self.decoder.is_some() && (!self.input.is_empty() || self.decoder_full) {
                let produced = self.decode_step()?;
                if produced > 0 || !self.input.is_empty() {
                    continue;
                }
            }
            if !self.input.is_empty() {
                let input = std::mem::take(&mut self.input);
                let n = self.emit(&input, buf);
                self.input = input.slice(n..);
                return Poll::Ready(Ok(()));
            }
            if self.finished {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
                Some(chunk) => {
                    let chunk = chunk.map_err(std::io::Error::other)?;
                    self.stored_crc = crate::checksum::append(self.stored_crc, &chunk);
                    self.stored_size += chunk.len() as u64;
                    self.input = chunk;
                }
                None => {
                    self.finished = true;
                    self.check_end()?;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl AsyncRead for PartReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.get_mut().poll_read_inner(cx, buf)
    }
}
