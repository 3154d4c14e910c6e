//! `dump`: records, decompressed, as text, hex or JSON lines.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use tidemark_wal::{Lsn, RecoveryMode, Wal, WalOptions};

use super::DumpFormat;
use super::scan::Problem;
use crate::outcome::{Health, ToolError};

/// Which records to print.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Range {
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub limit: Option<u64>,
}

/// Prints the records of `dir` in `range`. The log is opened read-only with
/// SkipCorrupted, so every readable record is printed; damage is reported on
/// stderr and makes the exit code 1.
pub(crate) fn run(
    dir: &Path,
    range: Range,
    format: DumpFormat,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    if let (Some(a), Some(b)) = (range.from, range.to)
        && a > b
    {
        return Err(ToolError::Usage(format!("--from {a} is after --to {b}")));
    }
    let format = if json { DumpFormat::Json } else { format };
    let opts = WalOptions {
        recovery: RecoveryMode::SkipCorrupted,
        ..WalOptions::default()
    };
    super::scan::require_segments(dir)?;
    let wal = Wal::open_read_only(dir, opts)?;
    let damage = &wal.recovery_report().damage;
    for d in damage {
        eprintln!("wal-inspect: damage: {}", Problem::from_damage(d).line());
    }
    let mut damaged = !damage.is_empty();
    let records = wal.iter_from(Lsn(range.from.unwrap_or(1)));
    for rec in records.take(range.limit.map_or(usize::MAX, |n| n as usize)) {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                eprintln!("wal-inspect: damage: {}", Problem::from_error(&e).line());
                damaged = true;
                break;
            }
        };
        if range.to.is_some_and(|to| rec.lsn.0 > to) {
            break;
        }
        write_record(out, format, rec.lsn.0, &rec.data)?;
    }
    Ok(Health::from_damage(damaged))
}

pub(crate) fn write_record(
    out: &mut dyn Write,
    format: DumpFormat,
    lsn: u64,
    data: &[u8],
) -> std::io::Result<()> {
    match format {
        DumpFormat::Text => writeln!(out, "{lsn}\t{}\t{}", data.len(), escape(data)),
        DumpFormat::Hex => {
            writeln!(out, "LSN {lsn}  {} bytes", data.len())?;
            hex_dump(out, data)
        }
        DumpFormat::Json => {
            let text = std::str::from_utf8(data).ok();
            let v = json!({ "lsn": lsn, "len": data.len(), "text": text, "hex": hex(data) });
            writeln!(out, "{v}")
        }
    }
}

/// Printable ASCII as is, everything else as `\xNN` (and `\\`, `\n`, `\t`).
pub(crate) fn escape(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len());
    for &b in data {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Lower-case hex of `data`.
pub(crate) fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// `xxd`-style lines: offset, 16 bytes in hex, the printable ones.
fn hex_dump(out: &mut dyn Write, data: &[u8]) -> std::io::Result<()> {
    for (i, chunk) in data.chunks(16).enumerate() {
        let hexes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..=0x7e).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "  {:08x}  {:<47}  {ascii}", i * 16, hexes.join(" "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_dumps() {
        assert_eq!(escape(b"a\\b\n\x00z"), "a\\\\b\\n\\x00z");
        let mut out = Vec::new();
        hex_dump(&mut out, b"0123456789abcdefXY").expect("dump");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("  00000000  30 31 32"));
        assert!(text.contains("00000010  58 59"));
        assert!(text.contains("XY"));
    }
}
