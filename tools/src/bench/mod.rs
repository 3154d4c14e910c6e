//! `tidemark bench`: the storage-backend benchmark.
//!
//! On local disk, in a scratch directory (a fresh temporary one by default), it
//! measures the machine's own limits first, then every storage case, and
//! compares each case with the limit that bounds it:
//! - durable WAL appends (`per_write`, `group`) against a plain `pwrite` +
//!   `fdatasync` loop of the same record size over already-written blocks (the
//!   WAL, too, syncs over written blocks), in operations per second; the
//!   appending `write` + `fdatasync` loop is shown beside it;
//! - non-durable appends (`buffered`, `interval_10ms`) against plain buffered
//!   sequential writes (no sync), in bytes per second; sequential writes with a
//!   final `fdatasync` are shown beside them;
//! - replay (open + full scan) against plain sequential reads of the same files;
//! - checkpoint commit (begin + one part + commit) and read of the latest
//!   checkpoint's part, on local disk (against buffered sequential writes and reads)
//!   and in memory, plus S3 and HDFS with `--s3 URL` and `--hdfs URL`;
//! - block-store put and get on one node per single-copy storage level
//!   (`DISK_ONLY` against buffered sequential writes and reads).
//!
//! Each append case runs a quarter of its time as an unmeasured warm-up first
//! (a fresh log prepares its first spare segments then).
//!
//! Results go to stdout as a table (or `--json`), and to `results.json` and
//! `results.svg` in the output directory, whose paths are printed.

mod blockstore_cases;
mod chart;
mod checkpoint_cases;
mod machine;
mod measure;
mod report;
mod wal_cases;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub use measure::{CaseResult, Limit};

use crate::outcome::ToolError;

/// Arguments of `tidemark bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// A short run (a few seconds) with tiny cases: for CI and smoke tests.
    #[arg(long)]
    pub quick: bool,
    /// Directory on the disk to measure; the run works in a fresh subdirectory
    /// of it and removes that at the end (default: the system temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where results.json and results.svg go.
    #[arg(long, default_value = "tidemark-bench")]
    pub out: PathBuf,
    /// Writers of the multi-writer cases.
    #[arg(long, default_value_t = 8)]
    pub writers: usize,
    /// Record size in bytes.
    #[arg(long, default_value_t = 256)]
    pub record_size: usize,
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also benchmark checkpoints on S3: `s3://bucket/prefix?endpoint=...&region=...`
    /// (credentials from the usual AWS_* variables or the query).
    #[arg(long, value_name = "URL")]
    pub s3: Option<String>,
    /// Also benchmark checkpoints on HDFS: `hdfs://host:port/path`.
    #[arg(long, value_name = "URL")]
    pub hdfs: Option<String>,
    /// Deadline in seconds for each remote call (a dead endpoint fails after it).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub remote_timeout: u64,
}

/// How big and long each case is.
struct Plan {
    case_time: Duration,
    seq_bytes: u64,
    replay_records: u64,
    segment_size: u64,
    /// Bytes written ahead for the overwrite fsync loop.
    prefill: u64,
    /// Size of the one part of each benchmark checkpoint.
    checkpoint_size: usize,
    /// Size of each block-store block.
    block_size: usize,
}

impl Plan {
    fn of(args: &BenchArgs) -> Plan {
        if args.quick {
            Plan {
                case_time: Duration::from_millis(150),
                seq_bytes: 8 << 20,
                replay_records: 20_000,
                segment_size: 4 << 20,
                prefill: 4 << 20,
                checkpoint_size: 1 << 20,
                block_size: 256 << 10,
            }
        } else {
            Plan {
                case_time: Duration::from_secs(3),
                seq_bytes: 512 << 20,
                replay_records: 1_000_000,
                segment_size: 64 << 20,
                prefill: 64 << 20,
                checkpoint_size: 64 << 20,
                block_size: 4 << 20,
            }
        }
    }
}

/// Facts about where the benchmark ran.
pub struct Environment {
    /// Scratch directory.
    pub scratch: PathBuf,
    /// Its file system type.
    pub fs_type: String,
    /// CPUs available.
    pub cpus: usize,
    /// Record size of every case.
    pub record_size: usize,
    /// True for `--quick`.
    pub quick: bool,
}

/// Runs the benchmark; writes the report to `out` and the files to `args.out`.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<(), ToolError> {
    if args.writers == 0 || args.record_size == 0 {
        return Err(ToolError::Usage(
            "--writers and --record-size must be at least 1".into(),
        ));
    }
    // Always a fresh directory of our own (inside `--dir` when given), so that
    // nothing but what this run created is ever removed.
    let parent = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| ToolError::io("create scratch directory", d, e))?;
            d.clone()
        }
        None => std::env::temp_dir(),
    };
    let temp = tempfile::Builder::new()
        .prefix("tidemark-bench-")
        .tempdir_in(&parent)
        .map_err(|e| ToolError::io("create scratch directory in", &parent, e))?;
    let scratch = temp.path().to_path_buf();
    let env = Environment {
        fs_type: machine::fs_type(&scratch),
        scratch: scratch.clone(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        record_size: args.record_size,
        quick: args.quick,
    };
    let results = run_cases(args, &Plan::of(args), &scratch)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| ToolError::io("create output directory", &args.out, e))?;
    let json_path = args.out.join("results.json");
    let svg_path = args.out.join("results.svg");
    let doc = report::json(&env, &results);
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| ToolError::io("write", &json_path, e))?;
    chart::draw(&svg_path, &results)?;
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )?;
    } else {
        report::table(&env, &results, out)?;
        writeln!(
            out,
            "\nresults: {}\nchart:   {}",
            json_path.display(),
            svg_path.display()
        )?;
    }
    Ok(())
}

fn run_cases(args: &BenchArgs, plan: &Plan, scratch: &Path) -> Result<Vec<CaseResult>, ToolError> {
    let modes = wal_cases::modes();
    let writer_counts = [1, args.writers];
    let total = 10
        + (args.s3.is_some() as u64)
        + (args.hdfs.is_some() as u64)
        + (modes.len() * writer_counts.len()) as u64;
    let bar = progress(total);
    let rec = args.record_size;
    let timeout = Duration::from_secs(args.remote_timeout.max(1));
    let remotes: Vec<(&str, &String)> = [("s3", &args.s3), ("hdfs", &args.hdfs)]
        .into_iter()
        .filter_map(|(b, u)| u.as_ref().map(|u| (b, u)))
        .collect();
    for (backend, url) in &remotes {
        bar.set_message(format!("checking {backend}"));
        checkpoint_cases::open(url, backend, timeout)?;
    }
    bar.set_message("machine: write+fdatasync (append)");
    let append_sync = machine::fdatasync_loop(scratch, rec, plan.case_time, None)?;
    bar.inc(1);
    bar.set_message("machine: pwrite+fdatasync (overwrite)");
    let fsync = machine::fdatasync_loop(scratch, rec, plan.case_time, Some(plan.prefill))?;
    bar.inc(1);
    bar.set_message("machine: sequential write");
    let seq_synced = machine::sequential_write(scratch, plan.seq_bytes, true)?;
    let seq = machine::sequential_write(scratch, plan.seq_bytes, false)?;
    bar.inc(1);
    let mut results = Vec::new();
    for (name, durability) in modes {
        for writers in writer_counts {
            bar.set_message(format!("wal append {name}, {writers} writer(s)"));
            let dir = fresh(scratch, &format!("wal-{name}-{writers}"))?;
            let mut r = wal_cases::append(
                &dir,
                name,
                durability,
                writers,
                rec,
                (plan.case_time / 4, plan.case_time),
                plan.segment_size,
            )?;
            let durable = matches!(name, "per_write" | "group");
            r.limit = Some(if durable {
                fsync.as_limit(true)
            } else {
                seq.as_limit(false)
            });
            results.push(r);
            let _ = std::fs::remove_dir_all(&dir);
            bar.inc(1);
        }
    }
    bar.set_message("wal replay");
    let dir = fresh(scratch, "wal-replay")?;
    let mut replay = wal_cases::replay(&dir, plan.replay_records, rec, plan.segment_size)?;
    bar.inc(1);
    bar.set_message("machine: sequential read");
    let read = machine::sequential_read(&dir)?;
    replay.limit = Some(read.as_limit(false));
    let _ = std::fs::remove_dir_all(&dir);
    bar.inc(1);
    let local = format!("file://{}", fresh(scratch, "checkpoints")?.display());
    let memory = format!("memory://tidemark-bench-{}", std::process::id());
    let mut backends = vec![("local", local), ("memory", memory)];
    backends.extend(args.s3.iter().map(|u| ("s3", u.clone())));
    backends.extend(args.hdfs.iter().map(|u| ("hdfs", u.clone())));
    for (backend, url) in &backends {
        bar.set_message(format!("checkpoint write+read, {backend}"));
        let (mut w, mut r) = checkpoint_cases::write_and_read(
            url,
            backend,
            plan.checkpoint_size,
            plan.case_time / 2,
            timeout,
        )?;
        if *backend == "local" {
            // The local backend fsyncs what it writes.
            w.limit = Some(seq_synced.as_limit(false));
            r.limit = Some(read.as_limit(false));
        }
        results.push(w);
        results.push(r);
        bar.inc(1);
    }
    let _ = std::fs::remove_dir_all(scratch.join("checkpoints"));
    for (name, level) in blockstore_cases::levels() {
        bar.set_message(format!("block store put+get, {name}"));
        let dir = fresh(scratch, "blocks")?;
        let (mut put, mut get) =
            blockstore_cases::put_and_get(&dir, name, level, plan.block_size, plan.case_time / 2)?;
        if level.use_disk && !level.use_memory {
            put.limit = Some(seq.as_limit(false));
            get.limit = Some(read.as_limit(false));
        }
        results.push(put);
        results.push(get);
        let _ = std::fs::remove_dir_all(&dir);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut all = vec![append_sync, fsync, seq_synced, seq, read];
    all.extend(results);
    all.push(replay);
    Ok(all)
}

fn fresh(scratch: &Path, name: &str) -> Result<PathBuf, ToolError> {
    let dir = scratch.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| ToolError::io("create", &dir, e))?;
    Ok(dir)
}

fn progress(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("[{pos}/{len}] {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar
}
