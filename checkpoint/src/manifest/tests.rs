use super::*;

fn part(name: &str, epoch: u64, storage: PartStorage, stored: &[u8]) -> PartInfo {
    let path = match storage {
        PartStorage::Object => format!("parts/{epoch:020}/3-w1/{name}"),
        PartStorage::Inline { .. } => layout::manifest_rel_path(Epoch(epoch)),
    };
    PartInfo {
        name: name.into(),
        path,
        size: stored.len() as u64,
        crc32c: crc32c::crc32c(stored),
        stored_size: stored.len() as u64,
        stored_crc32c: crc32c::crc32c(stored),
        compression: Compression::None,
        origin_epoch: Epoch(epoch),
        storage,
    }
}

fn record(parts: Vec<PartInfo>) -> Record {
    Record {
        kind: RecordKind::Checkpoint,
        epoch: Epoch(7),
        writer_id: "w1".into(),
        generation: 3,
        created_unix_ms: 1_700_000_000_000,
        parts,
        format_version: CURRENT_FORMAT,
        blob: None,
    }
}

/// A record with an object part between two inline parts, encoded whole.
fn mixed() -> (Record, Bytes) {
    let (a, b) = (b"first inline part".as_slice(), b"second".as_slice());
    let r = record(vec![
        part("a", 7, PartStorage::Inline { offset: 0 }, a),
        part("object", 7, PartStorage::Object, b"stored elsewhere"),
        part(
            "b",
            7,
            PartStorage::Inline {
                offset: a.len() as u64,
            },
            b,
        ),
    ]);
    let chunks = r
        .encode_chunks(&[Bytes::from_static(a), Bytes::from_static(b)])
        .unwrap();
    (r, Bytes::from(chunks.concat()))
}

fn sample() -> Record {
    let mut p = part("metadata", 7, PartStorage::Object, b"0123456789");
    p.compression = Compression::Zstd;
    p.stored_size = 8;
    record(vec![p])
}

fn decode(bytes: &[u8]) -> Result<Record> {
    Record::decode(&Bytes::copy_from_slice(bytes), "m")
}

#[test]
fn round_trips() {
    let r = sample();
    let mut back = decode(&r.encode().unwrap()).unwrap();
    assert_eq!(back.blob.take(), Some(Bytes::new()));
    assert_eq!(back, r);
}

#[test]
fn inline_parts_round_trip_with_their_bytes() {
    let (r, bytes) = mixed();
    let back = Record::decode(&bytes, "m").unwrap();
    assert_eq!(back.parts, r.parts);
    assert_eq!(back.format_version, 3);
    let bytes_of = |name: &str| {
        let p = back.parts.iter().find(|p| p.name == name).unwrap();
        back.inline_bytes(p)
    };
    assert_eq!(bytes_of("a").unwrap(), &b"first inline part"[..]);
    assert_eq!(bytes_of("b").unwrap(), &b"second"[..]);
    assert_eq!(bytes_of("object"), None);
    // The blob is raw bytes between the body and the trailer, not encoded in the JSON.
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("}\nfirst inline partsecond\ncrc32c "),
        "{text}"
    );
}

#[test]
fn any_flipped_byte_is_detected() {
    for bytes in [sample().encode().unwrap(), mixed().1.to_vec()] {
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(decode(&damaged).is_err(), "flip at {i} went unnoticed");
        }
    }
}

#[test]
fn truncation_is_detected() {
    for bytes in [sample().encode().unwrap(), mixed().1.to_vec()] {
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err());
        }
    }
}

#[test]
fn inline_parts_must_tile_the_blob() {
    let (mut r, _) = mixed();
    r.parts[2].storage = PartStorage::Inline { offset: 3 };
    assert!(r.encode_chunks(&[Bytes::new()]).is_err());
    let (r, _) = mixed();
    assert!(r.encode_chunks(&[Bytes::from_static(b"short")]).is_err());
}

#[test]
fn head_decode_reads_only_the_body() {
    let (r, bytes) = mixed();
    let len = bytes.len() as u64;
    let blob_at = bytes.len() - "first inline partsecond\ncrc32c 00000000\n".len();
    // Too short for the body: asks for exactly the body and its newline.
    match Record::decode_head(&bytes.slice(..60), len, "m").unwrap() {
        Head::NeedPrefix(n) => assert_eq!(n as usize, blob_at),
        other => panic!("{other:?}"),
    }
    match Record::decode_head(&bytes.slice(..blob_at), len, "m").unwrap() {
        Head::Record(back) => {
            assert_eq!(back.parts, r.parts);
            assert_eq!(back.blob, None);
        }
        other => panic!("{other:?}"),
    }
    // Damage in the body or the frame line is caught without the rest of the object.
    for i in 0..blob_at {
        let mut damaged = bytes.to_vec();
        damaged[i] ^= 0x01;
        let damaged = Bytes::from(damaged).slice(..blob_at);
        assert!(
            !matches!(Record::decode_head(&damaged, len, "m"), Ok(Head::Record(_))),
            "flip at {i} went unnoticed"
        );
    }
    // An object whose size does not match its frame line (a cut or grown blob) is corrupt.
    assert!(Record::decode_head(&bytes.slice(..blob_at), len - 1, "m").is_err());
    assert!(Record::decode_head(&bytes.slice(..blob_at), len + 1, "m").is_err());
}

#[test]
fn head_decode_of_older_formats_asks_for_the_whole_object() {
    let covered = b"TIDEMARK-MANIFEST 2\n{}\n";
    let bytes = Bytes::copy_from_slice(covered);
    match Record::decode_head(&bytes.slice(..10), 1000, "m").unwrap() {
        Head::NeedPrefix(1000) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn version_2_records_still_decode() {
    let body = r#"{"kind":"checkpoint","epoch":5,"writer_id":"w","generation":4,"created_unix_ms":1,"parts":[{"name":"m","path":"parts/x","size":3,"crc32c":1,"stored_size":2,"stored_crc32c":2,"compression":"zstd","origin_epoch":4}]}"#;
    let covered = format!("TIDEMARK-MANIFEST 2\n{body}\n");
    let bytes = format!(
        "{covered}crc32c {:08x}\n",
        crc32c::crc32c(covered.as_bytes())
    );
    let r = decode(bytes.as_bytes()).unwrap();
    assert_eq!(r.format_version, 2);
    assert_eq!(r.parts[0].origin_epoch, Epoch(4));
    assert_eq!(r.parts[0].storage, PartStorage::Object);
    // An inline part cannot appear in a version 2 record.
    let inline = body.replace(
        r#""origin_epoch":4}"#,
        r#""origin_epoch":5,"storage":{"inline":{"offset":0}}}"#,
    );
    let covered = format!("TIDEMARK-MANIFEST 2\n{inline}\n");
    let bytes = format!(
        "{covered}crc32c {:08x}\n",
        crc32c::crc32c(covered.as_bytes())
    );
    assert!(matches!(
        decode(bytes.as_bytes()),
        Err(CheckpointError::Corrupt { .. })
    ));
}

#[test]
fn frame_is_what_older_builds_expect() {
    // A version 2 build reads the first line as the whole header and checks the trailer over
    // everything before it, ending in a newline: then it reports version 3 as unsupported.
    let (_, bytes) = mixed();
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap();
    assert_eq!(first_line, b"TIDEMARK-MANIFEST 3");
    let (covered, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    assert_eq!(
        trailer,
        format!("crc32c {:08x}\n", crc32c::crc32c(covered)).as_bytes()
    );
    assert_eq!(covered.last(), Some(&b'\n'));
}

#[test]
fn newer_format_is_a_clear_error() {
    let bytes = sample().encode().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let covered = text.rsplit_once("crc32c ").unwrap().0.replacen(
        &format!("{MAGIC} {CURRENT_FORMAT}"),
        &format!("{MAGIC} 99"),
        1,
    );
    let reframed = format!(
        "{covered}crc32c {:08x}\n",
        crc32c::crc32c(covered.as_bytes())
    );
    match decode(reframed.as_bytes()) {
        Err(CheckpointError::UnsupportedFormat { found: 99, .. }) => {}
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    let bytes = Bytes::from(reframed);
    match Record::decode_head(&bytes.slice(..30), bytes.len() as u64, "m") {
        Ok(Head::NeedPrefix(n)) => assert_eq!(n, bytes.len() as u64),
        other => panic!("expected a request for the whole record, got {other:?}"),
    }
}
