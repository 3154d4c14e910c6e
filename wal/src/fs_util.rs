//! Small file-system helpers: block reservation, directory sync, the writer lock.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Result, WalError};

/// Reserves `len` bytes of disk blocks for `file`, growing it to `len`.
///
/// Running out of space (or over a file-size limit) fails here, when a segment
/// is created, and never later as a SIGBUS on a mapped page.
pub(crate) fn reserve_blocks(file: &File, len: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `file` is an open descriptor for the duration of the call; fallocate
    // reads no memory of ours.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(err);
    }
    // SAFETY: as above; posix_fallocate writes zeros where the file system lacks fallocate.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Writes all of `bufs`, back to back, at `offset` of `file` (`pwritev`,
/// repeated after a short write or an interrupt). Allocates nothing: `bufs`
/// is consumed in place as it is written.
pub(crate) fn pwrite_all_vectored(
    file: &File,
    mut offset: u64,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0); // skip leading empty buffers
    while !bufs.is_empty() {
        let at = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let count = libc::c_int::try_from(bufs.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix, and
        // each one points into a slice borrowed for the call with its exact length;
        // the kernel only reads them. `file` is open.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                bufs.as_ptr().cast::<libc::iovec>(),
                count,
                at,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        offset += n as u64;
        IoSlice::advance_slices(&mut bufs, n as usize);
    }
    Ok(())
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("sync directory", dir, e))
}

/// Creates `dir` and any missing ancestors, and makes each new entry durable
/// by syncing the directory that holds it: a log created just before a crash
/// is still there after it.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        // Another process created it between the check and here.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(WalError::io("create log directory", dir, e)),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => sync_dir(Path::new(".")),
    }
}

/// The advisory lock that makes one process the writer of a log directory.
/// Released when dropped (or when the process dies).
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir/LOCK` without waiting.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path: PathBuf = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| WalError::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(WalError::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(WalError::io("lock", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_write_lands_every_buffer_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("open");
        let big = vec![7u8; 100_000];
        let mut bufs = [
            IoSlice::new(&[]),
            IoSlice::new(b"head"),
            IoSlice::new(&[]),
            IoSlice::new(&big),
        ];
        pwrite_all_vectored(&file, 5, &mut bufs).expect("pwritev");
        let back = std::fs::read(&path).expect("read");
        assert_eq!(back.len(), 5 + 4 + big.len());
        assert_eq!(&back[..5], &[0; 5]);
        assert_eq!(&back[5..9], b"head");
        assert!(back[9..].iter().all(|&b| b == 7));
    }

    #[test]
    fn creates_missing_ancestors_and_accepts_existing_dirs() {
        let root = tempfile::tempdir().expect("tempdir");
        let deep = root.path().join("a").join("b").join("log");
        create_dir_durable(&deep).expect("create");
        assert!(deep.is_dir());
        create_dir_durable(&deep).expect("existing dir is fine");
    }

    #[test]
    fn a_file_in_the_way_is_an_error_naming_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        let err = create_dir_durable(&file.join("log")).expect_err("file in the way");
        // The error names the entry in the way, not the directory asked for.
        assert!(
            err.to_string().contains(&format!("{}:", file.display())),
            "{err}"
        );
    }
}
