//! `tidemark-node`: runs one block-store node in its own process.
//!
//! Without `--master` the node hosts the master itself, so the first node of a cluster is
//! started without it and the others with `--master <its address>`. The shared secret, if
//! any, is read from the `TIDEMARK_SECRET` environment variable (not the command line, where
//! other users could see it). Once serving, the node prints one line to stdout:
//! `listening <addr> node <id>`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tidemark_blockstore::{BlockManager, BlockStoreConfig, ShortfallPolicy};

/// Runs one block-store node.
#[derive(Parser, Debug)]
#[command(name = "tidemark-node", version)]
struct Args {
    /// Disk store directory (blocks go to a `blockmgr-<node id>/` subdirectory).
    #[arg(long)]
    dir: PathBuf,
    /// Transfer service address; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Host name reported to the master (replication prefers other hosts).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The master's address; without it this node hosts the master.
    #[arg(long)]
    master: Option<SocketAddr>,
    /// Memory store budget in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    memory_capacity: u64,
    /// zstd-compress serialized blocks.
    #[arg(long)]
    compress: bool,
    /// Do not accept replicas from peers.
    #[arg(long)]
    no_accept_replicas: bool,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    heartbeat_interval_ms: u64,
    /// The master drops nodes silent for this many milliseconds.
    #[arg(long, default_value_t = 120_000)]
    heartbeat_timeout_ms: u64,
    /// Network I/O timeout in milliseconds.
    #[arg(long, default_value_t = 120_000)]
    io_timeout_ms: u64,
    /// Largest accepted frame in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    max_frame_size: u32,
    /// Fail puts that cannot store all replicas (default: warn).
    #[arg(long)]
    fail_on_shortfall: bool,
    /// Exit when stdin reaches end of file (so a parent's death stops the node).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = BlockStoreConfig {
        dir: args.dir,
        memory_capacity: args.memory_capacity,
        compress: args.compress,
        listen_addr: args.listen,
        host: args.host,
        master_addr: args.master,
        secret: std::env::var("TIDEMARK_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
        accept_replicas: !args.no_accept_replicas,
        heartbeat_interval: Duration::from_millis(args.heartbeat_interval_ms),
        heartbeat_timeout: Duration::from_millis(args.heartbeat_timeout_ms),
        max_frame_size: args.max_frame_size,
        io_timeout: Duration::from_millis(args.io_timeout_ms),
        shortfall: if args.fail_on_shortfall {
            ShortfallPolicy::Error
        } else {
            ShortfallPolicy::Warn
        },
        ..Default::default()
    };
    let manager = match BlockManager::start(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("tidemark-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let announced = writeln!(
        out,
        "listening {} node {}",
        manager.local_addr(),
        manager.node().id
    )
    .and_then(|()| out.flush());
    if let Err(e) = announced {
        eprintln!("tidemark-node: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    if args.exit_on_stdin_close {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        return ExitCode::SUCCESS;
    }
    loop {
        std::thread::park();
    }
}
