//! What is known of a received block, from the receiver to the driver.
//!
//! A receiver cuts its input into blocks; each block is stored (block store,
//! and the receiver WAL when it is on) before the driver hears of it. The
//! driver then allocates blocks to batches by time. These are the names both
//! sides use.

use std::fmt;

use tidemark_blockstore::BlockId;

/// A batch's time: milliseconds since the Unix epoch, a multiple of the batch
/// interval (Spark's `Time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchTime(pub u64);

impl fmt::Display for BatchTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

/// A received block: `input-<stream>-<unique>` as in Spark (`StreamBlockId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamBlockId {
    /// The input stream that received it.
    pub stream_id: u32,
    /// Unique within the stream across receiver restarts.
    pub unique_id: u64,
}

impl StreamBlockId {
    /// The id the block store keeps it under.
    pub fn block_id(&self) -> BlockId {
        BlockId::stream(self.stream_id, self.unique_id)
    }
}

impl fmt::Display for StreamBlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input-{}-{}", self.stream_id, self.unique_id)
    }
}

/// Where a block's bytes are kept in a receiver WAL, when the WAL is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalHandle {
    /// The receiver WAL of this stream (one per stream).
    pub stream_id: u32,
    /// The record holding the block.
    pub lsn: u64,
}

/// A block that is stored, as the driver learns of it (`ReceivedBlockInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedBlockInfo {
    /// The block.
    pub block: StreamBlockId,
    /// Records in it, when the receiver counted them.
    pub num_records: Option<u64>,
    /// Its copy in the receiver WAL, when the WAL is on.
    pub wal: Option<WalHandle>,
}

impl ReceivedBlockInfo {
    /// Appends this info in the stream layer's binary form.
    pub fn encode(&self, e: &mut crate::wire::Encoder) {
        e.u32(self.block.stream_id)
            .u64(self.block.unique_id)
            .opt_u64(self.num_records);
        match self.wal {
            None => e.u8(0),
            Some(w) => e.u8(1).u32(w.stream_id).u64(w.lsn),
        };
    }

    /// Reads an info written by [`ReceivedBlockInfo::encode`].
    pub fn decode(
        d: &mut crate::wire::Decoder<'_>,
    ) -> Result<ReceivedBlockInfo, crate::wire::DecodeError> {
        let block = StreamBlockId {
            stream_id: d.u32("block stream id")?,
            unique_id: d.u64("block unique id")?,
        };
        let num_records = d.opt_u64("block record count")?;
        let wal = match d.u8("block WAL tag")? {
            0 => None,
            1 => Some(WalHandle {
                stream_id: d.u32("WAL stream id")?,
                lsn: d.u64("WAL LSN")?,
            }),
            t => return Err(crate::wire::DecodeError(format!("block WAL tag {t}"))),
        };
        Ok(ReceivedBlockInfo {
            block,
            num_records,
            wal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Decoder, Encoder};

    #[test]
    fn block_infos_round_trip() {
        let infos = [
            ReceivedBlockInfo {
                block: StreamBlockId {
                    stream_id: 3,
                    unique_id: 1 << 41,
                },
                num_records: Some(12),
                wal: Some(WalHandle {
                    stream_id: 3,
                    lsn: 99,
                }),
            },
            ReceivedBlockInfo {
                block: StreamBlockId {
                    stream_id: 0,
                    unique_id: 0,
                },
                num_records: None,
                wal: None,
            },
        ];
        for info in infos {
            let mut e = Encoder::new();
            info.encode(&mut e);
            let buf = e.finish();
            let mut d = Decoder::new(&buf);
            assert_eq!(ReceivedBlockInfo::decode(&mut d), Ok(info));
            d.end("info").expect("all read");
        }
    }
}
