//! The receiver supervisor against a real block manager and the block-store
//! handler: graceful stop, unique ids across restarts and launches,
//! `store_block`'s guarantee, and restarts after failed stores and reports.

mod receiver_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use receiver_common::{Recorder, WAIT, block_manager, read_all, text};
use tidemark_blockstore::StorageLevel;
use tidemark_stream::handler::{BlockStoreHandler, ReceivedBlockHandler, read_block};
use tidemark_stream::receiver::{
    BlockGeneratorConfig, BlockIds, ManualClock, Receiver, ReceiverContext, ReceiverEvent,
    ReceiverSupervisor, SupervisorConfig,
};
use tidemark_stream::{ReceivedBlockInfo, StreamBlockId, StreamError};

type Body = Arc<dyn Fn(ReceiverContext) + Send + Sync>;

/// A receiver whose every start runs `body` on a thread of its own.
struct Scripted {
    body: Body,
    thread: Option<JoinHandle<()>>,
}

impl Scripted {
    fn new(body: impl Fn(ReceiverContext) + Send + Sync + 'static) -> Scripted {
        Scripted {
            body: Arc::new(body),
            thread: None,
        }
    }
}

impl Receiver for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn on_start(&mut self, ctx: ReceiverContext) -> Result<(), StreamError> {
        let body = self.body.clone();
        self.thread = Some(std::thread::spawn(move || body(ctx)));
        Ok(())
    }

    fn on_stop(&mut self) {
        if let Some(t) = self.thread.take() {
            t.join().expect("receiver thread");
        }
    }
}

fn config(stream_id: u32, epoch: u32) -> SupervisorConfig {
    SupervisorConfig {
        restart_delay: Duration::from_millis(10),
        generator: BlockGeneratorConfig {
            block_interval: Duration::from_millis(5),
            ..BlockGeneratorConfig::default()
        },
        ..SupervisorConfig::new(stream_id, epoch)
    }
}

fn rec(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

#[test]
fn graceful_stop_reports_every_stored_record_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler = Arc::new(BlockStoreHandler::new(
        bm.clone(),
        StorageLevel::MEMORY_AND_DISK_SER,
    ));
    let recorder = Recorder::new();
    let (progress_tx, progress) = mpsc::channel();
    let (last_tx, last) = mpsc::channel();
    let receiver = Scripted::new(move |ctx| {
        let mut n = 0u64;
        while ctx.store(rec(n.to_string())).is_ok() {
            n += 1;
            if n == 20_000 {
                let _ = progress_tx.send(());
            }
        }
        let _ = last_tx.send(n);
    });
    let sup = ReceiverSupervisor::start(receiver, config(4, 1), handler, recorder.clone())
        .expect("start");
    progress.recv_timeout(WAIT).expect("20,000 records stored");
    sup.stop();
    let stored = last
        .try_recv()
        .expect("the receiver thread ended before stop() returned");

    let heard = recorder.heard();
    assert_eq!(heard.events.last(), Some(&ReceiverEvent::Stopped));
    assert_eq!(heard.records(), stored, "reported vs stored");
    let want: Vec<String> = (0..stored).map(|n| n.to_string()).collect();
    assert!(
        text(&read_all(&bm, &heard.blocks)) == want,
        "records lost or out of order"
    );
    assert_eq!(sup.generator_stats().records_stored, stored);
}

#[test]
fn block_ids_stay_unique_across_restarts_and_launches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler: Arc<dyn ReceivedBlockHandler> = Arc::new(BlockStoreHandler::new(
        bm.clone(),
        StorageLevel::MEMORY_ONLY,
    ));
    let recorder = Recorder::new();
    let (ended_tx, ended) = mpsc::channel();
    let receiver = Scripted::new(move |ctx| {
        let g = ctx.generation();
        for i in 0..50 {
            ctx.store(rec(format!("g{g}-r{i}"))).expect("store");
        }
        for i in 0..5 {
            ctx.store_block(&[rec(format!("g{g}-b{i}"))])
                .expect("store_block");
        }
        if g < 3 {
            ctx.restart("again", Duration::ZERO);
            // This start has ended: its context refuses everything.
            let refused = ctx.store(rec("late")).is_err() && ctx.store_block(&[]).is_err();
            ctx.restart("a second request for an ended start", Duration::ZERO);
            let _ = ended_tx.send((g, ctx.is_stopped(), refused));
        } else {
            let _ = ended_tx.send((g, false, true));
        }
    });
    let first =
        ReceiverSupervisor::start(receiver, config(9, 1), handler.clone(), recorder.clone())
            .expect("start");
    for want in 1..=3 {
        let (g, stopped, refused) = ended.recv_timeout(WAIT).expect("a start ended");
        assert_eq!(g, want);
        assert!(
            g == 3 || (stopped && refused),
            "start {g}: stopped {stopped}, refused {refused}"
        );
    }
    first.stop();
    let heard = recorder.heard();
    assert_eq!(heard.starts(), [1, 2, 3]);
    assert_eq!(
        heard.restarts().len(),
        2,
        "one restart per request that won"
    );
    assert_eq!(heard.records(), 3 * 55);

    // A second launch of the same stream (another executor) with the next epoch.
    let again = Scripted::new(|ctx| {
        for i in 0..5 {
            ctx.store_block(&[rec(format!("e2-b{i}"))])
                .expect("store_block");
        }
    });
    let second =
        ReceiverSupervisor::start(again, config(9, 2), handler, recorder.clone()).expect("start");
    recorder.wait("the second launch's blocks", |h| h.records() == 3 * 55 + 5);
    second.stop();

    let blocks = recorder.heard().blocks;
    let ids: HashSet<StreamBlockId> = blocks.iter().map(|b| b.block).collect();
    assert_eq!(ids.len(), blocks.len(), "a block id was handed out twice");
    let epochs: Vec<u32> = blocks.iter().map(|b| BlockIds::epoch_of(b.block)).collect();
    assert!(
        epochs[..blocks.len() - 5].iter().all(|&e| e == 1),
        "{epochs:?}"
    );
    assert!(
        epochs[blocks.len() - 5..].iter().all(|&e| e == 2),
        "{epochs:?}"
    );
    assert_eq!(read_all(&bm, &blocks).len(), 3 * 55 + 5);
}

/// Holds every store until the test opens the gate; says when a store is done.
struct GatedHandler {
    inner: BlockStoreHandler,
    entered: Mutex<mpsc::Sender<()>>,
    gate: Mutex<mpsc::Receiver<()>>,
    stores_done: AtomicU32,
}

impl ReceivedBlockHandler for GatedHandler {
    fn store_block(
        &self,
        id: StreamBlockId,
        records: &[Bytes],
    ) -> Result<ReceivedBlockInfo, StreamError> {
        let _ = self.entered.lock().send(());
        let _ = self.gate.lock().recv();
        let stored = self.inner.store_block(id, records);
        self.stores_done.fetch_add(1, Ordering::SeqCst);
        stored
    }

    fn remove_blocks(&self, blocks: &[ReceivedBlockInfo]) -> Result<(), StreamError> {
        self.inner.remove_blocks(blocks)
    }
}

#[test]
fn store_block_returns_only_after_the_block_reads_back_and_was_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let (entered_tx, entered) = mpsc::channel();
    let (open_tx, gate) = mpsc::channel();
    let handler = Arc::new(GatedHandler {
        inner: BlockStoreHandler::new(bm.clone(), StorageLevel::MEMORY_ONLY),
        entered: Mutex::new(entered_tx),
        gate: Mutex::new(gate),
        stores_done: AtomicU32::new(0),
    });
    let recorder = Recorder::new();
    let (result_tx, result) = mpsc::channel();
    let records: Vec<Bytes> = (0..100).map(|i| rec(format!("acked-{i}"))).collect();
    let receiver = Scripted::new({
        let (bm, recorder, records) = (bm.clone(), recorder.clone(), records.clone());
        let handler = handler.clone();
        move |ctx| {
            let info = ctx.store_block(&records).expect("store_block");
            // What a reliable receiver relies on before it acknowledges its source:
            let handler_done = handler.stores_done.load(Ordering::SeqCst) == 1;
            let reported = recorder.heard().blocks.contains(&info);
            let read = read_block(&bm, &info, None).map_err(|e| e.to_string());
            let _ = result_tx.send((handler_done, reported, read));
        }
    });
    let sup = ReceiverSupervisor::start(receiver, config(2, 1), handler, recorder.clone())
        .expect("start");
    // Declared after the supervisor, so a failing assertion drops it first and
    // the supervisor's stop cannot hang on a held store.
    let open = open_tx;
    entered.recv_timeout(WAIT).expect("the handler was called");
    // Only a bug can end this wait early; a correct run always waits it out.
    let early = result.recv_timeout(Duration::from_millis(200));
    assert!(
        early.is_err(),
        "store_block returned while the handler held the block"
    );
    open.send(()).expect("open the gate");
    let (handler_done, reported, read) = result.recv_timeout(WAIT).expect("store_block returned");
    assert!(handler_done, "store_block returned before the handler did");
    assert!(reported, "reported before store_block returned");
    assert_eq!(read.expect("readable when store_block returned"), records);
    sup.stop();
}

/// Fails the first `fail` stores, then stores in the block store.
struct FlakyHandler {
    inner: BlockStoreHandler,
    fail: AtomicU32,
}

impl ReceivedBlockHandler for FlakyHandler {
    fn store_block(
        &self,
        id: StreamBlockId,
        records: &[Bytes],
    ) -> Result<ReceivedBlockInfo, StreamError> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StreamError::Io {
                what: format!("store block {id}"),
                source: std::io::Error::other("injected store failure"),
            });
        }
        self.inner.store_block(id, records)
    }

    fn remove_blocks(&self, blocks: &[ReceivedBlockInfo]) -> Result<(), StreamError> {
        self.inner.remove_blocks(blocks)
    }
}

#[test]
fn a_failed_store_is_reported_and_the_receiver_restarted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler = Arc::new(FlakyHandler {
        inner: BlockStoreHandler::new(bm.clone(), StorageLevel::MEMORY_ONLY),
        fail: AtomicU32::new(1),
    });
    let recorder = Recorder::new();
    let clock = ManualClock::new();
    let (stored_tx, stored) = mpsc::channel();
    let receiver = Scripted::new(move |ctx| {
        let g = ctx.generation();
        for i in 0..10 {
            ctx.store(rec(format!("g{g}-{i}"))).expect("store");
        }
        let _ = stored_tx.send(g);
    });
    let cfg = config(3, 1);
    let interval = cfg.generator.block_interval;
    let sup = ReceiverSupervisor::start_with_clock(
        receiver,
        cfg,
        handler,
        recorder.clone(),
        clock.clone(),
    )
    .expect("start");
    assert_eq!(stored.recv_timeout(WAIT).expect("first start stored"), 1);
    assert!(
        clock.wait_for_sleepers(1, WAIT),
        "the block timer waits for its first tick"
    );
    clock.advance(interval); // One block of g1's records: its store fails.
    let heard = recorder.wait("a restart", |h| h.starts().len() == 2);
    assert!(
        heard
            .errors()
            .iter()
            .any(|e| e.contains("injected store failure")),
        "{heard:#?}"
    );
    let restarts = heard.restarts();
    assert_eq!(restarts.len(), 1);
    assert!(
        restarts[0].0.contains("injected store failure"),
        "{restarts:?}"
    );
    assert_eq!(
        restarts[0].1,
        Duration::from_millis(10),
        "the configured delay"
    );

    assert_eq!(stored.recv_timeout(WAIT).expect("second start stored"), 2);
    assert!(clock.wait_for_sleepers(1, WAIT));
    clock.advance(interval);
    let heard = recorder.wait("the second start's block", |h| h.records() == 10);
    let want: Vec<String> = (0..10).map(|i| format!("g2-{i}")).collect();
    assert_eq!(
        text(&read_all(&bm, &heard.blocks)),
        want,
        "g1's failed block is gone"
    );
    sup.stop();
}

#[test]
fn a_failed_report_fails_store_block_and_restarts_the_receiver() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler = Arc::new(BlockStoreHandler::new(
        bm.clone(),
        StorageLevel::MEMORY_ONLY,
    ));
    let recorder = Recorder::new();
    recorder.fail_next_reports(1);
    let (result_tx, results) = mpsc::channel();
    let receiver = Scripted::new(move |ctx| {
        let r = ctx.store_block(&[rec(format!("g{}", ctx.generation()))]);
        let _ = result_tx.send((ctx.generation(), r.map_err(|e| e.to_string())));
    });
    let sup = ReceiverSupervisor::start(receiver, config(5, 1), handler, recorder.clone())
        .expect("start");
    let (g, first) = results.recv_timeout(WAIT).expect("first store_block");
    assert_eq!(g, 1);
    assert!(
        first
            .expect_err("the report failed")
            .contains("injected report failure")
    );
    let (g, second) = results.recv_timeout(WAIT).expect("after the restart");
    assert_eq!(g, 2);
    let info = second.expect("the second start stores and reports");
    sup.stop();
    let heard = recorder.heard();
    assert_eq!(heard.blocks, [info]);
    assert_eq!(heard.restarts().len(), 1);
    assert!(
        heard
            .errors()
            .iter()
            .any(|e| e.contains("injected report failure"))
    );
}

#[test]
fn stop_cuts_a_pending_restart_delay_short() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler = Arc::new(BlockStoreHandler::new(bm, StorageLevel::MEMORY_ONLY));
    let recorder = Recorder::new();
    let receiver =
        Scripted::new(|ctx| ctx.restart("come back in an hour", Duration::from_secs(3600)));
    let sup = Arc::new(
        ReceiverSupervisor::start(receiver, config(6, 1), handler, recorder.clone())
            .expect("start"),
    );
    recorder.wait("the restart", |h| !h.restarts().is_empty());
    let (done_tx, done) = mpsc::channel();
    let stopper = {
        let sup = sup.clone();
        std::thread::spawn(move || {
            sup.stop();
            let _ = done_tx.send(());
        })
    };
    done.recv_timeout(WAIT)
        .expect("stop() did not wait out the hour");
    stopper.join().expect("join");
    let heard = recorder.heard();
    assert_eq!(heard.starts(), [1], "no start after stop");
    assert_eq!(heard.events.last(), Some(&ReceiverEvent::Stopped));
}

#[test]
fn an_outside_restart_request_restarts_the_live_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler = Arc::new(BlockStoreHandler::new(bm, StorageLevel::MEMORY_ONLY));
    let recorder = Recorder::new();
    let receiver = Scripted::new(|_| {});
    let sup = ReceiverSupervisor::start(receiver, config(8, 1), handler, recorder.clone())
        .expect("start");
    recorder.wait("the first start", |h| h.starts() == [1]);
    sup.restart("operator asked", Duration::ZERO);
    let heard = recorder.wait("the second start", |h| h.starts() == [1, 2]);
    assert_eq!(heard.restarts(), [("operator asked", Duration::ZERO)]);
    sup.stop();
    sup.restart("after stop", Duration::ZERO);
    assert_eq!(recorder.heard().starts(), [1, 2], "no start after stop");
}
