//! Running one task on an executor: decode the [`TaskSpec`], read the batch's
//! records, run the named output of this process's own copy of the graph.
//!
//! Blocks are read in the order the driver allocated them (per stream, in
//! the order their reports reached the driver), so an output sees a batch's
//! records in the order they were received; each block comes from the block
//! store, or, when the block store lost it, from the receiver WAL
//! ([`crate::handler::read_block`]).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tidemark_blockstore::BlockManager;

use crate::error::StreamError;
use crate::graph::{StreamGraph, TaskInput, TaskSpec};
use crate::handler::read_block;

/// Reads the records of encoded Kafka offset ranges (the direct stream's tasks).
pub trait RangeReader: Send + Sync {
    /// Every record of `ranges`, in range order then offset order.
    fn read_ranges(&self, ranges: &Bytes) -> Result<Vec<Bytes>, StreamError>;
}

/// Runs tasks against one graph, block manager and receiver-WAL root.
pub struct TaskRunner {
    graph: Arc<StreamGraph>,
    blocks: Arc<BlockManager>,
    wal_root: Option<PathBuf>,
    ranges: Option<Arc<dyn RangeReader>>,
}

impl TaskRunner {
    /// A runner; `wal_root` is where receiver WALs live when the WAL is on.
    pub fn new(
        graph: Arc<StreamGraph>,
        blocks: Arc<BlockManager>,
        wal_root: Option<PathBuf>,
        ranges: Option<Arc<dyn RangeReader>>,
    ) -> TaskRunner {
        TaskRunner {
            graph,
            blocks,
            wal_root,
            ranges,
        }
    }

    /// Runs the task encoded in `task`; its output's error becomes `Err(reason)`.
    pub fn run(&self, task: &[u8]) -> Result<Bytes, String> {
        let spec = TaskSpec::decode(task).map_err(|e| format!("bad task: {e}"))?;
        let output = self
            .graph
            .output(&spec.output)
            .ok_or_else(|| format!("no output named {:?} in this graph", spec.output))?;
        let records = self.records(&spec.input).map_err(|e| e.to_string())?;
        output.run(spec.batch, &records)?;
        Ok(Bytes::from(records.len().to_string()))
    }

    fn records(&self, input: &TaskInput) -> Result<Vec<Bytes>, StreamError> {
        match input {
            TaskInput::Blocks(blocks) => {
                let mut records = Vec::new();
                for info in blocks {
                    records.extend(read_block(&self.blocks, info, self.wal_root.as_deref())?);
                }
                Ok(records)
            }
            TaskInput::OffsetRanges(ranges) => match &self.ranges {
                Some(reader) => reader.read_ranges(ranges),
                None => Err(StreamError::InvalidGraph(
                    "a direct-stream task reached an executor without a Kafka reader".into(),
                )),
            },
        }
    }
}
