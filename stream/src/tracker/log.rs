//! The tracker's metadata log: a tidemark WAL of [`TrackerEvent`]s, or nothing.
//!
//! With a WAL, an event's key is its LSN and [`MetadataLog::append`] returns
//! once the event is durable (group commit). Without one, keys come from a
//! counter in the same order and nothing survives the process, as in Spark with
//! the WAL off.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tidemark_wal::{DamageKind, Lsn, Wal};

use crate::error::StreamError;
use crate::tracker::events::TrackerEvent;
use crate::tracker::options::TrackerOptions;

/// Where events go before the state changes.
pub(crate) struct MetadataLog {
    wal: Option<Wal>,
    /// The last key handed out without a WAL.
    counter: AtomicU64,
}

impl MetadataLog {
    /// Opens (or creates) the WAL in `dir`, or a log that keeps nothing.
    pub(crate) fn open(
        dir: Option<&Path>,
        opts: &TrackerOptions,
    ) -> Result<MetadataLog, StreamError> {
        let wal = match dir {
            Some(dir) => Some(
                Wal::open(dir, opts.wal_options())
                    .map_err(StreamError::wal("open the tracker's metadata WAL"))?,
            ),
            None => None,
        };
        if let Some(wal) = &wal {
            report_recovery(wal);
        }
        Ok(MetadataLog {
            wal,
            counter: AtomicU64::new(0),
        })
    }

    /// Hands every logged event to `apply` in LSN order; returns how many.
    pub(crate) fn replay(
        &self,
        mut apply: impl FnMut(u64, TrackerEvent),
    ) -> Result<u64, StreamError> {
        let Some(wal) = &self.wal else {
            return Ok(0);
        };
        let mut count = 0;
        for record in wal.iter_from(Lsn(0)) {
            let record = record.map_err(StreamError::wal("replay the tracker's metadata WAL"))?;
            apply(
                record.lsn.0,
                TrackerEvent::decode(&record.data, record.lsn.0)?,
            );
            count += 1;
        }
        Ok(count)
    }

    /// Logs `event`; returns its key once it is durable. On error nothing was
    /// acknowledged (after a failed sync the record may or may not be there on
    /// reopening, as for any write whose sync failed; the WAL then refuses
    /// every later append until reopened).
    pub(crate) fn append(
        &self,
        event: &TrackerEvent,
        what: &'static str,
    ) -> Result<u64, StreamError> {
        match &self.wal {
            Some(wal) => wal
                .append(&event.encode())
                .map(|lsn| lsn.0)
                .map_err(StreamError::wal(what)),
            None => Ok(self.counter.fetch_add(1, Ordering::Relaxed) + 1),
        }
    }

    /// Retires every segment holding only events below `keep_from`; with
    /// `None` (nothing needed), everything below the last event. The segment
    /// being written is never retired.
    pub(crate) fn truncate(&self, keep_from: Option<u64>) -> Result<(), StreamError> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let Some(keep) = keep_from.map(Lsn).or_else(|| wal.last_lsn()) else {
            return Ok(());
        };
        wal.truncate_before(keep)
            .map_err(StreamError::wal("truncate the tracker's metadata WAL"))?;
        tracing::debug!(keep_from = keep.0, first = ?wal.first_lsn(), "truncated the metadata WAL");
        Ok(())
    }

    /// The first and last LSN the WAL holds (`None` without a WAL or records).
    pub(crate) fn span(&self) -> Option<(Lsn, Lsn)> {
        let wal = self.wal.as_ref()?;
        Some((wal.first_lsn()?, wal.last_lsn()?))
    }
}

/// Logs what recovery found: a torn tail is expected after a crash, corruption is not.
fn report_recovery(wal: &Wal) {
    let report = wal.recovery_report();
    for damage in &report.damage {
        match damage.kind {
            DamageKind::TornTail => tracing::info!(
                segment = %damage.segment.display(), lsn = damage.lsn.0, reason = %damage.reason,
                "metadata WAL: dropped a torn tail"
            ),
            DamageKind::Corruption => tracing::warn!(
                segment = %damage.segment.display(), lsn = damage.lsn.0, reason = %damage.reason,
                "metadata WAL: skipped a corrupted record"
            ),
        }
    }
    tracing::debug!(records = report.records, first = ?report.first_lsn, "opened the metadata WAL");
}
