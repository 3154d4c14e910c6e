//! A stream's settings, read from the command line (`--name value`); the
//! settings a stream does not know are kept for the application
//! ([`StreamConf::arg`]). The supervisor starts every role with the same
//! arguments, so every process reads the same settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tidemark_blockstore::StorageLevel;

use crate::error::StreamError;
use crate::supervisor::RUN_DIR_ENV;

/// How a stream runs.
#[derive(Clone, Debug)]
pub struct StreamConf {
    /// `--batch-ms` (1000): the batch interval.
    pub batch_interval: Duration,
    /// `--block-ms` (200): how often a receiver cuts a block.
    pub block_interval: Duration,
    /// `--checkpoint URL` (`file:///dir`, `s3://...`, `hdfs://...`): where the driver checkpoints.
    pub checkpoint: Option<String>,
    /// `--wal DIR`: turns the write-ahead logs on, with the receiver and metadata WALs under `DIR`.
    pub wal_root: Option<PathBuf>,
    /// `--level NAME` (`MEMORY_AND_DISK_SER_2`): the received blocks' storage level.
    pub level: StorageLevel,
    /// `--keep-replication`: with the WAL on, keep the level's replication (default: drop it to 1).
    pub keep_replication: bool,
    /// `--executors N` (2).
    pub executors: u32,
    /// `--supervise N` (3): driver starts allowed in all.
    pub max_driver_starts: u32,
    /// `--run-dir DIR` (or the supervisor's): pids.json, driver.json, block files;
    /// see [`StreamConf::run_dir`].
    pub run_dir: Option<PathBuf>,
    /// `--no-speculation`: turns speculation off.
    pub speculation: bool,
    /// `--max-rate N` (0 = unlimited): records/s per receiver.
    pub max_rate: u64,
    /// Every other `--name value` (or bare `--flag`, as "true").
    pub extra: BTreeMap<String, String>,
}

impl Default for StreamConf {
    fn default() -> Self {
        StreamConf {
            batch_interval: Duration::from_secs(1),
            block_interval: Duration::from_millis(200),
            checkpoint: None,
            wal_root: None,
            level: StorageLevel::MEMORY_AND_DISK_SER_2,
            keep_replication: false,
            executors: 2,
            max_driver_starts: 3,
            run_dir: None,
            speculation: true,
            max_rate: 0,
            extra: BTreeMap::new(),
        }
    }
}

/// Flags that take no value.
const FLAGS: [&str; 3] = ["keep-replication", "no-speculation", "direct"];

impl StreamConf {
    /// The settings in this process's arguments (and the run directory a supervisor set).
    pub fn from_env_and_args() -> Result<StreamConf, StreamError> {
        let mut conf = StreamConf::from_args(std::env::args().skip(1))?;
        if let Some(dir) = std::env::var_os(RUN_DIR_ENV) {
            conf.run_dir = Some(PathBuf::from(dir));
        }
        Ok(conf)
    }

    /// The settings in `args` (`--name value` pairs and bare flags).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<StreamConf, StreamError> {
        let mut conf = StreamConf::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(bad("argument", format!("{arg:?} is not a --name")));
            };
            let value = if FLAGS.contains(&name) {
                "true".to_string()
            } else {
                args.next()
                    .ok_or_else(|| bad("argument", format!("--{name} needs a value")))?
            };
            conf.set(name, value)?;
        }
        Ok(conf)
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), StreamError> {
        match name {
            "batch-ms" => self.batch_interval = Duration::from_millis(positive(name, &value)?),
            "block-ms" => self.block_interval = Duration::from_millis(positive(name, &value)?),
            "checkpoint" => self.checkpoint = Some(value),
            "wal" => self.wal_root = Some(local_dir(&value)?),
            "level" => self.level = level_named(&value)?,
            "keep-replication" => self.keep_replication = true,
            "executors" => self.executors = positive(name, &value)? as u32,
            "supervise" => self.max_driver_starts = positive(name, &value)? as u32,
            "run-dir" => self.run_dir = Some(PathBuf::from(value)),
            "no-speculation" => self.speculation = false,
            "max-rate" => {
                self.max_rate = value.parse().map_err(|_| bad("max-rate", value.clone()))?
            }
            other => {
                self.extra.insert(other.to_string(), value);
            }
        }
        Ok(())
    }

    /// The run directory: as set, else `tidemark-run` in the working directory.
    pub fn run_dir(&self) -> PathBuf {
        self.run_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("tidemark-run"))
    }

    /// An application's own argument `--name`, if given.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.extra.get(name).map(String::as_str)
    }

    /// The settings as name/value pairs, for checkpoint comparison.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (
                "block_interval_ms".to_string(),
                self.block_interval.as_millis().to_string(),
            ),
            ("wal".to_string(), self.wal_root.is_some().to_string()),
            (
                "level".to_string(),
                self.level.name().unwrap_or("custom").to_string(),
            ),
            ("executors".to_string(), self.executors.to_string()),
            ("speculation".to_string(), self.speculation.to_string()),
            ("max_rate".to_string(), self.max_rate.to_string()),
        ];
        out.extend(
            self.extra
                .iter()
                .map(|(k, v)| (format!("arg.{k}"), v.clone())),
        );
        out
    }
}

fn bad(name: &'static str, reason: String) -> StreamError {
    StreamError::InvalidSetting { name, reason }
}

fn positive(name: &str, value: &str) -> Result<u64, StreamError> {
    value.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
        bad(
            "argument",
            format!("--{name} {value:?} is not a positive number"),
        )
    })
}

fn local_dir(value: &str) -> Result<PathBuf, StreamError> {
    if value.contains("://") && !value.starts_with("file://") {
        return Err(bad(
            "wal",
            format!(
                "{value}: the WAL lives in a local directory; S3 and HDFS WALs are not built yet"
            ),
        ));
    }
    Ok(PathBuf::from(value.trim_start_matches("file://")))
}

fn level_named(name: &str) -> Result<StorageLevel, StreamError> {
    StorageLevel::PREDEFINED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, l)| *l)
        .ok_or_else(|| bad("level", format!("no storage level named {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings_and_application_arguments_are_read() {
        let conf = StreamConf::from_args(args(&[
            "--batch-ms",
            "500",
            "--level",
            "memory_only",
            "--wal",
            "/tmp/w",
            "--out",
            "/tmp/o",
            "--direct",
            "--no-speculation",
        ]))
        .expect("conf");
        assert_eq!(conf.batch_interval, Duration::from_millis(500));
        assert_eq!(conf.level, StorageLevel::MEMORY_ONLY);
        assert_eq!(conf.wal_root, Some(PathBuf::from("/tmp/w")));
        assert!(!conf.speculation);
        assert_eq!(
            (conf.arg("out"), conf.arg("direct")),
            (Some("/tmp/o"), Some("true"))
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for bad in [
            vec!["--batch-ms", "0"],
            vec!["--level", "FAST"],
            vec!["--executors"],
            vec!["positional"],
            vec!["--wal", "s3://bucket/wal"],
        ] {
            assert!(StreamConf::from_args(args(&bad)).is_err(), "{bad:?}");
        }
    }
}
