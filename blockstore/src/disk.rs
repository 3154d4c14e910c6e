//! The disk store: one checksummed file per block under hashed subdirectories.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use memmap2::Mmap;

use crate::block_id::BlockId;
use crate::error::BlockError;

/// Number of hashed subdirectories (Spark's `spark.diskStore.subDirectories`).
const SUBDIRS: u32 = 64;
const MAGIC: [u8; 4] = *b"TMBK";
const VERSION: u8 = 1;
const FLAG_COMPRESSED: u8 = 1;
/// Length of the file header.
pub(crate) const HEADER_LEN: usize = 24;

/// Block files under `<root>/<xx>/<block name>`, `xx` being the block name's CRC32C modulo 64
/// in hex.
///
/// File format (little-endian):
/// ```text
/// offset  size  field
///      0     4  magic "TMBK"
///      4     1  version (1)
///      5     1  flags: bit 0 = payload is zstd-compressed
///      6     2  reserved, zero
///      8     8  payload length in bytes
///     16     4  CRC32C of the payload
///     20     4  reserved, zero
///     24     n  payload
/// ```
/// A block is written to `<name>.tmp-<n>` in the same directory and renamed into place, so a
/// reader sees either the whole old file, the whole new one, or none. Files are not fsynced:
/// blocks are a cache whose durability comes from replication (and the WAL), and the store is
/// deleted when the store is dropped. Every read verifies length and checksum.
pub(crate) struct DiskStore {
    root: PathBuf,
    mmap_threshold: u64,
    tmp_counter: AtomicU64,
}

/// A block payload read from disk.
pub(crate) struct DiskBlock {
    pub(crate) data: Bytes,
    pub(crate) compressed: bool,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlockError + '_ {
    move |source| BlockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl DiskStore {
    /// Opens the store at `root`, deleting anything already there: `root` belongs to this store.
    pub(crate) fn open(root: PathBuf, mmap_threshold: u64) -> Result<Self, BlockError> {
        match fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&root)(e)),
        }
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(DiskStore {
            root,
            mmap_threshold,
            tmp_counter: AtomicU64::new(0),
        })
    }

    pub(crate) fn path_of(&self, id: &BlockId) -> PathBuf {
        let name = id.to_string();
        let sub = crc32c::crc32c(name.as_bytes()) % SUBDIRS;
        self.root.join(format!("{sub:02x}")).join(name)
    }

    /// Writes the block's payload; returns the file's size in bytes.
    pub(crate) fn put(
        &self,
        id: &BlockId,
        data: &[u8],
        compressed: bool,
    ) -> Result<u64, BlockError> {
        let path = self.path_of(id);
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!("{id}.tmp-{n}"));
        let result = write_file(&tmp, data, compressed)
            .and_then(|()| fs::rename(&tmp, &path).map_err(io_err(&path)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| (HEADER_LEN + data.len()) as u64)
    }

    /// Reads and verifies the block; `None` if there is no file for it.
    pub(crate) fn get(&self, id: &BlockId) -> Result<Option<DiskBlock>, BlockError> {
        let path = self.path_of(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let file_len = file.metadata().map_err(io_err(&path))?.len();
        let mut header = [0u8; HEADER_LEN];
        file.read_exact(&mut header).map_err(io_err(&path))?;
        let header = parse_header(&header, file_len).map_err(|reason| BlockError::Corrupt {
            path: path.clone(),
            reason,
        })?;
        let data = if header.len >= self.mmap_threshold {
            // SAFETY: block files are never modified in place: writers create a new file and
            // rename it over the old one, and removal unlinks. The mapped inode therefore stays
            // unchanged for the mapping's lifetime.
            let map = unsafe { Mmap::map(&file) }.map_err(io_err(&path))?;
            Bytes::from_owner(map).slice(HEADER_LEN..)
        } else {
            let mut buf = vec![0u8; header.len as usize];
            file.read_exact(&mut buf).map_err(io_err(&path))?;
            Bytes::from(buf)
        };
        let actual = crc32c::crc32c(&data);
        if actual != header.crc {
            return Err(BlockError::Corrupt {
                path,
                reason: format!("checksum {actual:#010x}, header says {:#010x}", header.crc),
            });
        }
        Ok(Some(DiskBlock {
            data,
            compressed: header.compressed,
        }))
    }

    /// Deletes the block's file; `false` if there was none.
    pub(crate) fn remove(&self, id: &BlockId) -> Result<bool, BlockError> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.root) {
            tracing::warn!(root = %self.root.display(), error = %e, "cannot delete block directory");
        }
    }
}

struct Header {
    len: u64,
    crc: u32,
    compressed: bool,
}

fn parse_header(h: &[u8; HEADER_LEN], file_len: u64) -> Result<Header, String> {
    if h[0..4] != MAGIC || h[4] != VERSION {
        return Err("bad magic or version".to_string());
    }
    let len = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(h[16..20].try_into().unwrap_or_default());
    if file_len != HEADER_LEN as u64 + len {
        return Err(format!(
            "file is {file_len} bytes, header says {len} + {HEADER_LEN}"
        ));
    }
    Ok(Header {
        len,
        crc,
        compressed: h[5] & FLAG_COMPRESSED != 0,
    })
}

fn write_file(tmp: &Path, data: &[u8], compressed: bool) -> Result<(), BlockError> {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    header[5] = if compressed { FLAG_COMPRESSED } else { 0 };
    header[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
    header[16..20].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    file.write_all(&header).map_err(io_err(tmp))?;
    file.write_all(data).map_err(io_err(tmp))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_small_and_mapped_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path().join("blocks"), 1024).unwrap();
        for (i, len) in [(1u64, 10usize), (2, 4096)] {
            let id = BlockId::stream(1, i);
            let data: Vec<u8> = (0..len).map(|b| b as u8).collect();
            assert_eq!(
                store.put(&id, &data, i == 2).unwrap(),
                (HEADER_LEN + len) as u64
            );
            let got = store.get(&id).unwrap().unwrap();
            assert_eq!(&got.data[..], &data[..]);
            assert_eq!(got.compressed, i == 2);
            assert!(store.remove(&id).unwrap());
            assert!(store.get(&id).unwrap().is_none());
            assert!(!store.remove(&id).unwrap());
        }
    }

    #[test]
    fn detects_corruption_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path().join("blocks"), 1 << 20).unwrap();
        let id = BlockId::stream(0, 9);
        store.put(&id, b"hello world", false).unwrap();
        let path = store.path_of(&id);
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(store.get(&id), Err(BlockError::Corrupt { .. })));
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(store.get(&id), Err(BlockError::Corrupt { .. })));
    }

    #[test]
    fn open_clears_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blocks");
        fs::create_dir_all(root.join("0a")).unwrap();
        fs::write(root.join("0a").join("input-0-1"), b"stale").unwrap();
        let store = DiskStore::open(root.clone(), 1 << 20).unwrap();
        assert!(store.get(&BlockId::stream(0, 1)).unwrap().is_none());
        assert!(!root.join("0a").exists());
        store.put(&BlockId::stream(0, 1), b"x", false).unwrap();
        drop(store);
        assert!(!root.exists(), "dropping the store deletes its directory");
    }
}
