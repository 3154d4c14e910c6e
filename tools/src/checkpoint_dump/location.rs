//! Where the checkpoints are: the location argument as a URL the library opens,
//! its settings, how it is shown (credentials masked), and the checks that make
//! a bad location fail at once in one line.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tidemark_checkpoint::blocking::{CheckpointError, CheckpointOptions, CheckpointStore};
use url::Url;

use super::cli::Cli;
use crate::outcome::ToolError;
use tidemark_checkpoint::redact::{MASK, is_secret_key as is_secret, url as redact};

/// Longest wait for a TCP connection when checking that a server is there.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variables whose values are credentials.
const SECRET_VARS: [&str; 3] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
];

/// A checkpoint location, ready to open.
#[derive(Debug)]
pub(crate) struct Location {
    /// The URL handed to tidemark-checkpoint.
    url: Url,
    /// The URL as printed: credentials masked.
    pub shown: String,
    /// Backend settings from the command line.
    settings: Vec<(String, String)>,
    /// Values that must never be printed.
    secrets: Vec<String>,
}

impl Location {
    /// Parses the location argument (a directory or a URL) and the backend flags.
    pub fn parse(cli: &Cli) -> Result<Location, ToolError> {
        let raw = cli.location.as_str();
        let url = if raw.contains("://") {
            Url::parse(raw)
                .map_err(|e| ToolError::Usage(format!("invalid location {}: {e}", redact(raw))))?
        } else {
            local_url(Path::new(raw))?
        };
        let settings = settings(cli, &url)?;
        let mut secrets: Vec<String> = url
            .query_pairs()
            .chain(url.password().map(|p| ("password".into(), p.into())))
            .filter(|(k, _)| is_secret(k))
            .map(|(_, v)| v.into_owned())
            .chain(
                settings
                    .iter()
                    .filter(|(k, _)| is_secret(k))
                    .map(|(_, v)| v.clone()),
            )
            .chain(SECRET_VARS.iter().filter_map(|v| std::env::var(v).ok()))
            .filter(|v| v.len() >= 4)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Location {
            shown: redact(url.as_str()),
            url,
            settings,
            secrets,
        })
    }

    /// Opens the store: a local directory must exist (opening would create it), a
    /// remote server must accept connections. Opening claims nothing.
    pub fn open(&self, timeout: Duration) -> Result<CheckpointStore, ToolError> {
        match self.url.scheme() {
            "file" => self.check_local_dir()?,
            "s3" | "s3a" => self.check_reachable("S3 endpoint", self.s3_endpoint())?,
            "hdfs" => self.check_reachable("HDFS NameNode", self.namenode())?,
            _ => {}
        }
        let mut options = CheckpointOptions::default().with_request_timeout(timeout);
        for (k, v) in &self.settings {
            options = options.with_storage_option(k, v);
        }
        CheckpointStore::open_with(self.url.as_str(), options).map_err(|e| self.error(&e))
    }

    /// The local directory, for a `file://` location.
    pub fn local_dir(&self) -> Option<PathBuf> {
        match self.url.scheme() {
            "file" => self.url.to_file_path().ok(),
            _ => None,
        }
    }

    /// A checkpoint store error as one line naming the location, credentials masked.
    pub fn error(&self, e: &CheckpointError) -> ToolError {
        ToolError::Usage(self.scrub(&format!("{}: {e}", self.shown)))
    }

    /// `text` on one line with the raw URL and every credential value masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(self.url.as_str(), &self.shown);
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), MASK);
        }
        text.replace(['\n', '\r'], " ")
    }

    fn check_local_dir(&self) -> Result<(), ToolError> {
        let dir = self.local_dir().ok_or_else(|| {
            ToolError::Usage(format!("{} is not a local directory path", self.shown))
        })?;
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(ToolError::Usage(format!(
                "{} is a file, not a checkpoint directory (pass the directory that holds manifests/ and parts/)",
                dir.display()
            ))),
            Err(e) => Err(ToolError::io("open checkpoint directory", dir, e)),
        }
    }

    /// The S3 endpoint from the flags, the URL or the environment; `None` for AWS itself.
    fn s3_endpoint(&self) -> Option<String> {
        const KEYS: [&str; 4] = [
            "endpoint",
            "endpoint_url",
            "aws_endpoint",
            "aws_endpoint_url",
        ];
        let from_settings = self
            .settings
            .iter()
            .rev()
            .find(|(k, _)| KEYS.contains(&k.to_ascii_lowercase().as_str()))
            .map(|(_, v)| v.clone());
        let from_url = || {
            self.url
                .query_pairs()
                .find(|(k, _)| KEYS.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(_, v)| v.into_owned())
        };
        let from_env = || {
            ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        };
        from_settings.or_else(from_url).or_else(from_env)
    }

    fn namenode(&self) -> Option<String> {
        let host = self.url.host_str()?;
        Some(format!("hdfs://{host}:{}", self.url.port().unwrap_or(8020)))
    }

    /// Fails at once, in one line, when nothing listens at `endpoint` (instead of
    /// after the object store's retries).
    fn check_reachable(&self, what: &str, endpoint: Option<String>) -> Result<(), ToolError> {
        let Some(endpoint) = endpoint else {
            return Ok(());
        };
        let unreachable = |why: String| {
            ToolError::Usage(self.scrub(&format!(
                "{}: cannot reach {what} {endpoint}: {why}",
                self.shown
            )))
        };
        let url = Url::parse(&endpoint).map_err(|e| unreachable(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| unreachable("no host in it".into()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| unreachable("no port in it".into()))?;
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve {host}: {e}")))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, REACH_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        Err(unreachable(
            last.unwrap_or_else(|| format!("{host} has no address")),
        ))
    }
}

/// A directory argument as a `file://` URL.
fn local_url(path: &Path) -> Result<Url, ToolError> {
    let abs = std::fs::canonicalize(path)
        .map_err(|e| ToolError::io("open checkpoint directory", path, e))?;
    Url::from_directory_path(&abs)
        .map_err(|()| ToolError::Usage(format!("{} is not a usable path", abs.display())))
}

/// Backend settings from `--endpoint`, `--region` and `--option`.
fn settings(cli: &Cli, url: &Url) -> Result<Vec<(String, String)>, ToolError> {
    let s3 = matches!(url.scheme(), "s3" | "s3a");
    if !s3 && (cli.endpoint.is_some() || cli.region.is_some()) {
        return Err(ToolError::Usage(format!(
            "--endpoint and --region apply to s3:// locations, not {}://",
            url.scheme()
        )));
    }
    let mut out = Vec::new();
    if let Some(endpoint) = &cli.endpoint {
        out.push(("endpoint".to_string(), endpoint.clone()));
        if endpoint.starts_with("http://") {
            out.push(("allow_http".to_string(), "true".to_string()));
        }
    }
    if let Some(region) = &cli.region {
        out.push(("region".to_string(), region.clone()));
    }
    for kv in &cli.options {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            ToolError::Usage(format!(
                "--option wants KEY=VALUE, got {:?}",
                redact_option(kv)
            ))
        })?;
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

/// An `--option` argument as it may be printed.
fn redact_option(kv: &str) -> String {
    if is_secret(kv) {
        MASK.into()
    } else {
        kv.into()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn location(args: &[&str]) -> Result<Location, ToolError> {
        let cli =
            Cli::try_parse_from(std::iter::once("checkpoint-dump").chain(args.iter().copied()))
                .map_err(|e| ToolError::Usage(e.to_string()))?;
        Location::parse(&cli)
    }

    #[test]
    fn masks_credentials_everywhere() {
        let loc = location(&[
            "s3://b/p?access_key_id=AKIDX&secret_access_key=s3cr3t-value&region=r",
            "-o",
            "session_token=tok-tok-tok",
            "list",
        ])
        .expect("parse");
        assert_eq!(
            loc.shown,
            "s3://b/p?access_key_id=***&secret_access_key=***&region=r"
        );
        let line = loc.scrub(&format!(
            "failed at {} with s3cr3t-value and tok-tok-tok\nsecond line",
            loc.url
        ));
        assert!(!line.contains("s3cr3t") && !line.contains("tok-tok") && !line.contains("AKIDX"));
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn directories_become_file_urls_and_flags_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_str().expect("utf8");
        let loc = location(&[path, "list"]).expect("parse");
        assert_eq!(
            loc.local_dir().as_deref(),
            std::fs::canonicalize(path).ok().as_deref()
        );
        assert!(matches!(
            location(&["/no/such/dir", "list"]),
            Err(ToolError::Io { .. })
        ));
        let err = location(&["file:///tmp", "--region", "x", "list"]).expect_err("region on file");
        assert!(err.to_string().contains("s3://"), "{err}");
        let loc = location(&["s3://b/p", "--endpoint", "http://127.0.0.1:1", "list"]).expect("s3");
        assert_eq!(loc.s3_endpoint().as_deref(), Some("http://127.0.0.1:1"));
        assert!(loc.settings.contains(&("allow_http".into(), "true".into())));
    }
}
