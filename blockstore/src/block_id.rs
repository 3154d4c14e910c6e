//! Block identifiers, named as Spark names them.

use std::fmt;
use std::str::FromStr;

use crate::error::BlockError;

/// Longest accepted block name; names become file names in the disk store.
pub const MAX_BLOCK_NAME_LEN: usize = 200;

/// Identifies a block cluster-wide. Its [`Display`](fmt::Display) form is Spark's block name
/// (`input-<stream>-<unique>` for received stream data, `rdd_<rdd>_<split>` for cached
/// partitions, `test_<name>` for anything else) and is also its file name on disk, so every id
/// displays as a non-empty string of ASCII letters, digits, `-`, `_` and `.`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(Kind);

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Stream { stream_id: u32, unique_id: u64 },
    Rdd { rdd_id: u32, split_index: u32 },
    Test(String),
}

impl BlockId {
    /// A received stream block, Spark's `StreamBlockId`: displays as `input-<stream_id>-<unique_id>`.
    pub fn stream(stream_id: u32, unique_id: u64) -> Self {
        BlockId(Kind::Stream {
            stream_id,
            unique_id,
        })
    }

    /// A cached partition, Spark's `RDDBlockId`: displays as `rdd_<rdd_id>_<split_index>`.
    pub fn rdd(rdd_id: u32, split_index: u32) -> Self {
        BlockId(Kind::Rdd {
            rdd_id,
            split_index,
        })
    }

    /// A free-form block, Spark's `TestBlockId`: displays as `test_<name>`. The name must be
    /// non-empty ASCII letters, digits, `-`, `_` or `.`.
    pub fn test(name: &str) -> Result<Self, BlockError> {
        check_chars(name)?;
        Ok(BlockId(Kind::Test(name.to_string())))
    }

    /// The stream id and unique id, if this is a stream block.
    pub fn as_stream(&self) -> Option<(u32, u64)> {
        match self.0 {
            Kind::Stream {
                stream_id,
                unique_id,
            } => Some((stream_id, unique_id)),
            _ => None,
        }
    }
}

fn invalid(name: &str, reason: &'static str) -> BlockError {
    BlockError::InvalidBlockId {
        name: name.chars().take(64).collect(),
        reason,
    }
}

fn check_chars(name: &str) -> Result<(), BlockError> {
    if name.is_empty() || name.len() > MAX_BLOCK_NAME_LEN {
        return Err(invalid(name, "length must be 1..=200"));
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(invalid(
            name,
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Stream {
                stream_id,
                unique_id,
            } => write!(f, "input-{stream_id}-{unique_id}"),
            Kind::Rdd {
                rdd_id,
                split_index,
            } => write!(f, "rdd_{rdd_id}_{split_index}"),
            Kind::Test(name) => write!(f, "test_{name}"),
        }
    }
}

impl FromStr for BlockId {
    type Err = BlockError;

    /// Parses the [`Display`](fmt::Display) form back.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("input-") {
            let (stream, unique) = rest
                .split_once('-')
                .ok_or_else(|| invalid(s, "expected input-<stream>-<unique>"))?;
            let stream_id = stream.parse().map_err(|_| invalid(s, "bad stream id"))?;
            let unique_id = unique.parse().map_err(|_| invalid(s, "bad unique id"))?;
            return Ok(BlockId::stream(stream_id, unique_id));
        }
        if let Some(rest) = s.strip_prefix("rdd_") {
            let (rdd, split) = rest
                .split_once('_')
                .ok_or_else(|| invalid(s, "expected rdd_<rdd>_<split>"))?;
            let rdd_id = rdd.parse().map_err(|_| invalid(s, "bad rdd id"))?;
            let split_index = split.parse().map_err(|_| invalid(s, "bad split index"))?;
            return Ok(BlockId::rdd(rdd_id, split_index));
        }
        if let Some(name) = s.strip_prefix("test_") {
            return BlockId::test(name);
        }
        Err(invalid(
            s,
            "unknown block kind (expected input-, rdd_ or test_)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_spark_and_round_trip() {
        let ids = [
            (BlockId::stream(0, 42), "input-0-42"),
            (BlockId::rdd(3, 7), "rdd_3_7"),
            (BlockId::test("a.b-c_d").unwrap(), "test_a.b-c_d"),
        ];
        for (id, name) in ids {
            assert_eq!(id.to_string(), name);
            assert_eq!(name.parse::<BlockId>().unwrap(), id);
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            "test_../x",
            "test_a/b",
            "test_",
            "input-1",
            "input-x-1",
            "foo",
            "rdd_1",
        ] {
            assert!(bad.parse::<BlockId>().is_err(), "{bad} accepted");
        }
        assert!(BlockId::test(&"x".repeat(201)).is_err());
    }
}
