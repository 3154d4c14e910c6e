//! Helpers shared by the multi-process tests: real `tidemark-node` processes that are always
//! killed and reaped, and polling with a deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Heartbeat settings short enough for tests that wait for a node's removal.
pub const HEARTBEAT_MS: u64 = 100;
pub const HEARTBEAT_TIMEOUT_MS: u64 = 800;

/// A `tidemark-node` child process, SIGKILLed and reaped on drop. Its stdin is a pipe and the
/// node runs with `--exit-on-stdin-close`, so it also dies if the test process does.
pub struct NodeProcess {
    child: Child,
    pub addr: SocketAddr,
    pub id: u64,
    _dir: tempfile::TempDir,
}

impl NodeProcess {
    pub fn spawn(master: Option<SocketAddr>, secret: Option<&str>, extra: &[&str]) -> NodeProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark-node"));
        cmd.arg("--dir").arg(dir.path());
        cmd.args(["--heartbeat-interval-ms", &HEARTBEAT_MS.to_string()]);
        cmd.args(["--heartbeat-timeout-ms", &HEARTBEAT_TIMEOUT_MS.to_string()]);
        cmd.arg("--exit-on-stdin-close").args(extra);
        if let Some(master) = master {
            cmd.arg("--master").arg(master.to_string());
        }
        match secret {
            Some(s) => cmd.env("TIDEMARK_SECRET", s),
            None => cmd.env_remove("TIDEMARK_SECRET"),
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn tidemark-node");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let read = BufReader::new(stdout).read_line(&mut line);
        let mut node = NodeProcess {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            id: 0,
            _dir: dir,
        };
        // Parse "listening <addr> node <id>"; on failure `node` is dropped, killing the child.
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert!(
            read.is_ok() && parts.len() == 4 && parts[0] == "listening",
            "tidemark-node did not start: {line:?}"
        );
        node.addr = parts[1].parse().unwrap();
        node.id = parts[3].parse().unwrap();
        node
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns true or `limit` passes; returns whether it succeeded.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deterministic pseudo-random block contents.
pub fn block_data(seed: u64, len: usize) -> bytes::Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
