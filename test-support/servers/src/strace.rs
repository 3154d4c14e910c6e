//! Durability tests read what a program fsynced from its system calls: a test re-runs itself as
//! a child under `strace`, the child marks each step with a failed `stat` of a marker path, and
//! the parent checks the order of syncs, renames and markers in the trace.
//!
//! Needs `strace` (`scripts/setup-test-servers.sh` installs it); without it the test fails.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Prefix of the marker paths a traced child looks up after each step.
pub const MARK: &str = "tidemark-mark-";

/// Records step `what` in the trace: a failed `stat` of a marker path beside `root`'s entries.
pub fn mark(root: &Path, what: &str) {
    let _ = std::fs::metadata(root.join(format!("{MARK}{what}")));
}

/// Runs this test binary's test `test_name` alone under `strace -f -y`, tracing `syscalls`, with
/// `env` set to `value` so the test knows it is the child, and returns the trace. Panics (failing
/// the test) if strace is missing or the child fails.
pub fn trace_self(test_name: &str, syscalls: &str, env: &str, value: &Path, log: &Path) -> Trace {
    let exe = std::env::current_exe().expect("test executable");
    let output = Command::new("strace")
        .args(["-f", "-y", "-o"])
        .arg(log)
        .args(["-e", &format!("trace={syscalls}")])
        .arg(&exe)
        .args(crate::child::self_test_args(test_name))
        .env(env, value)
        .output()
        .unwrap_or_else(|e| panic!("cannot run strace (apt-get install -y strace): {e}"));
    crate::child::assert_succeeded(&output, "the traced child");
    let text = std::fs::read_to_string(log).expect("strace log");
    Trace {
        lines: text.lines().map(str::to_string).collect(),
    }
}

/// An `strace -f -y` log, one system call (or continuation) per line.
pub struct Trace {
    /// The lines, in order.
    pub lines: Vec<String>,
}

/// A publishing call (`rename*` or `link*`) seen in the trace.
pub struct Published {
    /// Its line.
    pub at: usize,
    /// Its source path.
    pub src: PathBuf,
    /// Its destination path.
    pub dst: PathBuf,
}

impl Trace {
    /// The first line in `[from, to)` that satisfies `pred`.
    pub fn find(&self, from: usize, to: usize, pred: impl Fn(&str) -> bool) -> Option<usize> {
        (from..to).find(|&i| pred(&self.lines[i]))
    }

    /// The line of marker `what`; panics if it is missing.
    pub fn marker(&self, what: &str) -> usize {
        let needle = format!("{MARK}{what}\"");
        self.find(0, self.lines.len(), |l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no marker {what} in the trace"))
    }

    /// The line of an fsync or fdatasync of `path` in `[from, to)`; panics if there is none.
    pub fn fsynced(&self, path: &Path, from: usize, to: usize) -> usize {
        let fd = format!("<{}>)", path.display());
        let unfinished = format!("<{}> <unfinished", path.display());
        self.find(from, to, |l| {
            (l.contains("fsync(") || l.contains("fdatasync("))
                && (l.contains(&fd) || l.contains(&unfinished))
        })
        .unwrap_or_else(|| {
            panic!(
                "{} was not fsynced between trace lines {from} and {to}",
                path.display()
            )
        })
    }

    /// Every `call` (a prefix: `rename`, `link`) whose destination satisfies `dst`, in order.
    pub fn published(&self, call: &str, dst: impl Fn(&str) -> bool) -> Vec<Published> {
        let parse = |at: usize| {
            let l = &self.lines[at];
            let name = l.split_whitespace().nth(1)?;
            if !name.starts_with(call) {
                return None;
            }
            let quoted: Vec<&str> = l.split('"').skip(1).step_by(2).collect();
            let [src, to, ..] = quoted[..] else {
                return None;
            };
            dst(to).then(|| Published {
                at,
                src: PathBuf::from(src),
                dst: PathBuf::from(to),
            })
        };
        (0..self.lines.len()).filter_map(parse).collect()
    }

    /// The line in `[from, p.at)` where the file `p` published was fsynced. A staged file is
    /// found by its path; an anonymous file linked through `/proc/self/fd/N` by its descriptor:
    /// the publishing thread's last sync of `N` (a file in the destination's directory) before
    /// the link, with `N` not opened again in between. Panics if there is none.
    pub fn source_synced(&self, p: &Published, from: usize) -> usize {
        let Some(fd) = p
            .src
            .to_str()
            .and_then(|s| s.strip_prefix("/proc/self/fd/"))
        else {
            return self.fsynced(&p.src, from, p.at);
        };
        let dir = p
            .dst
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let pid = self.lines[p.at].split_whitespace().next();
        let synced = [
            format!("fsync({fd}<{dir}/"),
            format!("fdatasync({fd}<{dir}/"),
        ];
        let reopened = format!("= {fd}<");
        for i in (from..p.at).rev() {
            let l = &self.lines[i];
            if l.split_whitespace().next() != pid {
                continue;
            }
            if synced.iter().any(|s| l.contains(s)) {
                return i;
            }
            if l.contains(&reopened) {
                break;
            }
        }
        panic!(
            "descriptor {fd} was not fsynced before it was linked at {} (trace line {})",
            p.dst.display(),
            p.at
        )
    }

    /// The next call made by the thread of line `at` (its own continuation lines skipped).
    pub fn next_call_of_same_thread(&self, at: usize) -> Option<usize> {
        let pid = self.lines[at].split_whitespace().next()?;
        self.find(at + 1, self.lines.len(), |l| {
            l.split_whitespace().next() == Some(pid) && !l.contains(" resumed>")
        })
    }
}
