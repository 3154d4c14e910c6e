//! The block generator on a driven clock: cuts per interval, back-pressure,
//! the rate limit, and an orderly stop that loses nothing.

mod receiver_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use receiver_common::WAIT;
use tidemark_stream::StreamError;
use tidemark_stream::receiver::{
    BlockGenerator, BlockGeneratorConfig, Clock, ManualClock, SystemClock,
};

const INTERVAL: Duration = Duration::from_millis(200);

fn rec(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn recs(names: &[&str]) -> Vec<Bytes> {
    names.iter().map(|s| rec(s)).collect()
}

/// A generator on a manual clock whose pushes arrive on a channel.
fn driven(
    config: BlockGeneratorConfig,
) -> (BlockGenerator, Arc<ManualClock>, mpsc::Receiver<Vec<Bytes>>) {
    let clock = ManualClock::new();
    let (tx, rx) = mpsc::channel();
    let generator = BlockGenerator::start(config, clock.clone(), move |block| {
        let _ = tx.send(block);
    })
    .expect("start");
    (generator, clock, rx)
}

/// Advances one interval and waits until the timer has cut and sleeps again.
fn tick(clock: &ManualClock, by: Duration) {
    clock.advance(by);
    assert!(
        clock.wait_for_sleepers(1, WAIT),
        "the timer went back to sleep"
    );
}

#[test]
fn blocks_are_cut_once_per_interval_of_the_driven_clock() {
    let config = BlockGeneratorConfig {
        block_interval: INTERVAL,
        ..BlockGeneratorConfig::default()
    };
    let (generator, clock, blocks) = driven(config);
    assert!(clock.wait_for_sleepers(1, WAIT));
    for r in ["a", "b", "c"] {
        generator.store(rec(r)).expect("store");
    }
    tick(&clock, INTERVAL);
    assert_eq!(
        blocks.recv_timeout(WAIT).expect("first block"),
        recs(&["a", "b", "c"])
    );

    // An interval with no records cuts no block.
    tick(&clock, INTERVAL);
    generator.store(rec("d")).expect("store");
    // Half an interval later nothing is cut yet; the timer sleeps on.
    tick(&clock, INTERVAL / 2);
    assert!(blocks.try_recv().is_err(), "a block was cut mid-interval");
    tick(&clock, INTERVAL / 2);
    assert_eq!(
        blocks.recv_timeout(WAIT).expect("second block"),
        recs(&["d"])
    );
    assert!(generator.wait_for(WAIT, |s| s.blocks_pushed == 2));
    let stats = generator.stats();
    assert_eq!((stats.records_stored, stats.blocks_cut), (4, 2));
    generator.stop();
    assert!(blocks.try_recv().is_err(), "stop cut an empty block");
}

#[test]
fn a_full_queue_blocks_store_until_the_pusher_drains() {
    let config = BlockGeneratorConfig {
        block_interval: INTERVAL,
        queue_capacity: 2,
        max_rate: 0,
    };
    let clock = ManualClock::new();
    let (pushed_tx, pushed) = mpsc::channel();
    let (release_tx, released) = mpsc::channel::<()>();
    // The pusher holds every block until the test releases it.
    let generator = Arc::new(
        BlockGenerator::start(config, clock.clone(), move |block| {
            let _ = pushed_tx.send(block);
            let _ = released.recv();
        })
        .expect("start"),
    );
    // Declared after the generator, so a failing assertion drops it first and
    // the generator's stop cannot hang on a held pusher.
    let release = release_tx;
    assert!(clock.wait_for_sleepers(1, WAIT));
    generator.store(rec("r0")).expect("store");
    tick(&clock, INTERVAL);
    assert_eq!(
        pushed.recv_timeout(WAIT).expect("r0 pushing"),
        recs(&["r0"])
    );
    for r in ["r1", "r2"] {
        generator.store(rec(r)).expect("store");
        tick(&clock, INTERVAL);
    }
    assert_eq!(generator.stats().queued_blocks, 2, "queue full");

    let (done_tx, done) = mpsc::channel();
    let storer = {
        let generator = generator.clone();
        std::thread::spawn(move || done_tx.send(generator.store(rec("r3"))))
    };
    assert!(
        generator.wait_for(WAIT, |s| s.blocked_stores == 1),
        "store() blocks on the full queue"
    );
    assert!(
        done.try_recv().is_err(),
        "store() returned while the queue was full"
    );

    release.send(()).expect("release r0");
    let stored = done
        .recv_timeout(WAIT)
        .expect("store() returned once there was room");
    assert!(stored.is_ok(), "{stored:?}");
    storer.join().expect("join").expect("send");

    drop(release); // The pusher now pushes without waiting.
    generator.stop();
    let all: Vec<Bytes> = pushed.try_iter().flatten().collect();
    assert_eq!(all, recs(&["r1", "r2", "r3"]));
}

#[test]
fn max_rate_admits_records_only_as_the_driven_clock_grants_tokens() {
    // 10 records/s: one token per 100 ms, a bucket of one.
    let config = BlockGeneratorConfig {
        block_interval: Duration::from_secs(3600),
        queue_capacity: 10,
        max_rate: 10,
    };
    let (generator, clock, blocks) = driven(config);
    let generator = Arc::new(generator);
    let (ok_tx, oks) = mpsc::channel();
    let storer = {
        let generator = generator.clone();
        std::thread::spawn(move || {
            for i in 0..4 {
                if generator.store(rec(&format!("x{i}"))).is_err() {
                    return;
                }
                let _ = ok_tx.send(i);
            }
        })
    };
    let settled = |clock: &ManualClock| {
        // The timer and the storer both wait for a future time.
        assert!(clock.wait_for_sleepers(2, WAIT), "storer waits for a token");
    };
    assert_eq!(oks.recv_timeout(WAIT).expect("the first is free"), 0);
    settled(&clock);
    assert!(oks.try_recv().is_err(), "a second record without a token");
    clock.advance(Duration::from_millis(99));
    settled(&clock);
    assert!(oks.try_recv().is_err(), "a token before its time");
    clock.advance(Duration::from_millis(1));
    assert_eq!(oks.recv_timeout(WAIT).expect("token at 100 ms"), 1);
    settled(&clock);
    // A long idle spell banks one token only.
    clock.advance(Duration::from_secs(5));
    assert_eq!(oks.recv_timeout(WAIT).expect("banked token"), 2);
    settled(&clock);
    assert!(
        oks.try_recv().is_err(),
        "the bucket held more than its burst"
    );

    generator.stop();
    storer.join().expect("join");
    let stored: Vec<Bytes> = blocks.try_iter().flatten().collect();
    assert_eq!(stored, recs(&["x0", "x1", "x2"]));
}

#[test]
fn stop_releases_blocked_stores_and_refuses_new_ones() {
    let config = BlockGeneratorConfig {
        block_interval: INTERVAL,
        queue_capacity: 1,
        max_rate: 1,
    };
    let clock = ManualClock::new();
    let (release_tx, released) = mpsc::channel::<()>();
    let generator = Arc::new(
        BlockGenerator::start(config, clock.clone(), move |_| {
            let _ = released.recv();
        })
        .expect("start"),
    );
    let release = release_tx; // Dropped before the generator, as above.
    generator
        .store(rec("t0"))
        .expect("the bucket starts with a token");
    let waiting = {
        let generator = generator.clone();
        std::thread::spawn(move || generator.store(rec("t1")))
    };
    assert!(
        clock.wait_for_sleepers(2, WAIT),
        "a store waits for a token"
    );
    let stopper = {
        let generator = generator.clone();
        std::thread::spawn(move || generator.stop())
    };
    let refused = waiting.join().expect("join");
    assert!(
        matches!(refused, Err(StreamError::Stopped(_))),
        "{refused:?}"
    );
    // The refusal came from stop, which refuses every later record too.
    assert!(generator.is_stopping());
    assert!(matches!(
        generator.store(rec("t2")),
        Err(StreamError::Stopped(_))
    ));
    drop(release);
    stopper.join().expect("stop");
    assert_eq!(generator.stats().records_stored, 1);
}

#[test]
fn stop_pushes_every_record_stored_before_it_in_order() {
    // Real time, short intervals, a small queue: stop lands mid-stream.
    let config = BlockGeneratorConfig {
        block_interval: Duration::from_millis(2),
        queue_capacity: 2,
        max_rate: 0,
    };
    let (tx, blocks) = mpsc::channel();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let generator = Arc::new(
        BlockGenerator::start(config, clock, move |block| {
            let _ = tx.send(block);
        })
        .expect("start"),
    );
    let writers: Vec<_> = (0..3u32)
        .map(|w| {
            let generator = generator.clone();
            std::thread::spawn(move || {
                let mut stored = 0u64;
                while generator.store(rec(&format!("{w}:{stored}"))).is_ok() {
                    stored += 1;
                }
                stored
            })
        })
        .collect();
    assert!(generator.wait_for(WAIT, |s| s.records_stored >= 30_000 && s.blocks_pushed >= 3));
    generator.stop();
    let stored: Vec<u64> = writers
        .into_iter()
        .map(|w| w.join().expect("join"))
        .collect();

    let mut seen: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for record in blocks.try_iter().flatten() {
        let s = String::from_utf8(record.to_vec()).expect("utf8");
        let (w, i) = s.split_once(':').expect("w:i");
        seen.entry(w.parse().expect("w"))
            .or_default()
            .push(i.parse().expect("i"));
    }
    for (w, &n) in stored.iter().enumerate() {
        let got = seen.remove(&(w as u32)).unwrap_or_default();
        assert_eq!(got.len() as u64, n, "writer {w}: pushed vs stored");
        assert!(
            got.iter().enumerate().all(|(k, &i)| i == k as u64),
            "writer {w} out of order"
        );
    }
    assert_eq!(generator.stats().records_stored, stored.iter().sum::<u64>());
}
