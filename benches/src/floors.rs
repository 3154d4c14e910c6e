//! The concurrent durable floor: the honest best a hand-rolled group commit can
//! do on this disk, to measure multi-writer WALs against.
//!
//! Writers reserve an offset in a preallocated, zero-filled file (one atomic
//! add), `pwrite` their record there, and then wait for one `fdatasync` that
//! started after their write: the first waiter with no sync in flight becomes
//! the leader and syncs for everyone who wrote before it started (classic
//! leader/follower group commit). No framing, no checksums, no ordering of
//! records: whatever a log must do beyond this is its overhead.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::preallocated_file;

/// Leader/follower group commit over a plain preallocated file.
///
/// Guarantee: [`GroupCommitFloor::write`] returns `Ok` only after an
/// `fdatasync` that started after the record's `pwrite` completed has returned.
pub struct GroupCommitFloor {
    file: File,
    /// Bytes the writers cycle through (a whole number of records).
    capacity: u64,
    next: AtomicU64,
    state: Mutex<Syncs>,
    synced: Condvar,
}

/// Syncs are numbered from 1; at most one is in flight (`started > done`).
#[derive(Default)]
struct Syncs {
    started: u64,
    done: u64,
    failed: bool,
}

impl GroupCommitFloor {
    /// Over a zero-filled file of `len` bytes at `path`, for records of `record_len` bytes.
    pub fn new(path: &Path, len: u64, record_len: u64) -> io::Result<Self> {
        if record_len == 0 || record_len > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("record length {record_len} does not fit a {len}-byte floor file"),
            ));
        }
        Ok(GroupCommitFloor {
            file: preallocated_file(path, len)?,
            capacity: len / record_len * record_len,
            next: AtomicU64::new(0),
            state: Mutex::new(Syncs::default()),
            synced: Condvar::new(),
        })
    }

    /// One durable write from any thread; wraps around at the end of the file.
    pub fn write(&self, record: &[u8]) -> io::Result<()> {
        let off = self.next.fetch_add(record.len() as u64, Ordering::Relaxed) % self.capacity;
        self.file.write_all_at(record, off)?;
        self.sync_after_write()
    }

    /// Waits for (or runs, as leader) a sync that starts after this call.
    fn sync_after_write(&self) -> io::Result<()> {
        let mut st = self.lock();
        let ticket = st.started; // syncs numbered above this start after our write
        loop {
            if st.failed {
                return Err(io::Error::other("an earlier fdatasync of the floor failed"));
            }
            if st.done > ticket {
                return Ok(());
            }
            if st.started > st.done {
                st = self.synced.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.started += 1;
            let mine = st.started;
            drop(st);
            let res = self.file.sync_data();
            st = self.lock();
            st.done = mine;
            st.failed |= res.is_err();
            self.synced.notify_all();
            return res;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Syncs> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writes_land_and_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let floor = GroupCommitFloor::new(&dir.path().join("floor"), 1 << 20, 1024).expect("new");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let floor = &floor;
                s.spawn(move || {
                    for _ in 0..50 {
                        floor.write(&[t + 1; 1024]).expect("write");
                    }
                });
            }
        });
        let st = floor.lock();
        assert!(st.done >= 1 && st.done == st.started && !st.failed);
        assert!(
            st.done <= 400,
            "one sync per write at most, got {}",
            st.done
        );
        drop(st);
        let mut buf = vec![0u8; 400 * 1024];
        floor.file.read_exact_at(&mut buf, 0).expect("read");
        for rec in buf.chunks(1024) {
            assert!(rec[0] >= 1 && rec[0] <= 8 && rec.iter().all(|&b| b == rec[0]));
        }
    }

    #[test]
    fn rejects_records_larger_than_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(GroupCommitFloor::new(&dir.path().join("f"), 512, 1024).is_err());
    }
}
