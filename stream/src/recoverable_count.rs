//! The `recoverable_count` pipeline (the example of the same name runs it):
//! each record is a line whose first whitespace-separated field is an id; for
//! each batch, `<out>/batch-<batch time ms>.txt` receives that batch's ids,
//! one a line, written atomically (a temporary file, fsynced, renamed) and
//! idempotently (a re-run batch replaces its file with the same content). The
//! driver prints one line per batch:
//! `batch <time ms> records=<n> delay_ms=<d> processing_ms=<p>`.
//!
//! Arguments (besides [`StreamConf`]'s): `--source tcp://HOST:PORT` (lines,
//! unreliable receiver) or `kafka://HOST:PORT/TOPIC` (values, reliable
//! receiver), and `--out DIR`; the run directory (pids.json) defaults to `DIR`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::block::BatchTime;
use crate::conf::StreamConf;
use crate::context::StreamingContext;
use crate::error::StreamError;

/// Runs the pipeline in this process's role.
pub fn run(mut conf: StreamConf) -> Result<(), StreamError> {
    let source = required(&conf, "source")?;
    let out = PathBuf::from(required(&conf, "out")?);
    let input = Source::parse(&source, conf.arg("direct").is_some())?;
    if conf.run_dir.is_none() {
        conf.run_dir = Some(out.clone());
    }
    std::fs::create_dir_all(&out).map_err(StreamError::io(format!("create {}", out.display())))?;
    let ctx = StreamingContext::get_or_create(conf, |g| {
        let out = out.clone();
        let lines = match &input {
            Source::Tcp(addr) => g.socket_text_stream(addr),
            Source::Kafka { bootstrap, topic } => g
                .kafka_stream(bootstrap, topic)
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
        };
        lines
            .map(|line: String| line.split_whitespace().next().unwrap_or("").to_string())
            .filter(|id| !id.is_empty())
            .foreach_batch("ids", move |batch| {
                write_batch(&out, batch.time(), batch.records()).map_err(|e| e.to_string())
            });
        Ok(())
    })?;
    ctx.run_with(|r| {
        println!(
            "batch {} records={} delay_ms={} processing_ms={}",
            r.time.0,
            r.records,
            r.scheduling_delay.as_millis(),
            r.processing_time.as_millis()
        );
        Ok(())
    })
}

/// Where the records come from.
enum Source {
    /// `tcp://HOST:PORT`: lines through an unreliable receiver.
    Tcp(String),
    /// `kafka://HOST:PORT/TOPIC`: values through the reliable receiver.
    Kafka { bootstrap: String, topic: String },
}

impl Source {
    fn parse(source: &str, direct: bool) -> Result<Source, StreamError> {
        let bad = |reason: String| StreamError::InvalidSetting {
            name: "source",
            reason,
        };
        if let Some(addr) = source.strip_prefix("tcp://") {
            return Ok(Source::Tcp(addr.to_string()));
        }
        let Some(rest) = source.strip_prefix("kafka://") else {
            return Err(bad(format!(
                "{source}: expected tcp://HOST:PORT or kafka://HOST:PORT/TOPIC"
            )));
        };
        if direct {
            return Err(bad(
                "--direct: the direct Kafka stream is not wired into the driver yet".into(),
            ));
        }
        match rest.split_once('/') {
            Some((bootstrap, topic)) if !bootstrap.is_empty() && !topic.is_empty() => {
                Ok(Source::Kafka {
                    bootstrap: bootstrap.to_string(),
                    topic: topic.to_string(),
                })
            }
            _ => Err(bad(format!("{source}: expected kafka://HOST:PORT/TOPIC"))),
        }
    }
}

fn required(conf: &StreamConf, name: &'static str) -> Result<String, StreamError> {
    conf.arg(name)
        .map(str::to_owned)
        .ok_or(StreamError::InvalidSetting {
            name,
            reason: format!("--{name} is required"),
        })
}

/// Writes `<out>/batch-<time>.txt` atomically; a unique temporary name per
/// writer, so two attempts of one batch never write the same temporary file.
pub fn write_batch(out: &Path, time: BatchTime, ids: &[String]) -> std::io::Result<()> {
    let unique: u64 = rand_suffix();
    let tmp = out.join(format!(
        ".batch-{}.{}.{unique:x}.tmp",
        time.0,
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    for id in ids {
        writeln!(f, "{id}")?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, out.join(format!("batch-{}.txt", time.0)))?;
    std::fs::File::open(out)?.sync_all()
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// Every id in `<out>/batch-*.txt`, with how many batch files hold it.
pub fn read_ids(out: &Path) -> std::io::Result<std::collections::BTreeMap<String, u32>> {
    let mut ids = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("batch-") && name.ends_with(".txt") {
            for id in std::fs::read_to_string(&path)?.lines() {
                *ids.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    }
    Ok(ids)
}
