//! A real Apache Kafka 4.4 broker (single-node KRaft) started by the Java launcher in
//! `test-support/kafka`.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

use super::{
    STARTUP_TIMEOUT, ensure_installed, free_port, repo_root, spawn_tied_to_process, stop_at_exit,
    stop_child, tail_of,
};

/// How long the launcher may take to answer one command (it waits for partition leaders).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// The Kafka launcher jar that `scripts/setup-test-servers.sh` builds (its dependencies are in
/// `lib/` beside it).
pub fn kafka_jar() -> PathBuf {
    repo_root().join("test-support/kafka/target/tidemark-kafka.jar")
}

/// A running single-node Apache Kafka cluster on 127.0.0.1: one process that is both broker and
/// KRaft controller, with empty storage formatted under a fresh cluster id.
///
/// Topics are not created automatically (`auto.create.topics.enable=false`): create each with
/// [`Kafka::create_topic`]. Internal topics (`__consumer_offsets`, transaction state) have
/// replication factor 1 and a single partition, and consumer groups rebalance without delay, so
/// consumer-group offset commits work on this one node.
pub struct Kafka {
    child: Child,
    commands: Mutex<Commands>,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The launcher's command channel: lines to its stdin, answers from its stdout.
struct Commands {
    /// Closing it tells the launcher to shut the broker down.
    stdin: Option<ChildStdin>,
    /// Every stdout line after `READY`.
    answers: mpsc::Receiver<String>,
}

impl Kafka {
    /// Starts a fresh broker on free ports and waits for the launcher's `READY` line, which it
    /// prints once the broker answers an Admin client.
    ///
    /// Panics with the reason if Java or the launcher jar is missing (after trying
    /// `scripts/setup-test-servers.sh`), and with the broker's log if it exits or does not become
    /// ready within the start-up timeout.
    pub fn start() -> Kafka {
        ensure_installed();
        let jar = kafka_jar();
        assert!(
            jar.exists(),
            "{} is missing: run scripts/setup-test-servers.sh",
            jar.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("tidemark-kafka-")
            .tempdir()
            .expect("temp dir for Kafka");
        let log = dir.path().join("kafka.log");
        let port = free_port();
        let mut child = spawn_launcher(&jar, port, dir.path(), &log);
        stop_at_exit(child.id(), dir.path());
        let stdin = child.stdin.take();
        let lines = read_lines(child.stdout.take().expect("piped stdout"));
        if let Err(reason) = wait_ready(&lines, &mut child) {
            let _ = child.kill();
            panic!("Kafka {reason}; log:\n{}", tail_of(&log));
        }
        Kafka {
            child,
            commands: Mutex::new(Commands {
                stdin,
                answers: lines,
            }),
            port,
            log,
            _dir: dir,
        }
    }

    /// `127.0.0.1:<port>`, the broker's PLAINTEXT listener (`bootstrap.servers`).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `name` with `partitions` partitions (replication factor 1). Returns once every
    /// partition has a leader, so producing to and fetching from any of them works at once.
    ///
    /// Errors: [`std::io::ErrorKind::AlreadyExists`] if the topic exists,
    /// [`std::io::ErrorKind::InvalidInput`] for a name with whitespace, and
    /// [`std::io::ErrorKind::Other`] with the broker's reason for anything else (the launcher is
    /// gone, it did not answer in time, or the broker refused).
    pub fn create_topic(&self, name: &str, partitions: u32) -> std::io::Result<()> {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("bad topic name {name:?}"),
            ));
        }
        let answer = self.command(&format!("create-topic {name} {partitions}"))?;
        match answer.strip_prefix("ERR ") {
            None if answer == "OK" => Ok(()),
            Some(reason) if reason.starts_with("TopicExistsException") => Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                reason.to_string(),
            )),
            Some(reason) => Err(std::io::Error::other(format!(
                "creating topic {name}: {reason}"
            ))),
            None => Err(std::io::Error::other(format!(
                "unexpected answer from the Kafka launcher: {answer:?}"
            ))),
        }
    }

    /// Sends one command line and returns the launcher's one-line answer.
    fn command(&self, line: &str) -> std::io::Result<String> {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let Commands { stdin, answers } = &mut *commands;
        let stdin = stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the Kafka launcher's stdin is closed"))?;
        // An answer that came after an earlier command timed out belongs to no one now.
        while answers.try_recv().is_ok() {}
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        answers.recv_timeout(COMMAND_TIMEOUT).map_err(|e| {
            std::io::Error::other(format!(
                "no answer to `{line}` from the Kafka launcher ({e}); log:\n{}",
                tail_of(&self.log)
            ))
        })
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let commands = self.commands.get_mut().unwrap_or_else(|p| p.into_inner());
        drop(commands.stdin.take());
        stop_child(&mut self.child);
    }
}

/// The Kafka broker shared by this test binary (started on first use).
///
/// Tests that share it should use topic and group names of their own (see
/// [`unique_name`](super::unique_name)).
pub fn kafka() -> &'static Kafka {
    static SERVER: OnceLock<Kafka> = OnceLock::new();
    SERVER.get_or_init(Kafka::start)
}

/// Spawns the launcher with the broker on `port`, the controller on another free port, storage in
/// `dir`, and its stderr (the broker's log) in `log`.
fn spawn_launcher(jar: &Path, port: u16, dir: &Path, log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("create kafka log");
    let mut command = Command::new("java");
    command
        .args([
            "-Xmx512m",
            "-XX:+UseSerialGC",
            // C1 only: the broker starts about a second sooner and tests move little data.
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-jar",
        ])
        .arg(jar)
        .arg(port.to_string())
        .arg(free_port().to_string())
        .arg(dir.join("broker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file);
    spawn_tied_to_process(command).expect("spawn java for Kafka (is Java 17 installed?)")
}

/// Forwards the launcher's stdout lines to the returned channel until it closes.
fn read_lines(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if tx.send(line.trim().to_string()).is_err() {
                break;
            }
            line.clear();
        }
    });
    rx
}

/// Waits for the `READY` line; the error says why the broker is not ready.
fn wait_ready(lines: &mpsc::Receiver<String>, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with("READY ") => return Ok(()),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("did not become ready within {STARTUP_TIMEOUT:?}"));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = match child.wait() {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("status unknown: {e}"),
                };
                return Err(format!("exited during start-up ({status})"));
            }
        }
    }
}
