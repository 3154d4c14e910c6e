//! A small Linux VM under QEMU whose power can be cut.
//!
//! QEMU runs with software emulation (`-accel tcg`: KVM guests hang on this
//! machine kind), one virtio disk backed by a raw file on the host with
//! `cache=none`: what the guest has written to its disk is in that file, and
//! what is still in the guest's page cache is not. [`Vm::power_cut`] SIGKILLs
//! QEMU, so the guest loses exactly what a machine losing power loses (its
//! volatile writes were never accepted as flushed: the emulated disk's cache is
//! the host file itself).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::error::PowercutError;
use crate::initramfs::{self, Kernel};

/// Memory of each guest, MiB.
const GUEST_MEMORY_MIB: u32 = 256;

/// A kernel and an initramfs holding one guest program, ready to boot.
pub struct GuestImage {
    kernel: Kernel,
    initramfs: PathBuf,
    _dir: tempfile::TempDir,
}

impl GuestImage {
    /// Builds the initramfs for `guest` (see `initramfs.rs`).
    pub fn build(guest: &Path) -> Result<GuestImage, PowercutError> {
        initramfs::which("qemu-system-x86_64", "apt-get install qemu-system-x86")?;
        let kernel = Kernel::cloud()?;
        let dir = tempfile::tempdir().map_err(PowercutError::io("create temp dir", "/tmp"))?;
        let initramfs = dir.path().join("initramfs.cpio");
        initramfs::build(&kernel, guest, &initramfs)?;
        Ok(GuestImage {
            kernel,
            initramfs,
            _dir: dir,
        })
    }
}

/// A raw disk image file with a fresh ext4 file system.
pub fn fresh_ext4_disk(path: &Path, size_mib: u64) -> Result<(), PowercutError> {
    let file = std::fs::File::create(path).map_err(PowercutError::io("create disk", path))?;
    file.set_len(size_mib << 20)
        .map_err(PowercutError::io("size disk", path))?;
    drop(file);
    // Not every PATH has the sbin directories.
    let mkfs = initramfs::which("mkfs.ext4", "apt-get install e2fsprogs")
        .unwrap_or_else(|_| PathBuf::from("/usr/sbin/mkfs.ext4"));
    run(Command::new(mkfs).args(["-q", "-F"]).arg(path))
}

fn run(cmd: &mut Command) -> Result<(), PowercutError> {
    let command = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| PowercutError::Command {
        command: command.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(PowercutError::Command {
        command,
        detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
    })
}

/// A running guest and the lines of its serial console.
pub struct Vm {
    child: Child,
    lines: Receiver<String>,
}

impl Vm {
    /// Boots `image` with `disk` as `/dev/vda`; the guest runs `/guest args...`.
    /// `vcpus` emulated processors (TCG runs them on host threads).
    pub fn boot(
        image: &GuestImage,
        disk: &Path,
        args: &[&str],
        vcpus: u32,
    ) -> Result<Vm, PowercutError> {
        let append = format!("console=ttyS0 panic=-1 quiet tp.args={}", args.join(","));
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-nographic", "-no-reboot"])
            .args([
                "-m",
                &GUEST_MEMORY_MIB.to_string(),
                "-smp",
                &vcpus.to_string(),
            ])
            .arg("-kernel")
            .arg(&image.kernel.image)
            .arg("-initrd")
            .arg(&image.initramfs)
            .args(["-append", &append])
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=virtio,cache=none",
                disk.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| PowercutError::Command {
            command: format!("{cmd:?}"),
            detail: e.to_string(),
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| PowercutError::Guest("no console pipe".into()))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let text = without_terminal_codes(&String::from_utf8_lossy(&line));
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        Ok(Vm { child, lines })
    }

    /// The next console line, `None` once the guest is gone or `deadline` passed.
    pub fn next_line(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    /// Cuts the power: SIGKILL to QEMU, then reaps it.
    pub fn power_cut(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every console line until the guest powers off; an error past `timeout`.
    pub fn run_to_end(mut self, timeout: Duration) -> Result<Vec<String>, PowercutError> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while let Some(line) = self.next_line(deadline) {
            out.push(line);
        }
        if Instant::now() >= deadline {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(PowercutError::Guest(format!(
                "still running after {timeout:?}; last lines: {:?}",
                &out[out.len().saturating_sub(5)..]
            )));
        }
        let _ = self.child.wait();
        Ok(out)
    }
}

/// `line` without carriage returns and terminal control sequences (the
/// firmware clears the screen with some before the kernel starts).
fn without_terminal_codes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // ESC [ parameters and a final byte, or ESC and one character.
                if chars.next() == Some('[') {
                    for p in chars.by_ref() {
                        if ('@'..='~').contains(&p) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::without_terminal_codes;

    #[test]
    fn firmware_screen_codes_are_dropped_from_console_lines() {
        let raw = "\u{1b}c\u{1b}[?7l\u{1b}[2JOPENFAIL corruption at LSN 4760\r";
        assert_eq!(
            without_terminal_codes(raw),
            "OPENFAIL corruption at LSN 4760"
        );
        assert_eq!(without_terminal_codes("ACK 1 0 1"), "ACK 1 0 1");
    }
}
