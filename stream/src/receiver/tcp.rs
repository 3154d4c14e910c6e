//! A receiver of `\n`-separated lines from a TCP server (Spark's
//! `socketTextStream`).
//!
//! Unreliable, like Spark's: each line is `store()`d, and lines buffered in
//! the block generator when the process dies are lost; TCP has no way to ask
//! the server again. Lines are raw bytes (no UTF-8 check), without the `\n`
//! and a `\r` before it. A line longer than `max_line_len` is counted,
//! reported through `report_error` and skipped, using no more memory than the
//! limit. On EOF or a connection error the receiver asks for a restart: after
//! `retry_delay` when the connection had been made, and after a delay doubling
//! with each further failed connect up to `max_retry_delay` while the server
//! is unreachable. A connect that succeeds resets the delay.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::StreamError;
use crate::receiver::context::{Receiver, ReceiverContext};
use crate::receiver::lines::{Line, LineSplitter};

/// The default longest line: 1 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 1 << 20;

/// Where to connect and how to behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpLineConfig {
    /// `host:port`.
    pub addr: String,
    /// Longest line kept, in bytes before the `\n`.
    pub max_line_len: usize,
    /// Limit on each connect attempt.
    pub connect_timeout: Duration,
    /// The restart delay after a lost connection, and the first after a failed connect.
    pub retry_delay: Duration,
    /// The longest restart delay while the server stays unreachable.
    pub max_retry_delay: Duration,
}

impl TcpLineConfig {
    /// Defaults for `addr`: 1 MiB lines, a 10 s connect timeout, retries from
    /// 2 s (Spark's restart delay) up to 60 s.
    pub fn new(addr: impl Into<String>) -> TcpLineConfig {
        TcpLineConfig {
            addr: addr.into(),
            max_line_len: DEFAULT_MAX_LINE_LEN,
            connect_timeout: Duration::from_secs(10),
            retry_delay: Duration::from_secs(2),
            max_retry_delay: Duration::from_secs(60),
        }
    }

    /// The restart delay after `failures` connects in a row failed (0: the connection was lost).
    pub fn retry_delay_after(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_delay
            .saturating_mul(factor)
            .min(self.max_retry_delay)
    }
}

/// What a [`TcpLineReceiver`] has seen, across all its restarts.
#[derive(Debug, Default)]
pub struct TcpLineCounters {
    records: AtomicU64,
    oversize_lines: AtomicU64,
    connections: AtomicU64,
    failed_connects: AtomicU64,
}

impl TcpLineCounters {
    /// Lines `store()` accepted.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Lines skipped for being over the limit.
    pub fn oversize_lines(&self) -> u64 {
        self.oversize_lines.load(Ordering::Relaxed)
    }

    /// Connections made.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Connect attempts that failed.
    pub fn failed_connects(&self) -> u64 {
        self.failed_connects.load(Ordering::Relaxed)
    }
}

/// The receiver; see the module docs.
pub struct TcpLineReceiver {
    name: String,
    config: Arc<TcpLineConfig>,
    counters: Arc<TcpLineCounters>,
    /// Connects failed in a row.
    failures: Arc<AtomicU32>,
    /// The open connection, so `on_stop` can shut it down under a blocked read.
    conn: Arc<Mutex<Option<TcpStream>>>,
    reader: Option<JoinHandle<()>>,
}

impl TcpLineReceiver {
    /// A receiver for `config`; nothing connects before `on_start`.
    pub fn new(config: TcpLineConfig) -> TcpLineReceiver {
        TcpLineReceiver {
            name: format!("tcp-lines {}", config.addr),
            config: Arc::new(config),
            counters: Arc::default(),
            failures: Arc::default(),
            conn: Arc::default(),
            reader: None,
        }
    }

    /// The counters, shared: keep a clone before handing the receiver over.
    pub fn counters(&self) -> Arc<TcpLineCounters> {
        self.counters.clone()
    }
}

impl Receiver for TcpLineReceiver {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_start(&mut self, ctx: ReceiverContext) -> Result<(), StreamError> {
        let reader = Reader {
            ctx,
            config: self.config.clone(),
            counters: self.counters.clone(),
            failures: self.failures.clone(),
            conn: self.conn.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("tidemark-tcp-lines".into())
            .spawn(move || reader.run())
            .map_err(StreamError::io(format!(
                "start the reader of {}",
                self.name
            )))?;
        self.reader = Some(handle);
        Ok(())
    }

    fn on_stop(&mut self) {
        if let Some(conn) = self.conn.lock().take() {
            // Wakes a blocked read; an error means it is closed already.
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        if let Some(reader) = self.reader.take()
            && reader.join().is_err()
        {
            tracing::error!(receiver = %self.name, "the reader thread panicked");
        }
    }
}

/// One start's reading thread.
struct Reader {
    ctx: ReceiverContext,
    config: Arc<TcpLineConfig>,
    counters: Arc<TcpLineCounters>,
    failures: Arc<AtomicU32>,
    conn: Arc<Mutex<Option<TcpStream>>>,
}

/// Why reading ended.
enum End {
    /// The context stopped: leave quietly.
    Stopped,
    /// The source ended or failed: restart.
    Lost(String),
}

impl Reader {
    fn run(self) {
        let stream = match self.connect() {
            Ok(stream) => stream,
            Err(e) => return self.connect_failed(&e),
        };
        self.failures.store(0, Ordering::Relaxed);
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        tracing::info!(addr = %self.config.addr, "connected");
        let end = match self.register(&stream) {
            Ok(()) => self.read_lines(stream),
            Err(e) => End::Lost(e.to_string()),
        };
        *self.conn.lock() = None;
        if let End::Lost(reason) = end {
            let delay = self.config.retry_delay_after(0);
            self.ctx.restart(&reason, delay);
        }
    }

    fn connect(&self) -> Result<TcpStream, StreamError> {
        let addr = &self.config.addr;
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(StreamError::io(format!("resolve {addr}")))?
            .collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.config.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        let source = last.unwrap_or_else(|| std::io::Error::other("no address"));
        Err(StreamError::io(format!("connect to {addr}"))(source))
    }

    fn connect_failed(&self, error: &StreamError) {
        self.counters
            .failed_connects
            .fetch_add(1, Ordering::Relaxed);
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let delay = self.config.retry_delay_after(failures);
        let reason = format!("cannot connect ({failures} in a row): {error}");
        self.ctx.restart(&reason, delay);
    }

    /// Keeps a handle for `on_stop`; a stop that came first is seen after.
    fn register(&self, stream: &TcpStream) -> Result<(), StreamError> {
        let clone = stream
            .try_clone()
            .map_err(StreamError::io("clone a receiver socket"))?;
        *self.conn.lock() = Some(clone);
        Ok(())
    }

    fn read_lines(&self, mut stream: TcpStream) -> End {
        let mut splitter = LineSplitter::new(self.config.max_line_len);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            if self.ctx.is_stopped() {
                return End::Stopped;
            }
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if self.ctx.is_stopped() => {
                    tracing::debug!(error = %e, "read ended by stop");
                    return End::Stopped;
                }
                Err(e) => return End::Lost(format!("reading {} failed: {e}", self.config.addr)),
            };
            if splitter
                .feed(&buf[..n], &mut |line| self.emit(line))
                .is_err()
            {
                return End::Stopped;
            }
        }
        if let Some(line) = splitter.finish()
            && self.emit(line).is_err()
        {
            return End::Stopped;
        }
        End::Lost(format!("{} closed the connection", self.config.addr))
    }

    /// Stores a line, or counts and reports an oversize one.
    fn emit(&self, line: Line) -> Result<(), StreamError> {
        match line {
            Line::Text(bytes) => {
                self.ctx.store(bytes)?;
                self.counters.records.fetch_add(1, Ordering::Relaxed);
            }
            Line::Oversize { len } => {
                self.counters.oversize_lines.fetch_add(1, Ordering::Relaxed);
                let max = self.config.max_line_len;
                let addr = &self.config.addr;
                let message =
                    format!("skipped a line of {len} bytes from {addr}, longer than {max}");
                tracing::warn!(%message);
                self.ctx.report_error(&message);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_from_the_base_up_to_the_cap() {
        let mut c = TcpLineConfig::new("127.0.0.1:1");
        c.retry_delay = Duration::from_millis(100);
        c.max_retry_delay = Duration::from_millis(700);
        let ms = |n| Duration::from_millis(n);
        let got: Vec<_> = (0..6).map(|f| c.retry_delay_after(f)).collect();
        assert_eq!(got, [ms(100), ms(100), ms(200), ms(400), ms(700), ms(700)]);
        assert_eq!(c.retry_delay_after(u32::MAX), ms(700));
    }
}
