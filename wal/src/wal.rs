//! The log: appends, group commit, reads, retention.
//!
//! Appending is two short steps and a copy. Under the reservation lock a writer
//! takes its LSNs and its byte range in the active segment (rotating to a new
//! segment when the range does not fit). Outside any lock it encodes its frames
//! into the mapping, then publishes them in the segment index, which makes them
//! readable. Durability is the write barrier's business: the sync leader makes
//! durable the longest prefix of LSNs whose frames are all copied.
//!
//! Ordering: LSNs are dense and increase with byte offset; a record is durable
//! only together with every record before it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::error::{Result, WalError};
use crate::format::{
    FLAG_ZSTD, FrameHeader, KIND_RECORD, SEAL_FRAME_LEN, SEGMENT_HEADER_LEN, frame_len,
};
use crate::fs_util::{DirLock, create_dir_durable, sync_dir};
use crate::group_pacer::GroupPacer;
use crate::options::{
    Compression, Durability, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SegmentOptions, WalOptions,
    prefaults_spares,
};
use crate::reader::{WalIter, read_record};
use crate::recovery::{RecoveryReport, recover};
use crate::segment::Segment;
use crate::segment_pool::SegmentPool;
use crate::ticker::Ticker;
use crate::write_barrier::{SyncFailed, WriteBarrier};
use crate::writeback::Writeback;
use crate::{Lsn, Record};

/// Whether appends wait for a sync (so early writeback has nothing to overlap).
fn syncs_every_append(durability: Durability) -> bool {
    matches!(durability, Durability::PerWrite | Durability::Group { .. })
}

/// Unix time in nanoseconds (0 if the clock is before 1970).
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A write-ahead log in one directory. `Send + Sync`: share it through `Arc`.
///
/// Guarantees:
/// - `append` returns a dense, increasing LSN; the record is readable at once and
///   durable as [`Durability`] says.
/// - After a crash, `open` returns every record that was durable, byte for byte,
///   and nothing that was not appended; a batch is there whole or not at all.
/// - A failed sync is fatal for the instance: every later append and sync fails
///   with [`WalError::Poisoned`] until the log is reopened. The append that saw
///   the failure has an unknown outcome, as any write whose sync failed: after
///   reopening, its record is either there whole or absent.
/// - One writing process per directory (an advisory lock); read-only opens take no lock.
///
/// Dropping the log does not sync: records appended and not yet durable stay in
/// the page cache (they survive a process crash, not a power loss).
pub struct Wal {
    inner: Arc<Inner>,
}

struct Tail {
    seg: Option<Arc<Segment>>,
    off: u64,
    next_lsn: u64,
}

struct Reservation {
    seg: Arc<Segment>,
    off: u64,
    first_lsn: u64,
    durable: u64,
}

struct Encoded<'a> {
    data: Cow<'a, [u8]>,
    flags: u8,
}

pub(crate) struct Inner {
    dir: PathBuf,
    opts: WalOptions,
    log_id: u64,
    writable: bool,
    tail: Mutex<Tail>,
    /// Highest LSN handed out (0: none).
    reserved: AtomicU64,
    /// Every LSN up to this one has its frame copied. Advanced by the sync leader.
    written: AtomicU64,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    barrier: WriteBarrier,
    /// How long a group-commit leader waits for company (see `group_pacer`).
    pacer: GroupPacer,
    pool: Option<SegmentPool>,
    report: RecoveryReport,
    /// LSNs up to this one without a record are gaps left by recovery.
    pub(crate) recovered_last: u64,
    ticker: Mutex<Option<Ticker>>,
    /// Early writeback (writable `Buffered` and `Interval` logs only).
    writeback: Option<Writeback>,
    _lock: Option<DirLock>,
}

impl Wal {
    /// Opens (or creates) the log in `dir` for writing, recovering it per `opts.recovery`.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal> {
        Wal::open_with(dir, opts, SegmentOptions::default())
    }

    /// Like [`Wal::open`], with explicit segment preparation and reuse settings.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: WalOptions,
        segments: SegmentOptions,
    ) -> Result<Wal> {
        validate(&opts)?;
        let dir = dir.as_ref();
        create_dir_durable(dir)?;
        let lock = DirLock::acquire(dir)?;
        let inner = Arc::new(Inner::recover(dir, opts, segments, Some(lock))?);
        inner.start_ticker(&inner);
        Ok(Wal { inner })
    }

    /// Opens the log for reading only: no lock, nothing on disk changes. Recovery
    /// runs in memory, and its report says what a writable open would do.
    pub fn open_read_only(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal> {
        validate(&opts)?;
        Ok(Wal {
            inner: Arc::new(Inner::recover(
                dir.as_ref(),
                opts,
                SegmentOptions::default(),
                None,
            )?),
        })
    }

    /// Appends one record; returns its LSN once it is durable per the options.
    pub fn append(&self, data: &[u8]) -> Result<Lsn> {
        let enc = [self.inner.encode(data)?];
        self.inner.write(&enc).map(|r| *r.start())
    }

    /// Appends records as one batch with consecutive LSNs. After a crash the
    /// batch is recovered whole or not at all. The batch must fit in one segment.
    pub fn append_batch<I, T>(&self, records: I) -> Result<RangeInclusive<Lsn>>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let records: Vec<T> = records.into_iter().collect();
        let enc = records
            .iter()
            .map(|r| self.inner.encode(r.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if enc.is_empty() {
            return Err(WalError::EmptyBatch);
        }
        self.inner.write(&enc)
    }

    /// Makes everything appended so far durable; returns the durable LSN.
    pub fn sync(&self) -> Result<Lsn> {
        self.inner.check_writable()?;
        let target = self.inner.reserved.load(Ordering::Acquire);
        self.inner.sync_through(target, Duration::ZERO).map(Lsn)
    }

    /// Reads the record `lsn` (located through the segment index, not a scan).
    pub fn read(&self, lsn: Lsn) -> Result<Record> {
        let seg = self
            .inner
            .segment_of(lsn.0)
            .ok_or(WalError::NotFound { lsn })?;
        let off = seg
            .index
            .get(lsn.0 - seg.header.base_lsn)
            .ok_or(WalError::NotFound { lsn })?;
        read_record(&seg, off, lsn.0)
    }

    /// Scans records in LSN order from `lsn` (or from the first record, if later).
    pub fn iter_from(&self, lsn: Lsn) -> WalIter {
        WalIter::new(self.inner.clone(), lsn)
    }

    /// Drops every segment all of whose records are below `lsn`. The active
    /// segment is never dropped. Retired segments are recycled or deleted.
    pub fn truncate_before(&self, lsn: Lsn) -> Result<()> {
        self.inner.retire_prefix(|seg| seg.end_lsn() <= lsn.0)
    }

    /// Drops the oldest sealed segments that were sealed before `threshold`,
    /// like Spark's `WriteAheadLog.clean(threshTime)`. Never the active segment.
    pub fn clean_older_than(&self, threshold: SystemTime) -> Result<()> {
        let cutoff = threshold
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.inner
            .retire_prefix(|seg| seg.sealed_at().is_some_and(|at| at < cutoff))
    }

    /// The first readable LSN, if the log holds any record.
    pub fn first_lsn(&self) -> Option<Lsn> {
        self.inner.first_lsn()
    }

    /// The last LSN handed out, if the log holds any record.
    pub fn last_lsn(&self) -> Option<Lsn> {
        self.inner.first_lsn()?;
        Some(Lsn(self.inner.reserved.load(Ordering::Acquire)))
    }

    /// What `open()` found and did.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The highest LSN known durable.
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.inner.barrier.durable())
    }
}

impl Drop for Wal {
    /// Stops the interval sync thread first (it may hold the log for the length
    /// of one sync), so that the directory lock goes with this handle unless an
    /// iterator still holds the log.
    fn drop(&mut self) {
        drop(self.inner.ticker.lock().take());
    }
}

fn validate(opts: &WalOptions) -> Result<()> {
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&opts.segment_size)
        || !opts.segment_size.is_multiple_of(4096)
    {
        return Err(WalError::InvalidOptions(format!(
            "segment_size {} must be a multiple of 4096 between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}",
            opts.segment_size
        )));
    }
    if let Durability::Interval(d) = opts.durability
        && d.is_zero()
    {
        return Err(WalError::InvalidOptions(
            "Durability::Interval needs a non-zero interval".into(),
        ));
    }
    Ok(())
}

impl Inner {
    fn recover(
        dir: &Path,
        opts: WalOptions,
        seg_opts: SegmentOptions,
        lock: Option<DirLock>,
    ) -> Result<Inner> {
        let writable = lock.is_some();
        let rec = recover(dir, opts.recovery, writable)?;
        let log_id = rec.log_id.unwrap_or_else(rand::random);
        let last = rec.next_lsn - 1;
        let pool = if writable {
            let (spares, misfits): (Vec<_>, Vec<_>) = rec
                .spares
                .into_iter()
                .partition(|s| s.len() == opts.segment_size);
            for m in misfits {
                std::fs::remove_file(&m.path)
                    .map_err(|e| WalError::io("remove spare segment", &m.path, e))?;
            }
            let pool = SegmentPool::start(
                dir,
                opts.segment_size,
                seg_opts.init.resolve(opts.durability),
                prefaults_spares(opts.durability),
                seg_opts.recycle,
                rec.max_seq + 1,
                spares,
            );
            for seg in rec.retired {
                pool.retire(seg)?;
            }
            Some(pool)
        } else {
            None
        };
        let segments: BTreeMap<u64, Arc<Segment>> = rec
            .segments
            .iter()
            .map(|s| (s.header.base_lsn, s.clone()))
            .collect();
        let tail = Tail {
            seg: rec.append_at.and(rec.segments.last().cloned()),
            off: rec.append_at.unwrap_or(SEGMENT_HEADER_LEN),
            next_lsn: rec.next_lsn,
        };
        let inner = Inner {
            dir: dir.to_path_buf(),
            log_id,
            writable,
            tail: Mutex::new(tail),
            reserved: AtomicU64::new(last),
            written: AtomicU64::new(last),
            segments: RwLock::new(segments),
            barrier: WriteBarrier::new(last),
            pacer: GroupPacer::default(),
            pool,
            report: rec.report,
            recovered_last: last,
            ticker: Mutex::new(None),
            writeback: (writable && !syncs_every_append(opts.durability)).then(Writeback::start),
            _lock: lock,
            opts,
        };
        if writable && inner.tail.lock().seg.is_none() {
            inner.rotate(&mut inner.tail.lock())?;
            sync_dir(dir)?;
        }
        Ok(inner)
    }

    fn check_writable(&self) -> Result<()> {
        if !self.writable {
            return Err(WalError::ReadOnly);
        }
        if self.barrier.is_poisoned() {
            return Err(self.poisoned());
        }
        Ok(())
    }

    fn poisoned(&self) -> WalError {
        let cause = self
            .barrier
            .failure()
            .map_or_else(|| "unknown".to_string(), |f| f.0);
        WalError::Poisoned { cause }
    }

    fn encode<'a>(&self, data: &'a [u8]) -> Result<Encoded<'a>> {
        if let Compression::Zstd { level, min_size } = self.opts.compression
            && data.len() >= min_size
        {
            let packed = zstd::bulk::compress(data, level)
                .map_err(|e| WalError::io("compress record", &self.dir, e))?;
            if packed.len() < data.len() {
                return Ok(Encoded {
                    data: Cow::Owned(packed),
                    flags: FLAG_ZSTD,
                });
            }
        }
        Ok(Encoded {
            data: Cow::Borrowed(data),
            flags: 0,
        })
    }

    /// Reserves, copies and publishes `records`, then waits for durability.
    fn write(&self, records: &[Encoded<'_>]) -> Result<RangeInclusive<Lsn>> {
        self.check_writable()?;
        // Only group commit paces its leader; other modes skip the two atomics.
        let _active =
            matches!(self.opts.durability, Durability::Group { .. }).then(|| self.pacer.enter());
        let total = records
            .iter()
            .map(|r| frame_len(r.data.len() as u64))
            .sum::<u64>();
        let r = self.reserve(total, records.len() as u64)?;
        copy_frames(&r, records);
        // Publish only once every frame is whole: a batch becomes readable at once.
        let mut off = r.off;
        for (i, rec) in records.iter().enumerate() {
            let slot = r.first_lsn + i as u64 - r.seg.header.base_lsn;
            r.seg.index.publish(slot, off as u32);
            off += frame_len(rec.data.len() as u64);
        }
        let last = r.first_lsn + records.len() as u64 - 1;
        match self.opts.durability {
            Durability::Buffered | Durability::Interval(_) => {
                if let Some(wb) = &self.writeback {
                    wb.on_reserved(&r.seg, r.off, r.off + total);
                }
            }
            Durability::PerWrite => {
                self.sync_through(last, Duration::ZERO)?;
            }
            Durability::Group { max_delay } => {
                self.sync_through(last, max_delay)?;
            }
        }
        Ok(Lsn(r.first_lsn)..=Lsn(last))
    }

    /// Takes `count` LSNs and `total` bytes in the active segment.
    fn reserve(&self, total: u64, count: u64) -> Result<Reservation> {
        let max = self.opts.segment_size - SEGMENT_HEADER_LEN - SEAL_FRAME_LEN;
        if total > max || total > u64::from(u32::MAX) {
            return Err(WalError::RecordTooLarge { len: total, max });
        }
        let mut tail = self.tail.lock();
        loop {
            if let Some(seg) = &tail.seg
                && tail.off + total + SEAL_FRAME_LEN <= seg.len()
            {
                break;
            }
            self.rotate(&mut tail)?;
        }
        let seg = tail.seg.clone().ok_or(WalError::ReadOnly)?;
        let r = Reservation {
            seg,
            off: tail.off,
            first_lsn: tail.next_lsn,
            durable: self.barrier.durable_hint(),
        };
        tail.off += total;
        tail.next_lsn += count;
        self.reserved.store(tail.next_lsn - 1, Ordering::Release);
        Ok(r)
    }

    /// Seals the active segment (if any) and activates a spare after it.
    /// Nothing changes if no spare can be had.
    fn rotate(&self, tail: &mut Tail) -> Result<()> {
        let pool = self.pool.as_ref().ok_or(WalError::ReadOnly)?;
        let spare = if tail.seg.is_some() {
            pool.take()?
        } else {
            pool.take_prepared()?
        };
        let now = unix_nanos();
        let next = Arc::new(Segment::activate(spare, self.log_id, tail.next_lsn, now));
        if let Some(old) = &tail.seg {
            old.seal(tail.off, tail.next_lsn, self.barrier.durable_hint(), now);
        }
        self.segments.write().insert(tail.next_lsn, next.clone());
        tracing::debug!(base_lsn = tail.next_lsn, path = %next.path.display(), "activated segment");
        tail.seg = Some(next);
        tail.off = SEGMENT_HEADER_LEN;
        Ok(())
    }

    /// Returns once `lsn` is durable. The leader first waits up to `delay` for
    /// writers still copying, so that one sync covers them too.
    fn sync_through(&self, lsn: u64, delay: Duration) -> Result<u64> {
        self.barrier
            .wait_durable(lsn, || self.sync_written(delay))
            .map_err(|f| self.sync_failed(f))
    }

    fn sync_failed(&self, SyncFailed(cause): SyncFailed) -> WalError {
        tracing::error!(%cause, dir = %self.dir.display(), "WAL sync failed; this log instance is now unusable");
        WalError::Poisoned { cause }
    }

    /// The leader's sync: makes the copied prefix durable, returns its last LSN.
    fn sync_written(&self, delay: Duration) -> std::result::Result<u64, String> {
        if !delay.is_zero() {
            self.gather(delay);
        }
        let target = self.advance_written();
        let started = Instant::now();
        for (seg, end) in self.sync_ranges(target) {
            seg.sync_to(end).map_err(|e| e.to_string())?;
        }
        self.pacer.record_sync(started.elapsed());
        Ok(target)
    }

    /// The group-commit leader's wait before it syncs, within `delay`: first for
    /// company (a record from each of the writers recently active at once:
    /// those the last sync released come back within microseconds; see
    /// `group_pacer`), then for the writers that
    /// reserved meanwhile to finish copying. Writers arriving after that ride
    /// the next sync: a moving target would always cost the full delay.
    fn gather(&self, delay: Duration) {
        let start = Instant::now();
        let expect = self.pacer.expect(delay);
        let durable = self.barrier.durable_hint();
        while self
            .reserved
            .load(Ordering::Acquire)
            .saturating_sub(durable)
            < expect.records
            && start.elapsed() < expect.patience
        {
            std::thread::yield_now();
        }
        let in_flight = self.reserved.load(Ordering::Acquire);
        while self.advance_written() < in_flight && start.elapsed() < delay {
            std::thread::yield_now();
        }
    }

    /// Advances the written watermark over every published LSN; returns it.
    fn advance_written(&self) -> u64 {
        let mut w = self.written.load(Ordering::Acquire);
        let segs = self.segments.read();
        let mut cur: Option<&Arc<Segment>> = None;
        loop {
            let lsn = w + 1;
            if cur.is_none_or(|s| lsn >= s.end_lsn()) {
                cur = segs.range(..=lsn).next_back().map(|(_, s)| s);
            }
            let Some(seg) = cur else {
                // LSNs below the first live segment were retired whole: they count as written.
                match segs.first_key_value() {
                    Some((&base, _)) if base > lsn => {
                        w = base - 1;
                        continue;
                    }
                    _ => break,
                }
            };
            if lsn < seg.header.base_lsn || seg.index.get(lsn - seg.header.base_lsn).is_none() {
                break;
            }
            w = lsn;
        }
        self.written.fetch_max(w, Ordering::AcqRel);
        w
    }

    /// The byte ranges to sync so that every LSN up to `target` is durable,
    /// oldest first.
    ///
    /// They begin with the seal of any earlier segment that still owes one: a
    /// segment rotated after its last record was already durable holds nothing
    /// else unsynced, and without its seal on disk a power cut would leave it
    /// ending in zeros beside later segments stamped durable past it, which
    /// recovery would have to take for corruption (ARCHITECTURE.md, "What each
    /// sync covers"). One more page to sync per rotation, never per append.
    fn sync_ranges(&self, target: u64) -> Vec<(Arc<Segment>, u64)> {
        let from = self.barrier.durable_hint() + 1;
        if target < from {
            return Vec::new();
        }
        let segs = self.segments.read();
        let start = segs.range(..=from).next_back().map_or(0, |(b, _)| *b);
        let mut owed: Vec<(Arc<Segment>, u64)> = segs
            .range(..start)
            .rev()
            .map_while(|(_, seg)| seg.owed_seal().map(|end| (seg.clone(), end)))
            .collect();
        owed.reverse();
        owed.extend(segs.range(start..=target).filter_map(|(_, seg)| {
            if seg.end_lsn() <= target + 1 {
                return seg.sealed_end().map(|end| (seg.clone(), end));
            }
            let off = seg.index.get(target - seg.header.base_lsn)?;
            let (h, _, _) = seg.frame_at(u64::from(off))?;
            Some((seg.clone(), u64::from(off) + h.frame_len()))
        }));
        owed
    }

    /// The segment whose LSN range holds `lsn`.
    pub(crate) fn segment_of(&self, lsn: u64) -> Option<Arc<Segment>> {
        let segs = self.segments.read();
        let (_, seg) = segs.range(..=lsn).next_back()?;
        (lsn < seg.end_lsn()).then(|| seg.clone())
    }

    /// The base LSN of the first segment that starts after `lsn`.
    pub(crate) fn next_segment_base(&self, lsn: u64) -> Option<u64> {
        self.segments
            .read()
            .range(lsn + 1..)
            .next()
            .map(|(b, _)| *b)
    }

    pub(crate) fn first_lsn(&self) -> Option<Lsn> {
        let reserved = self.reserved.load(Ordering::Acquire);
        let segs = self.segments.read();
        segs.values().find_map(|s| {
            let base = s.header.base_lsn;
            (base..s.end_lsn().min(reserved + 1))
                .find(|&l| s.index.get(l - base).is_some())
                .map(Lsn)
        })
    }

    /// Retires the longest prefix of sealed segments for which `drop_it` holds.
    fn retire_prefix(&self, drop_it: impl Fn(&Segment) -> bool) -> Result<()> {
        self.check_writable()?;
        let mut gone = Vec::new();
        {
            let mut segs = self.segments.write();
            while let Some(entry) = segs.first_entry() {
                let seg = entry.get();
                if seg.end_lsn() == u64::MAX || !drop_it(seg) {
                    break;
                }
                gone.push(entry.remove());
            }
        }
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        for seg in gone {
            match Arc::try_unwrap(seg) {
                Ok(seg) => pool.retire(seg)?,
                Err(shared) => {
                    // A reader still holds records of it: unlink, never reuse.
                    std::fs::remove_file(&shared.path)
                        .map_err(|e| WalError::io("remove segment", &shared.path, e))?;
                }
            }
        }
        sync_dir(&self.dir)
    }

    /// Starts the background syncer for `Durability::Interval`.
    fn start_ticker(&self, me: &Arc<Inner>) {
        let Durability::Interval(every) = self.opts.durability else {
            return;
        };
        let weak = Arc::downgrade(me);
        let ticker = Ticker::start("tidemark-wal-interval", every, move || {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            let target = inner.reserved.load(Ordering::Acquire);
            inner.sync_through(target, Duration::ZERO).is_ok()
        });
        *self.ticker.lock() = Some(ticker);
    }
}

/// Encodes `records` as consecutive frames into the range `r` reserved.
fn copy_frames(r: &Reservation, records: &[Encoded<'_>]) {
    let mut off = r.off;
    for (i, rec) in records.iter().enumerate() {
        let lsn = r.first_lsn + i as u64;
        let h = FrameHeader {
            crc: 0,
            len: rec.data.len() as u32,
            lsn,
            tag: r.seg.header.tag,
            hint_delta: u32::try_from(lsn - r.durable).unwrap_or(u32::MAX),
            batch_left: (records.len() - i) as u32,
            kind: KIND_RECORD,
            flags: rec.flags,
        };
        let raw = h.encode(r.seg.salt, &rec.data);
        // SAFETY: `reserve` gave this writer `r.off..r.off + total` exclusively,
        // and no reader sees these bytes before their slots are published.
        unsafe { r.seg.write_frame(off, &raw, &rec.data) };
        off += h.frame_len();
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::segment::fail_injection::fail_syncs_under;

    /// Issue #16: a rotated segment's seal is durable before any record of a
    /// later segment is acknowledged as durable, so a power cut never leaves a
    /// sealed segment ending in zeros beside later segments stamped past it.
    #[test]
    fn every_seal_is_durable_before_a_later_record_is() {
        for durability in [
            Durability::PerWrite,
            Durability::Group {
                max_delay: Duration::from_micros(200),
            },
            Durability::Buffered,
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = WalOptions {
                segment_size: 64 << 10,
                durability,
                ..WalOptions::default()
            };
            let wal = Wal::open(dir.path(), opts).expect("open");
            let mut rotations = 0;
            for i in 0..600u32 {
                let segments = wal.inner.segments.read().len();
                wal.append(&vec![i as u8; 300 + (i as usize * 7) % 500])
                    .expect("append");
                if durability == Durability::Buffered {
                    wal.sync().expect("sync");
                }
                rotations += wal.inner.segments.read().len() - segments;
                for seg in wal.inner.segments.read().values() {
                    assert_eq!(
                        seg.owed_seal(),
                        None,
                        "{durability:?}: {} owes its seal after LSN {} was acknowledged durable",
                        seg.path.display(),
                        i + 1
                    );
                }
            }
            assert!(rotations >= 4, "{durability:?}: only {rotations} rotations");
        }
    }

    #[test]
    fn a_failed_sync_poisons_the_instance_until_it_is_reopened() {
        // PerWrite: the appender syncs; Group: whichever writer leads does.
        poisoned_until_reopened(Durability::PerWrite);
        poisoned_until_reopened(Durability::Group {
            max_delay: Duration::from_micros(100),
        });
    }

    fn poisoned_until_reopened(durability: Durability) {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = WalOptions {
            segment_size: 64 << 10,
            durability,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir.path(), opts.clone()).expect("open");
        wal.append(b"a").expect("append");
        wal.append(b"b").expect("append");
        fail_syncs_under(Some(dir.path()));
        let failed = wal.append(b"c");
        fail_syncs_under(None);
        match failed {
            Err(WalError::Poisoned { cause }) => {
                assert!(cause.contains("Input/output error"), "{cause}")
            }
            other => panic!("a failed sync must poison the log, got {other:?}"),
        }
        // The disk works again, but this instance cannot prove anything durable any more.
        assert!(matches!(wal.append(b"d"), Err(WalError::Poisoned { .. })));
        assert!(matches!(wal.sync(), Err(WalError::Poisoned { .. })));
        assert!(matches!(
            wal.truncate_before(Lsn(2)),
            Err(WalError::Poisoned { .. })
        ));
        assert_eq!(&wal.read(Lsn(1)).expect("reads still work").data[..], b"a");
        drop(wal);

        let wal = Wal::open(dir.path(), opts).expect("reopen recovers");
        assert_eq!(
            &wal.read(Lsn(2)).expect("durable before the failure").data[..],
            b"b"
        );
        // The failed record's outcome is unknown to its writer: present or absent, never garbage.
        let next = match wal.read(Lsn(3)) {
            Ok(rec) => {
                assert_eq!(&rec.data[..], b"c");
                Lsn(4)
            }
            Err(WalError::NotFound { .. }) => Lsn(3),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(wal.append(b"e").expect("append after reopen"), next);
    }
}
