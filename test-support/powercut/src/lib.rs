//! Power-cut tests: a workload runs inside a small Linux VM, the VM's power is
//! cut at a seeded random moment, and a second boot checks what the disk kept.
//!
//! SIGKILLing a process leaves the page cache intact, so it never shows a lost
//! unsynced write; a VM killed whole does. Start at [`vm`] (the VM and what a
//! power cut loses), then [`initramfs`] (the guest's root file system) and the
//! guest program `src/bin/powercut-guest.rs` with the record format in
//! [`workload`]. The rounds themselves are in `tests/`.
//!
//! Needs `qemu-system-x86`, `linux-image-cloud-amd64`, `busybox-static` and
//! `e2fsprogs` (installed by `scripts/setup-test-servers.sh`); without them the
//! tests fail with the missing piece named.

pub mod error;
pub mod initramfs;
pub mod vm;
pub mod wal_verdict;
pub mod workload;

pub use error::PowercutError;
pub use vm::{GuestImage, Vm, fresh_ext4_disk};
