//! Helpers shared by the WAL's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tidemark_wal::{Durability, WalOptions};

/// A deterministic payload for (writer, seq): a self-describing prefix, then
/// pseudo-random bytes, so any record read back can be checked on its own.
/// Under 1.5 KiB, except every 8th payload of any writer but 0, which is
/// 8 to 12 KiB: with several writers, both ways a frame reaches a segment
/// (copied into the mapping, or written through the file) interleave. Writer 0
/// (the damage and retention tests) only makes small ones.
pub fn payload(writer: u64, seq: u64) -> Vec<u8> {
    let mut out = format!("{writer}:{seq}:").into_bytes();
    let mix = seq.wrapping_mul(7919) ^ writer.wrapping_mul(104_729);
    let len = if writer != 0 && (writer + seq) % 8 == 7 {
        (8 << 10) + (mix % (4 << 10)) as usize
    } else {
        (mix % 1500) as usize
    };
    let mut x = writer.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seq.wrapping_add(1);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

/// Parses a payload made by [`payload`] and checks its body; returns (writer, seq).
pub fn check_payload(data: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(data.get(..data.len().min(48))?)
        .unwrap_or_else(|e| std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or(""));
    let mut it = text.splitn(3, ':');
    let writer = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    (payload(writer, seq) == data).then_some((writer, seq))
}

/// Small segments, so tests cross many segment boundaries.
pub fn small_opts(durability: Durability) -> WalOptions {
    WalOptions {
        segment_size: 64 << 10,
        durability,
        ..WalOptions::default()
    }
}

/// One parsed frame of a segment file, read with the documented format.
#[derive(Clone, Debug)]
pub struct RawFrame {
    pub file: PathBuf,
    pub offset: u64,
    pub lsn: u64,
    pub len: u64,
    pub kind: u8,
}

impl RawFrame {
    /// End of header + payload (padding excluded).
    pub fn payload_end(&self) -> u64 {
        self.offset + 32 + self.len
    }
}

/// Live segment files of a log directory in LSN order, with their base LSN.
pub fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("list dir") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if !(name.starts_with("seg-") && name.ends_with(".wal")) {
            continue;
        }
        let b = std::fs::read(&p).expect("read segment");
        let seq: u64 = name[4..name.len() - 4].parse().expect("seq");
        if b.len() < 64
            || &b[0..8] != b"TDMKWAL\0"
            || u64::from_le_bytes(b[24..32].try_into().unwrap()) != seq
        {
            continue; // a spare
        }
        out.push((u64::from_le_bytes(b[32..40].try_into().unwrap()), p));
    }
    out.sort();
    out
}

/// Every frame of every live segment, walking the documented format.
pub fn frames(dir: &Path) -> Vec<RawFrame> {
    let mut out = Vec::new();
    for (_, path) in segment_files(dir) {
        let b = std::fs::read(&path).expect("read segment");
        let tag = &b[12..16];
        let mut off = 64usize;
        while off + 32 <= b.len() && &b[off + 16..off + 20] == tag {
            let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as u64;
            let lsn = u64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap());
            let kind = b[off + 28];
            out.push(RawFrame {
                file: path.clone(),
                offset: off as u64,
                lsn,
                len,
                kind,
            });
            if kind != 1 {
                break;
            }
            off += (32 + len as usize).div_ceil(8) * 8;
        }
    }
    out
}

/// Copies every file of `from` into `to` (a fresh directory).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("list") {
        let p = e.expect("entry").path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).expect("copy");
        }
    }
}
