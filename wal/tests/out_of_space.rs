//! Out of space: a child process under a file-size limit runs the log until a
//! new segment cannot be reserved. It must get a clean `WalError` (no SIGBUS, no
//! panic), and the log must reopen with every acknowledged record intact.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{payload, small_opts};
use tidemark_test_servers::child::{assert_succeeded, rerun_self};
use tidemark_wal::{Durability, Lsn, Wal, WalError};

const CHILD_DIR: &str = "TIDEMARK_ENOSPC_CHILD_DIR";

/// The child's body: runs only when re-executed by the test below.
#[test]
fn out_of_space_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let wal = Wal::open(&dir, small_opts(Durability::PerWrite)).expect("child open");
    // From now on no file may grow past 16 KiB: the next segment cannot be reserved.
    // SAFETY: plain libc calls with valid arguments; SIGXFSZ is ignored so that
    // the limit shows as EFBIG from fallocate instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: 16 << 10,
            rlim_max: 16 << 10,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    for s in 0..1_000_000u64 {
        match wal.append(&payload(0, s)) {
            Ok(lsn) => println!("ACK {} {s}", lsn.0),
            Err(e) => {
                let clean = matches!(e, WalError::Io { .. });
                println!("ERR {clean} {e}");
                // The instance stays usable for reads and reports the same error again.
                assert!(wal.read(Lsn(1)).is_ok());
                println!("AGAIN {}", wal.append(&payload(0, s)).is_err());
                return;
            }
        }
    }
}

#[test]
fn a_file_size_limit_gives_a_clean_error_and_the_log_reopens_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rerun_self("out_of_space_child_process")
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run child");
    assert_succeeded(&out, "the child");
    let mut acked = Vec::new();
    let mut err = None;
    for line in BufReader::new(&out.stdout[..]).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("ACK ") {
            let f: Vec<u64> = rest
                .split(' ')
                .map(|x| x.parse().expect("number"))
                .collect();
            acked.push((f[0], f[1]));
        } else if let Some(rest) = line.strip_prefix("ERR ") {
            err = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("AGAIN ") {
            assert_eq!(
                rest, "true",
                "appending after the error must fail again, not corrupt"
            );
        }
    }
    let err = err.expect("the child must hit the limit");
    assert!(
        err.starts_with("true "),
        "expected a clean I/O error, got {err}"
    );
    assert!(
        err.contains("File too large") || err.contains("No space"),
        "error names the cause: {err}"
    );
    assert!(
        acked.len() > 40,
        "the first segments were usable: {} records",
        acked.len()
    );

    let wal =
        Wal::open(dir.path(), small_opts(Durability::PerWrite)).expect("reopen after the limit");
    assert!(
        wal.recovery_report().damage.is_empty(),
        "{:?}",
        wal.recovery_report().damage
    );
    for (lsn, s) in &acked {
        assert_eq!(
            wal.read(Lsn(*lsn)).expect("acknowledged record").data,
            payload(0, *s)
        );
    }
    let next = wal.append(b"space again").expect("append after reopen");
    assert_eq!(next.0, acked.last().expect("acked").0 + 1);
}
