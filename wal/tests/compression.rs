//! Per-record zstd: flagged in the frame header, transparent on read, skipped
//! for small or incompressible payloads.

mod common;

use common::frames;
use tidemark_wal::{Compression, Durability, Lsn, Wal, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        segment_size: 1 << 20,
        durability: Durability::PerWrite,
        compression: Compression::Zstd {
            level: 1,
            min_size: 256,
        },
        ..WalOptions::default()
    }
}

#[test]
fn compressible_records_shrink_on_disk_and_read_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text: Vec<u8> = b"batch time 1700000000000 ms: blocks input-0-1 input-0-2\n".repeat(1_000);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..4_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    {
        let wal = Wal::open(dir.path(), opts()).expect("open");
        assert_eq!(wal.append(&text).expect("append"), Lsn(1));
        assert_eq!(wal.append(b"small").expect("append"), Lsn(2));
        assert_eq!(wal.append(&noise).expect("append"), Lsn(3));
        assert_eq!(wal.read(Lsn(1)).expect("read").data, text);
    }
    let on_disk = frames(dir.path());
    let flags: Vec<(u64, u64)> = on_disk
        .iter()
        .filter(|f| f.kind == 1)
        .map(|f| (f.lsn, f.len))
        .collect();
    assert!(
        flags[0].1 < text.len() as u64 / 10,
        "text compresses: {} of {}",
        flags[0].1,
        text.len()
    );
    assert_eq!(flags[1].1, 5, "payloads under min_size are stored raw");
    assert!(
        flags[2].1 >= noise.len() as u64,
        "incompressible payloads are stored raw"
    );
    let bytes = std::fs::read(&on_disk[0].file).expect("read segment");
    assert_eq!(
        bytes[on_disk[0].offset as usize + 29] & 1,
        1,
        "the zstd flag is set"
    );

    let wal = Wal::open(dir.path(), opts()).expect("reopen");
    let back: Vec<_> = wal
        .iter_from(Lsn(1))
        .map(|r| r.expect("replay").data)
        .collect();
    assert_eq!(
        back,
        vec![
            text.into(),
            bytes::Bytes::from_static(b"small"),
            noise.into()
        ]
    );
}

#[test]
fn the_log_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Wal>();
    shared::<std::sync::Arc<Wal>>();
}
