//! The whole stream layer with real processes: this test binary runs as the
//! application (supervisor, driver, executors: test `app`), a TCP line server
//! in the test feeds it, and the tests read the batch files it writes, kill
//! its processes and stop it with SIGTERM.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tidemark_stream::StreamConf;
use tidemark_stream::recoverable_count::{read_ids, run};
use tidemark_stream::supervisor::{PidsFile, RUN_DIR_ENV};
use tidemark_test_servers::child::rerun_self;

mod kafka_support;

/// Set for the application's processes: its arguments.
const ARGS_ENV: &str = "TIDEMARK_E2E_ARGS";

/// The application side: does nothing unless started by these tests.
#[test]
fn app() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let mut conf = StreamConf::from_args(args.split_whitespace().map(str::to_owned)).expect("conf");
    if let Some(dir) = std::env::var_os(RUN_DIR_ENV) {
        conf.run_dir = Some(PathBuf::from(dir));
    }
    let code = match run(conf) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("app failed: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// A line server: the newest connection gets the lines queued from then on
/// (a receiver restarted elsewhere takes over; a dying one gets nothing more,
/// so the tests count what the stream layer loses, not what TCP had in flight).
struct LineServer {
    port: u16,
    queue: Arc<Mutex<VecDeque<String>>>,
    connections: Arc<AtomicU64>,
}

impl LineServer {
    fn start() -> LineServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let connections = Arc::new(AtomicU64::new(0));
        let (q, n) = (queue.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let generation = n.fetch_add(1, Ordering::AcqRel) + 1;
                let (q, n) = (q.clone(), n.clone());
                std::thread::spawn(move || serve(stream, &q, &n, generation));
            }
        });
        LineServer {
            port,
            queue,
            connections,
        }
    }

    fn send(&self, ids: std::ops::Range<u32>) {
        self.queue
            .lock()
            .extend(ids.map(|i| format!("{i} payload-{i}")));
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }
}

fn serve(
    mut stream: std::net::TcpStream,
    queue: &Mutex<VecDeque<String>>,
    newest: &AtomicU64,
    generation: u64,
) {
    while newest.load(Ordering::Acquire) == generation {
        let line = queue.lock().pop_front();
        match line {
            Some(l) => {
                if stream.write_all(format!("{l}\n").as_bytes()).is_err() {
                    queue.lock().push_front(l);
                    return;
                }
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

struct App {
    child: Child,
    out: PathBuf,
}

impl App {
    fn start(dir: &Path, server: &LineServer, extra: &str) -> App {
        App::start_from(dir, &format!("tcp://127.0.0.1:{}", server.port), extra)
    }

    fn start_from(dir: &Path, source: &str, extra: &str) -> App {
        let out = dir.join("out");
        let args = format!(
            "--source {source} --out {} --checkpoint file://{} --batch-ms 500 --executors 2 {extra}",
            out.display(),
            dir.join("ckpt").display()
        );
        let child = rerun_self("app")
            .env(ARGS_ENV, args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("app");
        App { child, out }
    }

    fn ids(&self) -> BTreeMap<String, u32> {
        read_ids(&self.out).unwrap_or_default()
    }

    fn wait_for_ids(&self, want: std::ops::Range<u32>, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ids = self.ids();
            if want.clone().all(|i| ids.contains_key(&i.to_string())) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: have {} ids",
                ids.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pids(&self) -> Option<PidsFile> {
        PidsFile::read(&self.out).ok()
    }

    fn wait_for_pids(&self, what: &str, check: impl Fn(&PidsFile) -> bool) -> PidsFile {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(p) = self.pids()
                && check(&p)
            {
                return p;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to the supervisor; the run must end well within a minute.
    fn stop(mut self) -> BTreeMap<String, u32> {
        kill(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "the run ended with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the run did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let pids = self.pids().expect("pids.json");
        assert!(pids.processes.is_empty(), "processes left: {pids:?}");
        self.ids()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(pid: u32, sig: libc::c_int) {
    // SAFETY: a signal to a pid of this test's own child processes.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn exactly(ids: &BTreeMap<String, u32>, want: std::ops::Range<u32>) {
    let missing: Vec<u32> = want
        .clone()
        .filter(|i| !ids.contains_key(&i.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} ids lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let extra: Vec<&String> = ids
        .keys()
        .filter(|k| k.parse::<u32>().map_or(true, |i| !want.contains(&i)))
        .collect();
    assert!(extra.is_empty(), "ids never sent: {extra:?}");
}

#[test]
fn every_line_is_counted_once_and_sigterm_stops_the_run_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LineServer::start();
    let app = App::start(dir.path(), &server, "");
    server.send(0..2000);
    app.wait_for_ids(0..2000, "every line");
    let ids = app.stop();
    exactly(&ids, 0..2000);
    assert!(ids.values().all(|&n| n == 1), "an id in two batches");
}

#[test]
fn a_killed_driver_is_restarted_and_resumes_from_its_checkpoint_and_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LineServer::start();
    let wal = dir.path().join("wal");
    let app = App::start(dir.path(), &server, &format!("--wal {}", wal.display()));
    server.send(0..500);
    app.wait_for_ids(0..500, "the first lines");
    let before = app.wait_for_pids("a driver", |p| p.driver().is_some());
    let old = before.driver().expect("driver");
    let connected = server.connections();
    let killed_at = Instant::now();
    kill(old, libc::SIGKILL);
    app.wait_for_pids("a restarted driver", |p| {
        p.driver().is_some_and(|d| d != old)
    });
    // The new driver's receiver connects; then more lines come.
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.connections() == connected {
        assert!(
            Instant::now() < deadline,
            "no receiver reconnected after the driver restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.send(500..1000);
    app.wait_for_ids(500..1000, "the lines after the restart");
    eprintln!(
        "driver kill to every later line counted: {:?}",
        killed_at.elapsed()
    );
    let ids = app.stop();
    exactly(&ids, 0..1000);
    assert!(
        dir.path()
            .join("ckpt")
            .read_dir()
            .expect("checkpoint dir")
            .next()
            .is_some()
    );
}

/// The pid of the executor whose receiver is connected to `port`.
fn receiver_host(executors: &[(u32, u32)], port: u16) -> Option<u32> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let remote = format!(":{port:04X}");
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[2].ends_with(&remote) && f[3] == "01").then(|| f[9].to_string())
        })
        .collect();
    executors.iter().map(|&(_, pid)| pid).find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .map(|t| {
                        inodes
                            .iter()
                            .any(|i| t.to_string_lossy() == format!("socket:[{i}]"))
                    })
                    .unwrap_or(false)
            })
    })
}

#[test]
fn the_receiver_moves_to_another_executor_when_its_executor_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LineServer::start();
    let app = App::start(dir.path(), &server, "");
    server.send(0..300);
    app.wait_for_ids(0..300, "the first lines");
    let pids = app.wait_for_pids("two executors", |p| p.executors().len() == 2);
    let host = receiver_host(&pids.executors(), server.port).expect("the receiver's executor");
    let connected = server.connections();
    kill(host, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.connections() == connected {
        assert!(
            Instant::now() < deadline,
            "the receiver was not restarted elsewhere"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.send(300..600);
    app.wait_for_ids(300..600, "the lines after the executor died");
    let ids = app.stop();
    exactly(&ids, 0..600);
}

/// Produces the lines `<id> v` for `ids`, spread over two partitions.
fn produce(topic: &str, ids: std::ops::Range<u32>) {
    let records: Vec<kafka_support::Produce> = ids
        .map(|i| kafka_support::Produce {
            partition: (i % 2) as i32,
            key: None,
            value: Some(format!("{i} v")),
        })
        .collect();
    kafka_support::produce(topic, &records);
}

/// SIGKILLs `pid` 400 ms into a 500 ms batch interval: late enough that the
/// blocks stored since the last batch are waiting for the next one, so the
/// kill takes stored, reported, unprocessed blocks with it.
fn kill_mid_batch(pid: u32) {
    let since_batch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        % 500;
    std::thread::sleep(Duration::from_millis((400 + 500 - since_batch) % 500));
    kill(pid, libc::SIGKILL);
}

/// Produces `ids` in chunks of 50 every 50 ms, on a thread.
fn produce_paced(topic: &str, ids: std::ops::Range<u32>) -> std::thread::JoinHandle<()> {
    let topic = topic.to_string();
    std::thread::spawn(move || {
        let mut from = ids.start;
        while from < ids.end {
            let to = (from + 50).min(ids.end);
            produce(&topic, from..to);
            from = to;
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[test]
fn a_reliable_kafka_receiver_with_the_wal_loses_nothing_when_its_executor_then_its_driver_die() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bootstrap = kafka_support::bootstrap();
    let broker_port: u16 = bootstrap
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("broker port");
    let topic = kafka_support::topic("recoverable", 2);
    let wal = dir.path().join("wal");
    let app = App::start_from(
        dir.path(),
        &format!("kafka://{bootstrap}/{topic}"),
        &format!("--wal {}", wal.display()),
    );
    produce(&topic, 0..500);
    app.wait_for_ids(0..500, "the first records");

    // Mid-stream, the executor hosting the receiver dies with its group
    // membership and the only block-store copies of its blocks.
    let pids = app.wait_for_pids("two executors", |p| p.executors().len() == 2);
    let host = receiver_host(&pids.executors(), broker_port).expect("the receiver's executor");
    let flowing = produce_paced(&topic, 500..2000);
    app.wait_for_ids(500..700, "records flowing");
    kill_mid_batch(host);
    flowing.join().expect("producer");
    app.wait_for_ids(
        500..2000,
        "every record produced around the executor's death",
    );

    // Mid-stream again, the driver dies; the supervisor restarts it and it
    // resumes from its checkpoint, its metadata WAL and the receiver WAL.
    let old = app
        .wait_for_pids("a driver", |p| p.driver().is_some())
        .driver()
        .expect("driver");
    let flowing = produce_paced(&topic, 2000..3500);
    app.wait_for_ids(2000..2200, "records flowing");
    kill_mid_batch(old);
    flowing.join().expect("producer");
    app.wait_for_pids("a restarted driver", |p| {
        p.driver().is_some_and(|d| d != old)
    });
    app.wait_for_ids(
        2000..3500,
        "every record produced around the driver's death",
    );

    let ids = app.stop();
    exactly(&ids, 0..3500);
    let twice = ids.values().filter(|&&n| n > 1).count();
    eprintln!(
        "{twice} of 3500 records were counted in more than one batch (at-least-once after the kills)"
    );
}
