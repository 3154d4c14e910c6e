//! Whole-object reads that checksum the bytes while they arrive.
//!
//! A verified read used to fetch an object and then run CRC32C over it: a second pass over
//! memory the read had just written, on the critical path. Here the checksum rides along:
//!
//! * **Local files** (a `file://` store) are opened at the path `LocalFileSystem` maps the
//!   object to, sized and read in one blocking task. They are read by positional reads straight
//!   into one buffer that is never zeroed, split into one region per core from 4 MiB: the
//!   task reads the first region, threads of Tokio's blocking pool the others. A region is read
//!   in L2-sized steps and every step is checksummed while it is still in cache. The region
//!   checksums are combined (`checksum::combine`), giving the value of one pass. A store
//!   given to `CheckpointStore::from_object_store` is read through its own `get`, then the
//!   same way if it hands out a file.
//! * **Streams** (S3, HDFS, memory) are checksummed chunk by chunk as chunks arrive, while the
//!   next one is still in flight. A stream of one chunk (memory) is returned without a copy.
//!
//! Guarantee: the returned checksum is the CRC32C of the returned bytes except the last
//! `unchecked_tail` of them (a record's own checksum trailer); the bytes are the object as the
//! store served it in one read, and a local file that is shorter than the size the store
//! reported is an error, never a short buffer. Nothing here compares the checksum with an
//! expected one: the caller does.

use std::{
    mem::MaybeUninit,
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use object_store::{GetResultPayload, ObjectStoreExt, local::LocalFileSystem, path::Path};

use crate::{CheckpointError, checksum, error::Result, store::Shared};

/// Bytes read (and then checksummed) per step of a local read: small enough to still be in the
/// core's L2 cache when the checksum runs over them.
const LOCAL_STEP: usize = 256 * 1024;
/// Local objects smaller than this are read by one thread: handing a region to a second thread
/// costs more than it saves below a few MiB (measured back to back from the page cache: at
/// 1-2 MiB one thread read 1.08-1.31x a plain get and two 0.82-0.91x; at 4 MiB one 0.99x,
/// two 1.26x).
const LOCAL_PARALLEL_MIN: usize = 4 * 1024 * 1024;

/// An object's bytes and the CRC32C of all but its last `unchecked_tail` bytes.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub bytes: Bytes,
    pub crc: u32,
}

/// Reads the object at `path` whole, checksumming all but its last `unchecked_tail` bytes on
/// the way (see the module docs).
pub(crate) async fn fetch(shared: &Shared, path: &Path, unchecked_tail: usize) -> Result<Fetched> {
    if let Some(local) = &shared.local {
        return fetch_local(local, path, unchecked_tail).await;
    }
    let result = shared
        .store
        .get(path)
        .await
        .map_err(|e| CheckpointError::store("get", path, e))?;
    let size = usize::try_from(result.meta.size)
        .map_err(|_| CheckpointError::corrupt("object", path, "size does not fit in memory"))?;
    let covered = size.saturating_sub(unchecked_tail);
    match result.payload {
        GetResultPayload::File(file, _) => {
            let read = tokio::task::spawn_blocking(move || read_file(file, size, covered));
            read.await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(|e| io_error(path, e))
        }
        GetResultPayload::Stream(stream) => read_stream(stream, size, covered, path).await,
    }
}

/// [`fetch`] from a local directory: the file `LocalFileSystem` keeps the object in is opened,
/// sized and read in one blocking task (an object_store `get` would open it in one task and
/// read it in another, one dispatch more on the critical path).
async fn fetch_local(
    local: &LocalFileSystem,
    path: &Path,
    unchecked_tail: usize,
) -> Result<Fetched> {
    let file_path = local
        .path_to_filesystem(path)
        .map_err(|e| CheckpointError::store("get", path, e))?;
    let location = path.clone();
    let read = tokio::task::spawn_blocking(move || {
        let not_found = |e: std::io::Error| {
            let source = object_store::Error::NotFound {
                path: location.to_string(),
                source: Box::new(e),
            };
            CheckpointError::store("get", &location, source)
        };
        let file = match std::fs::File::open(&file_path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(e)),
            Err(e) => return Err(io_error(&location, e)),
        };
        let meta = file.metadata().map_err(|e| io_error(&location, e))?;
        if meta.is_dir() {
            return Err(not_found(std::io::Error::other("is a directory")));
        }
        let size = usize::try_from(meta.len()).map_err(|_| {
            CheckpointError::corrupt("object", &location, "size does not fit in memory")
        })?;
        read_file(file, size, size.saturating_sub(unchecked_tail))
            .map_err(|e| io_error(&location, e))
    });
    read.await
        .map_err(|e| io_error(path, std::io::Error::other(e)))?
}

fn io_error(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        context: format!("reading {path}"),
        source,
    }
}

/// Reads `size` bytes of `file` into one buffer, one region per core: the calling (blocking)
/// thread reads the first, threads of Tokio's blocking pool the others (see the module docs).
/// The buffer is filled by the reads themselves: it is never zeroed first.
///
/// A region no pool thread has started yet when the calling thread is done with its own is
/// read by the calling thread: a busy (or one-thread) blocking pool slows a read down, it never
/// deadlocks it.
fn read_file(file: std::fs::File, size: usize, covered: usize) -> std::io::Result<Fetched> {
    let pool = tokio::runtime::Handle::try_current().ok();
    let regions = match &pool {
        Some(_) if size >= LOCAL_PARALLEL_MIN => checksum::threads(),
        _ => 1,
    };
    let plan = Regions {
        size,
        len: size.div_ceil(regions).max(1),
        covered,
    };
    let count = size.div_ceil(plan.len);
    let file = Arc::new(file);
    let buf = Arc::new(FillBuf::new(size));
    let claimed: Arc<Vec<AtomicBool>> =
        Arc::new((0..count).map(|_| AtomicBool::new(false)).collect());
    let (done, results) = std::sync::mpsc::channel();
    for i in 1..count {
        let (file, buf, claimed, done) = (
            Arc::clone(&file),
            Arc::clone(&buf),
            Arc::clone(&claimed),
            done.clone(),
        );
        let task = move || {
            if !claimed[i].swap(true, Ordering::AcqRel) {
                // The receiver only goes away when the read already failed.
                let _ = done.send((i, plan.read(&file, &buf, i)));
            }
        };
        if let Some(pool) = &pool {
            drop(pool.spawn_blocking(task));
        }
    }
    drop(done);
    let mut crcs = vec![None; count];
    let mut awaited = 0;
    for (i, crc) in crcs.iter_mut().enumerate() {
        if claimed[i].swap(true, Ordering::AcqRel) {
            awaited += 1;
        } else {
            *crc = Some(plan.read(&file, &buf, i)?);
        }
    }
    for (i, result) in results.iter().take(awaited) {
        crcs[i] = Some(result?);
    }
    let mut crc = 0u32;
    for part in crcs {
        let (region_crc, len) =
            part.ok_or_else(|| std::io::Error::other("a region's read did not finish"))?;
        crc = checksum::combine(crc, region_crc, len);
    }
    Ok(Fetched {
        bytes: Bytes::from_owner(Filled(buf)),
        crc,
    })
}

/// How a local read splits its buffer: regions of `len` bytes (the last one shorter) of a
/// `size`-byte file, checksummed below `covered`.
#[derive(Clone, Copy)]
struct Regions {
    size: usize,
    len: usize,
    covered: usize,
}

impl Regions {
    /// Reads region `i` of the file into its place in `buf`. Call at most once per region
    /// (the `claimed` flags of `read_file` see to it).
    fn read(&self, file: &std::fs::File, buf: &FillBuf, i: usize) -> std::io::Result<(u32, usize)> {
        let start = i * self.len;
        let len = self.len.min(self.size - start);
        // SAFETY: region `i` is read once, by whoever claimed it, and regions are disjoint;
        // `buf` is only read (`Filled`) once every region's result is in.
        let slot = unsafe { buf.region(start, len) };
        read_region(file, slot, start, self.covered)
    }
}

/// A buffer filled by several blocking tasks, each through its own disjoint region. Shared by
/// `Arc`, so a read whose future is dropped never leaves a task writing into freed memory.
struct FillBuf {
    ptr: *mut MaybeUninit<u8>,
    len: usize,
}

// SAFETY: the buffer is plain bytes owned by this value; concurrent access goes through
// disjoint regions (`region`) and, once those writers are done, shared reads (`Filled`).
unsafe impl Send for FillBuf {}
// SAFETY: as above: no two threads ever touch the same byte while one of them writes it.
unsafe impl Sync for FillBuf {}

impl FillBuf {
    fn new(len: usize) -> Self {
        let ptr = Box::into_raw(Box::<[u8]>::new_uninit_slice(len)).cast::<MaybeUninit<u8>>();
        Self { ptr, len }
    }

    /// Bytes `start..start + len` of the buffer.
    ///
    /// # Safety
    /// The range is in bounds, and no other reference to any of its bytes exists while the
    /// returned slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn region(&self, start: usize, len: usize) -> &mut [MaybeUninit<u8>] {
        debug_assert!(start + len <= self.len);
        // SAFETY: in bounds of the allocation, and exclusive, by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

impl Drop for FillBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are those of the boxed slice made in `new`, freed only here.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
    }
}

/// A [`FillBuf`] every byte of which was written: readable as bytes.
struct Filled(Arc<FillBuf>);

impl AsRef<[u8]> for Filled {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: only built once every region's task wrote its whole region (`read_file`
        // returns an error otherwise), and no writer is left.
        unsafe { std::slice::from_raw_parts(self.0.ptr.cast::<u8>(), self.0.len) }
    }
}

/// Fills `region` (which starts at byte `offset` of the file) step by step, checksumming each
/// step's bytes below `covered`; returns the checksum and how many bytes it covers. Fails unless
/// it filled the whole region.
fn read_region(
    file: &std::fs::File,
    region: &mut [MaybeUninit<u8>],
    offset: usize,
    covered: usize,
) -> std::io::Result<(u32, usize)> {
    let (mut crc, mut crc_len) = (0u32, 0usize);
    for (i, step) in region.chunks_mut(LOCAL_STEP).enumerate() {
        let at = offset + i * LOCAL_STEP;
        let step = pread_exact(file, step, at)?;
        let upto = covered.saturating_sub(at).min(step.len());
        crc = checksum::append(crc, &step[..upto]);
        crc_len += upto;
    }
    Ok((crc, crc_len))
}

/// Fills `buf` from byte `offset` of `file`; returns it as initialized bytes.
fn pread_exact<'a>(
    file: &std::fs::File,
    buf: &'a mut [MaybeUninit<u8>],
    offset: usize,
) -> std::io::Result<&'a [u8]> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        let at = libc::off_t::try_from(offset + filled)
            .map_err(|_| std::io::Error::other("offset out of range"))?;
        // SAFETY: the pointer and length describe `rest`, memory this function may write for
        // its whole duration; the kernel writes at most `rest.len()` bytes into it.
        let n = unsafe { libc::pread(file.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len(), at) };
        match n {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => filled += n as usize,
        }
    }
    // SAFETY: the loop above wrote every byte of `buf` (it returns early otherwise), and
    // `MaybeUninit<u8>` has the layout of `u8`.
    Ok(unsafe { &*(buf as *const [MaybeUninit<u8>] as *const [u8]) })
}

/// Collects a stream of `size` bytes, checksumming each chunk as it arrives. A single chunk
/// that holds the whole object is returned as is (no copy).
async fn read_stream(
    mut stream: BoxStream<'static, object_store::Result<Bytes>>,
    size: usize,
    covered: usize,
    path: &Path,
) -> Result<Fetched> {
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let (mut crc, mut at) = (0u32, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CheckpointError::store("read", path, e))?;
        let upto = covered.saturating_sub(at).min(chunk.len());
        crc = checksum::append(crc, &chunk[..upto]);
        at += chunk.len();
        match first.take() {
            None if joined.is_empty() => first = Some(chunk),
            None => joined.extend_from_slice(&chunk),
            Some(earlier) => {
                joined.reserve_exact(size.max(at));
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&chunk);
            }
        }
    }
    let bytes = first.unwrap_or_else(|| Bytes::from(joined));
    Ok(Fetched { bytes, crc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn file_reads_checksum_all_but_the_tail() {
        let dir = tempfile::tempdir().expect("temp dir");
        for len in [
            0,
            1,
            100,
            LOCAL_STEP + 3,
            3 * 1024 * 1024 + 17,
            LOCAL_PARALLEL_MIN,
            2 * LOCAL_PARALLEL_MIN + 17,
        ] {
            let bytes = data(len);
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).expect("write");
            for tail in [0, 16, LOCAL_STEP + 1] {
                let file = std::fs::File::open(&path).expect("open");
                let covered = len.saturating_sub(tail);
                let got = tokio::task::spawn_blocking(move || read_file(file, len, covered))
                    .await
                    .expect("join")
                    .expect("read");
                assert_eq!(&got.bytes[..], &bytes[..], "len {len}");
                assert_eq!(
                    got.crc,
                    crc32c::crc32c(&bytes[..covered]),
                    "len {len} tail {tail}"
                );
            }
        }
    }

    #[test]
    fn a_one_thread_blocking_pool_reads_every_region_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = data(3 * LOCAL_PARALLEL_MIN + 5);
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).expect("write");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .expect("runtime");
        let got = runtime.block_on(async {
            let file = std::fs::File::open(&path).expect("open");
            let len = bytes.len();
            tokio::task::spawn_blocking(move || read_file(file, len, len))
                .await
                .expect("join")
                .expect("read")
        });
        assert_eq!(&got.bytes[..], &bytes[..]);
        assert_eq!(got.crc, crc32c::crc32c(&bytes));
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_size_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("short");
        std::fs::write(&path, data(1000)).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let read = tokio::task::spawn_blocking(move || read_file(file, 2 * LOCAL_PARALLEL_MIN, 0));
        assert!(read.await.expect("join").is_err());
    }

    #[tokio::test]
    async fn streams_checksum_all_but_the_tail_across_chunks() {
        let bytes = data(10_000);
        for cuts in [vec![10_000], vec![1, 9_999], vec![4_000, 5_990, 10]] {
            let mut chunks = Vec::new();
            let mut at = 0;
            for len in &cuts {
                chunks.push(Ok(Bytes::copy_from_slice(&bytes[at..at + len])));
                at += len;
            }
            let stream = futures::stream::iter(chunks).boxed();
            let got = read_stream(stream, bytes.len(), bytes.len() - 16, &Path::from("x"))
                .await
                .expect("read");
            assert_eq!(&got.bytes[..], &bytes[..]);
            assert_eq!(
                got.crc,
                crc32c::crc32c(&bytes[..bytes.len() - 16]),
                "{cuts:?}"
            );
        }
    }
}
