//! The guest's whole root file system, as an initramfs the kernel unpacks into RAM.
//!
//! It holds busybox (static), the guest program and the shared libraries it
//! links (found with `ldd`, kept at their paths), the virtio block driver and
//! the modules it needs (Debian's cloud kernel builds them as modules), and an
//! `/init` that loads them, mounts `/dev/vda` on `/mnt`, runs
//! `/guest <tp.args>` (commas in the kernel argument become spaces), prints
//! `GUESTEXIT <status>` and powers off.
//!
//! The archive is written here in the kernel's `newc` cpio format
//! (Documentation/driver-api/early-userspace/buffer-format.rst), uncompressed.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::PowercutError;

/// Busybox applets the init script calls.
const APPLETS: [&str; 8] = [
    "sh", "mount", "insmod", "mkdir", "sed", "tr", "poweroff", "echo",
];
/// The modules wanted, by file name; their dependencies come from `modules.dep`.
const WANTED_MODULES: [&str; 2] = ["virtio_pci.ko", "virtio_blk.ko"];

/// A kernel and the modules directory of the same version.
pub struct Kernel {
    /// `/boot/vmlinuz-<version>`.
    pub image: PathBuf,
    /// `/lib/modules/<version>`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The newest Debian cloud kernel installed (package `linux-image-cloud-amd64`).
    pub fn cloud() -> Result<Kernel, PowercutError> {
        let missing = || PowercutError::Missing {
            what: "a cloud kernel in /boot with its /lib/modules".into(),
            hint: "apt-get install linux-image-cloud-amd64",
        };
        let boot = std::fs::read_dir("/boot").map_err(|_| missing())?;
        let mut versions: Vec<String> = boot
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("vmlinuz-").map(str::to_owned))
            .filter(|v| v.contains("cloud") && Path::new("/lib/modules").join(v).is_dir())
            .collect();
        versions.sort();
        let version = versions.pop().ok_or_else(missing)?;
        Ok(Kernel {
            image: PathBuf::from(format!("/boot/vmlinuz-{version}")),
            modules: Path::new("/lib/modules").join(version),
        })
    }

    /// Module paths (relative to the modules directory) to load, dependencies first.
    fn module_load_order(&self) -> Result<Vec<String>, PowercutError> {
        let dep_file = self.modules.join("modules.dep");
        let text =
            std::fs::read_to_string(&dep_file).map_err(PowercutError::io("read", &dep_file))?;
        let deps: Vec<(String, Vec<String>)> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(m, d)| {
                (
                    m.to_owned(),
                    d.split_whitespace().map(str::to_owned).collect(),
                )
            })
            .collect();
        let mut order = Vec::new();
        for want in WANTED_MODULES {
            let Some((module, _)) = deps.iter().find(|(m, _)| m.ends_with(&format!("/{want}")))
            else {
                return Err(PowercutError::Missing {
                    what: format!("module {want} in {}", dep_file.display()),
                    hint: "a kernel that builds virtio as modules (linux-image-cloud-amd64)",
                });
            };
            visit(module, &deps, &mut order);
        }
        Ok(order)
    }
}

/// Appends `module` after its dependencies (depth first), each once.
fn visit(module: &str, deps: &[(String, Vec<String>)], order: &mut Vec<String>) {
    if order.iter().any(|m| m == module) {
        return;
    }
    if let Some((_, needs)) = deps.iter().find(|(m, _)| m == module) {
        for n in needs {
            visit(n, deps, order);
        }
    }
    order.push(module.to_owned());
}

/// Writes the initramfs for `guest` (a program built for this host) to `out`.
pub fn build(kernel: &Kernel, guest: &Path, out: &Path) -> Result<(), PowercutError> {
    let busybox = which("busybox", "apt-get install busybox-static")?;
    let modules = kernel.module_load_order()?;
    let mut cpio = Newc::default();
    for dir in ["bin", "proc", "dev", "sys", "mnt", "mod"] {
        cpio.dir(dir);
    }
    cpio.file("bin/busybox", 0o755, &read(&busybox)?);
    for applet in APPLETS {
        cpio.symlink(&format!("bin/{applet}"), "busybox");
    }
    cpio.file("guest", 0o755, &read(guest)?);
    for lib in shared_libraries(guest)? {
        let inside = lib.to_string_lossy().trim_start_matches('/').to_owned();
        cpio.parents_of(&inside);
        cpio.file(&inside, 0o755, &read(&lib)?);
    }
    let mut names = Vec::new();
    for m in &modules {
        let name = Path::new(m)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.ends_with(".ko") {
            return Err(PowercutError::Missing {
                what: format!("an uncompressed module ({m})"),
                hint: "busybox insmod loads plain .ko files only",
            });
        }
        cpio.file(
            &format!("mod/{name}"),
            0o644,
            &read(&kernel.modules.join(m))?,
        );
        names.push(name);
    }
    cpio.file("init", 0o755, init_script(&names).as_bytes());
    let bytes = cpio.finish();
    std::fs::write(out, bytes).map_err(PowercutError::io("write initramfs", out))
}

fn init_script(modules: &[String]) -> String {
    format!(
        r#"#!/bin/sh
# The firmware's last words have no newline: end them, so every line below stands alone.
echo
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in {mods}; do insmod /mod/$m || echo "INSMODFAIL $m"; done
mount -t ext4 /dev/vda /mnt || echo MOUNTFAIL
args=$(sed -n 's/.*tp\.args=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
/guest $args
echo "GUESTEXIT $?"
poweroff -f
"#,
        mods = modules.join(" ")
    )
}

/// The shared libraries `program` loads, the dynamic loader included (`ldd`).
fn shared_libraries(program: &Path) -> Result<BTreeSet<PathBuf>, PowercutError> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| PowercutError::Missing {
            what: format!("ldd ({e})"),
            hint: "apt-get install libc-bin",
        })?;
    if !out.status.success() {
        // A static program: nothing to copy.
        return Ok(BTreeSet::new());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

pub(crate) fn which(tool: &str, hint: &'static str) -> Result<PathBuf, PowercutError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(PowercutError::Missing {
            what: tool.into(),
            hint,
        })
}

fn read(path: &Path) -> Result<Vec<u8>, PowercutError> {
    std::fs::read(path).map_err(PowercutError::io("read", path))
}

/// A `newc` cpio archive being written.
#[derive(Default)]
struct Newc {
    out: Vec<u8>,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

impl Newc {
    fn dir(&mut self, path: &str) {
        if self.dirs.insert(path.to_owned()) {
            self.entry(path, 0o040_755, &[]);
        }
    }

    /// Every parent directory of `path`, outermost first.
    fn parents_of(&mut self, path: &str) {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            self.dir(&parts[..i].join("/"));
        }
    }

    fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, 0o100_000 | perm, data);
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, 0o120_777, target.as_bytes());
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.next_ino += 1;
        let fields = [
            self.next_ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        let _ = write!(self.out, "070701");
        for f in fields {
            let _ = write!(self.out, "{f:08X}");
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_end_with_the_trailer() {
        let mut c = Newc::default();
        c.parents_of("lib/x86_64-linux-gnu/libc.so.6");
        c.file("lib/x86_64-linux-gnu/libc.so.6", 0o755, b"abc");
        c.symlink("bin/sh", "busybox");
        let out = c.finish();
        assert_eq!(&out[..6], b"070701");
        assert!(out.len().is_multiple_of(4));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("lib\0") && text.contains("lib/x86_64-linux-gnu\0"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!\0"));
        // Each header is 110 bytes of ASCII: magic and 13 eight-digit hex fields.
        assert!(out[6..110].iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn modules_come_after_their_dependencies() {
        let deps = vec![
            (
                "k/virtio_blk.ko".to_owned(),
                vec!["k/virtio_ring.ko".to_owned(), "k/virtio.ko".to_owned()],
            ),
            (
                "k/virtio_ring.ko".to_owned(),
                vec!["k/virtio.ko".to_owned()],
            ),
            ("k/virtio.ko".to_owned(), vec![]),
        ];
        let mut order = Vec::new();
        visit("k/virtio_blk.ko", &deps, &mut order);
        assert_eq!(
            order,
            ["k/virtio.ko", "k/virtio_ring.ko", "k/virtio_blk.ko"]
        );
    }
}
