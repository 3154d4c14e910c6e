//! Storing one block: an id, the block handler, then the reporter.

use std::sync::Arc;

use bytes::Bytes;

use crate::block::ReceivedBlockInfo;
use crate::error::StreamError;
use crate::handler::ReceivedBlockHandler;
use crate::receiver::ids::BlockIds;
use crate::receiver::lifecycle::Lifecycle;

/// Stores blocks through the handler and reports them, in that order.
pub(crate) struct BlockSink {
    ids: BlockIds,
    handler: Arc<dyn ReceivedBlockHandler>,
    lifecycle: Arc<Lifecycle>,
}

impl BlockSink {
    pub(crate) fn new(
        ids: BlockIds,
        handler: Arc<dyn ReceivedBlockHandler>,
        lifecycle: Arc<Lifecycle>,
    ) -> BlockSink {
        BlockSink {
            ids,
            handler,
            lifecycle,
        }
    }

    /// Gives `records` a new id, stores them, reports the block; returns once
    /// all three are done. Any failure is returned as it is, not reported.
    pub(crate) fn store(&self, records: &[Bytes]) -> Result<ReceivedBlockInfo, StreamError> {
        let id = self.ids.next_id()?;
        let info = self.handler.store_block(id, records)?;
        self.lifecycle.reporter().block_stored(&info)?;
        tracing::debug!(block = %id, records = records.len(), "block stored and reported");
        Ok(info)
    }

    /// Stores a block the generator cut. On failure the block's records are
    /// lost (what an unreliable receiver accepts); the failure is reported and
    /// the live generation restarted.
    pub(crate) fn push(&self, records: Vec<Bytes>) {
        if let Err(e) = self.store(&records) {
            let what = format!("storing a block of {} records failed", records.len());
            self.fail(&what, &e, None);
        }
    }

    /// Reports a failure and restarts `generation` (`None`: the live one).
    pub(crate) fn fail(&self, what: &str, error: &StreamError, generation: Option<u64>) {
        let message = format!("{what}: {error}");
        self.lifecycle.report_error(message.clone());
        let delay = self.lifecycle.restart_delay();
        match generation {
            Some(g) => {
                self.lifecycle.request_restart(g, message, delay);
            }
            None => self.lifecycle.restart_live(message, delay),
        }
    }
}
