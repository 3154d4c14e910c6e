//! Stream checkpoints on a real local checkpoint store: the get-or-create
//! decision, what a resumed driver gets back, graph and setting changes,
//! damaged checkpoints, and fencing of an older driver.

mod checkpoint_support;

use std::time::Duration;

use checkpoint_support::*;
use tidemark_checkpoint::CheckpointError;
use tidemark_stream::checkpoint::{
    BATCH_INTERVAL_SETTING, CheckpointStore, CommitInfo, Drain, DroppedReruns, GraphDifference,
    GraphSignature, InputKind, RecoverOptions, Recovery, SettingChange, StreamSetup,
    TopicPartition, get_or_create, open_store, recover,
};
use tidemark_stream::{BatchTime, StreamError};

fn recover_with(
    url: &str,
    setup: &StreamSetup,
    options: &RecoverOptions,
) -> Result<Recovery, StreamError> {
    let store = open_store(url).expect("open");
    recover(&store, setup, 100_000, options)
}

#[test]
fn an_empty_store_starts_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(&dir.path().join("never-written"));
    let (_store, recovery) =
        get_or_create(&url, &setup(), 5_000, &RecoverOptions::default()).expect("recover");
    assert!(matches!(recovery, Recovery::Fresh), "{recovery:?}");
}

#[test]
fn resume_returns_last_completed_pending_offsets_and_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, recovery) = Driver::start(&url, 0);
    assert!(matches!(recovery, Recovery::Fresh));
    let first = driver.run(t(1)).expect("a checkpoint per batch");
    // Batch 3 is allocated while batch 2 runs: it is pending in batch 2's checkpoint.
    driver.checkpointer.batch_allocated(t(2)).expect("allocate");
    driver.checkpointer.batch_allocated(t(3)).expect("allocate");
    let second = driver.run(t(2)).expect("a checkpoint per batch");
    assert!(second.epoch > first.epoch);
    assert_eq!((second.batch, second.attempts), (t(2), 1));
    let state = driver.state.clone();
    // The driver dies while batch 3 runs.
    drop(driver);

    let resumed = resume(&url, 3_500);
    assert_eq!(resumed.epoch, second.epoch);
    assert_eq!(resumed.last_completed, t(2));
    assert_eq!(resumed.pending, vec![t(3)]);
    assert_eq!(resumed.rerun, vec![t(3)]);
    assert_eq!(resumed.next_batch, t(4));
    assert_eq!(resumed.offsets, offsets_after(t(2)));
    assert_eq!(
        resumed
            .offsets
            .get("clicks", &TopicPartition::new("clicks", 2)),
        Some(22)
    );
    assert_eq!(resumed.states.get("counts"), Some(&state));
    assert_eq!(resumed.states["counts"].last_batch(), Some(t(2)));
    assert!(resumed.skipped.is_empty() && resumed.setting_changes.is_empty());
    assert!(resumed.drain.is_none() && resumed.graph_changes.is_empty());

    // The resumed driver re-runs batch 3 and goes on; a completed batch cannot complete again.
    let (mut driver, recovery) = Driver::start(&url, 3_500);
    assert!(matches!(recovery, Recovery::Resume(_)));
    assert_eq!(driver.checkpointer.pending(), vec![t(3)]);
    let third = driver.run(t(3)).expect("checkpoint");
    let again = driver.checkpointer.mark_completed(
        t(3),
        &offsets_after(t(3)),
        &[("counts", &driver.state)],
    );
    assert!(
        matches!(again, Err(StreamError::BatchOutOfOrder { .. })),
        "{again:?}"
    );
    let resumed = resume(&url, 3_500);
    assert_eq!(resumed.epoch, third.epoch);
    assert_eq!(resumed.last_completed, t(3));
    assert_eq!(resumed.states.get("counts"), Some(&driver.state));
}

#[test]
fn batches_between_the_checkpoint_and_now_are_rerun_in_order_up_to_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    for s in 1..=3 {
        driver.run(t(s));
    }
    driver.checkpointer.batch_allocated(t(4)).expect("allocate");
    drop(driver);
    // The last checkpoint is batch 3's; batch 4 was allocated after it. Now is 7.25 s:
    // batches 4 to 7 are due, 8 is the timer's first.
    let resumed = resume(&url, 7_250);
    assert_eq!(resumed.rerun, vec![t(4), t(5), t(6), t(7)]);
    assert_eq!(resumed.next_batch, t(8));
    assert_eq!(resumed.rerun_dropped, None);

    let store = open_store(&url).expect("open");
    let capped = RecoverOptions {
        max_rerun_batches: 2,
        ..RecoverOptions::default()
    };
    let Recovery::Resume(resumed) = recover(&store, &setup(), 7_250, &capped).expect("recover")
    else {
        panic!("expected a resume");
    };
    assert_eq!(resumed.rerun, vec![t(4), t(5)]);
    assert_eq!(
        resumed.rerun_dropped,
        Some(DroppedReruns {
            count: 2,
            first: t(6),
            last: t(7)
        })
    );
}

/// The output of the test stream: one file per batch in `sink`.
fn save_output(
    sink: &std::path::Path,
    batch: BatchTime,
    state: &tidemark_stream::checkpoint::StateMap,
) -> std::io::Result<()> {
    std::fs::write(
        sink.join(format!("batch-{}", batch.0)),
        format!("{} keys", state.len()),
    )
}

/// One batch of the test driver: state update, output, and completion only after the
/// output succeeded. Returns the output's error, or the completion's result.
fn run_with_output(
    driver: &mut Driver,
    sink: &std::path::Path,
    batch: BatchTime,
) -> Result<Result<Option<CommitInfo>, StreamError>, std::io::Error> {
    driver
        .checkpointer
        .batch_allocated(batch)
        .expect("allocate");
    count(&mut driver.state, batch);
    save_output(sink, batch, &driver.state)?;
    Ok(driver.checkpointer.mark_completed(
        batch,
        &offsets_after(batch),
        &[("counts", &driver.state)],
    ))
}

#[test]
fn a_batch_whose_output_failed_is_not_marked_completed_and_is_rerun() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(&dir.path().join("ckpt"));
    let sink = dir.path().join("sink");
    std::fs::create_dir(&sink).expect("sink dir");
    let (mut driver, _) = Driver::start(&url, 0);
    run_with_output(&mut driver, &sink, t(1))
        .expect("output")
        .expect("checkpoint");

    // The sink goes away: batch 2's output fails for real, and batch 2 is not completed.
    std::fs::remove_dir_all(&sink).expect("remove sink");
    let failed = run_with_output(&mut driver, &sink, t(2));
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(driver.checkpointer.last_completed(), Some(t(1)));

    // The sink is back and batch 3's output succeeds, but it cannot complete before batch 2.
    std::fs::create_dir(&sink).expect("sink dir");
    match run_with_output(&mut driver, &sink, t(3)).expect("output") {
        Err(StreamError::BatchOutOfOrder { batch, reason, .. }) => {
            assert_eq!(batch, t(3));
            assert!(
                reason.contains("batch 2000 ms is still pending"),
                "{reason}"
            );
        }
        other => panic!("expected an out-of-order refusal, got {other:?}"),
    }
    assert_eq!(driver.checkpointer.last_completed(), Some(t(1)));
    assert_eq!(driver.checkpointer.pending(), vec![t(2), t(3)]);
    drop(driver);

    // After a restart, batch 2 (and 3) run again from batch 1's offsets and state.
    let resumed = resume(&url, 3_100);
    assert_eq!(resumed.last_completed, t(1));
    assert_eq!(resumed.rerun, vec![t(2), t(3)]);
    assert_eq!(resumed.offsets, offsets_after(t(1)));
    assert_eq!(resumed.states["counts"].last_batch(), Some(t(1)));
}

#[test]
fn a_changed_graph_is_refused_naming_each_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    drop(driver);

    let changed = StreamSetup {
        graph: GraphSignature::new()
            .input("lines", InputKind::Socket("127.0.0.1:9999".into()))
            .input("clicks-v2", InputKind::DirectKafka("clicks".into()))
            .input("orders", InputKind::Kafka("orders".into()))
            .output("save-totals")
            .stateful("counts"),
        ..setup()
    };
    let err = recover_with(&url, &changed, &RecoverOptions::default()).expect_err("refused");
    let message = err.to_string();
    let StreamError::GraphChanged { differences } = err else {
        panic!("expected GraphChanged, got {err:?}");
    };
    assert_eq!(
        differences,
        vec![
            GraphDifference::InputRenamed {
                from: "clicks".into(),
                to: "clicks-v2".into(),
                kind: InputKind::DirectKafka("clicks".into()),
            },
            GraphDifference::InputRemoved {
                name: "views".into(),
                kind: InputKind::DirectKafka("views".into()),
            },
            GraphDifference::InputAdded {
                name: "orders".into(),
                kind: InputKind::Kafka("orders".into()),
            },
            GraphDifference::OutputRemoved("save-counts".into()),
            GraphDifference::OutputAdded("save-totals".into()),
        ]
    );
    for needle in [
        "\"clicks\" (direct-kafka:clicks) was renamed to \"clicks-v2\"",
        "\"views\" (direct-kafka:views) was removed",
        "\"orders\" (kafka:orders) was added",
        "output \"save-counts\" was removed",
        "output \"save-totals\" was added",
        "start_from_changed_graph",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
}

#[test]
fn start_from_changed_graph_keeps_the_offsets_of_streams_still_present() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    driver.run(t(2));
    drop(driver);

    let changed = StreamSetup {
        graph: GraphSignature::new()
            .input("clicks", InputKind::DirectKafka("clicks".into()))
            .input("orders", InputKind::DirectKafka("orders".into()))
            .output("save-counts")
            .stateful("counts")
            .stateful("sums"),
        ..setup()
    };
    let options = RecoverOptions {
        start_from_changed_graph: true,
        ..RecoverOptions::default()
    };
    let Recovery::Resume(resumed) = recover_with(&url, &changed, &options).expect("accepted")
    else {
        panic!("expected a resume");
    };
    assert_eq!(resumed.last_completed, t(2));
    assert_eq!(
        resumed.offsets.streams().collect::<Vec<_>>(),
        vec!["clicks"]
    );
    assert_eq!(
        resumed.offsets.stream("clicks"),
        offsets_after(t(2)).stream("clicks")
    );
    assert_eq!(resumed.dropped_offsets, vec!["views".to_string()]);
    assert_eq!(resumed.states.keys().collect::<Vec<_>>(), vec!["counts"]);
    assert!(resumed.dropped_states.is_empty());
    assert_eq!(
        resumed.graph_changes,
        vec![
            GraphDifference::InputRemoved {
                name: "lines".into(),
                kind: InputKind::Socket("127.0.0.1:9999".into()),
            },
            GraphDifference::InputRemoved {
                name: "views".into(),
                kind: InputKind::DirectKafka("views".into()),
            },
            GraphDifference::InputAdded {
                name: "orders".into(),
                kind: InputKind::DirectKafka("orders".into()),
            },
            GraphDifference::StatefulAdded("sums".into()),
        ]
    );
}

#[test]
fn a_changed_setting_is_logged_and_this_runs_value_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    drop(driver);

    let new_setup = StreamSetup {
        settings: settings()
            .set("spark.streaming.blockInterval", "50ms")
            .set("spark.streaming.backpressure.enabled", "true"),
        ..setup()
    };
    let store = open_store(&url).expect("open");
    let (recovery, logs) = capture_logs(|| {
        recover(&store, &new_setup, 1_500, &RecoverOptions::default()).expect("recover")
    });
    let Recovery::Resume(resumed) = recovery else {
        panic!("expected a resume");
    };
    assert_eq!(
        resumed.setting_changes,
        vec![
            SettingChange {
                name: "spark.streaming.backpressure.enabled".into(),
                old: None,
                new: Some("true".into()),
            },
            SettingChange {
                name: "spark.streaming.blockInterval".into(),
                old: Some("200ms".into()),
                new: Some("50ms".into()),
            },
        ]
    );
    assert!(
        logs.contains("spark.streaming.blockInterval: \"200ms\" -> \"50ms\""),
        "{logs}"
    );
    assert!(
        logs.contains("spark.streaming.backpressure.enabled"),
        "{logs}"
    );

    // This run's settings are what its checkpoints hold from now on.
    let mut checkpointer = tidemark_stream::checkpoint::StreamCheckpointer::new(
        store,
        new_setup.clone(),
        fast_config(),
        &Recovery::Resume(resumed.clone()),
    )
    .expect("checkpointer");
    let mut state = resumed.states["counts"].clone();
    count(&mut state, t(2));
    checkpointer
        .mark_completed(t(2), &offsets_after(t(2)), &[("counts", &state)])
        .expect("checkpoint");
    let Recovery::Resume(again) =
        recover_with(&url, &new_setup, &RecoverOptions::default()).expect("recover")
    else {
        panic!("expected a resume");
    };
    assert_eq!(again.setting_changes, vec![]);
    assert_eq!(again.last_completed, t(2));
}

fn with_interval(ms: u64) -> StreamSetup {
    StreamSetup {
        batch_interval: Duration::from_millis(ms),
        ..setup()
    }
}

#[test]
fn a_new_batch_interval_is_refused_while_batches_are_pending_unless_drain_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.checkpointer.batch_allocated(t(1)).expect("allocate");
    driver.checkpointer.batch_allocated(t(2)).expect("allocate");
    driver.run(t(1));
    drop(driver);
    let store = open_store(&url).expect("open");

    let err = recover(
        &store,
        &with_interval(5000),
        12_000,
        &RecoverOptions::default(),
    )
    .expect_err("refused");
    let message = err.to_string();
    match err {
        StreamError::BatchIntervalChanged { old, new, pending } => {
            assert_eq!((old, new), (Duration::from_secs(1), Duration::from_secs(5)));
            assert_eq!(pending, vec![t(2)]);
        }
        other => panic!("expected BatchIntervalChanged, got {other:?}"),
    }
    assert!(
        message.contains(BATCH_INTERVAL_SETTING) && message.contains("drain_first"),
        "{message}"
    );

    let drain_first = RecoverOptions {
        drain_first: true,
        ..RecoverOptions::default()
    };
    let Recovery::Resume(resumed) =
        recover(&store, &with_interval(5000), 12_000, &drain_first).expect("drains")
    else {
        panic!("expected a resume");
    };
    assert_eq!(
        resumed.drain,
        Some(Drain {
            interval: Duration::from_secs(1),
            batches: vec![t(2)],
        })
    );
    // Drained under the old interval first, then the new interval's own grid.
    assert_eq!(resumed.rerun, vec![t(2), t(5), t(10)]);
    assert_eq!(resumed.next_batch, t(15));
    assert!(resumed.setting_changes.contains(&SettingChange {
        name: BATCH_INTERVAL_SETTING.into(),
        old: Some("1000".into()),
        new: Some("5000".into()),
    }));
}

#[test]
fn a_new_batch_interval_is_accepted_with_no_batch_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    drop(driver);
    let Recovery::Resume(resumed) =
        recover_with(&url, &with_interval(2000), &RecoverOptions::default()).expect("accepted")
    else {
        panic!("expected a resume");
    };
    assert_eq!(resumed.drain, None);
    assert_eq!(resumed.rerun.first(), Some(&t(2)));
    assert!(resumed.rerun.iter().all(|b| b.0 % 2000 == 0));
    assert_eq!(
        resumed.setting_changes,
        vec![SettingChange {
            name: BATCH_INTERVAL_SETTING.into(),
            old: Some("1000".into()),
            new: Some("2000".into()),
        }]
    );
}

#[test]
fn a_damaged_newest_manifest_falls_back_to_the_previous_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    let older = driver.run(t(2)).expect("checkpoint");
    let newer = driver.run(t(3)).expect("checkpoint");
    drop(driver);
    flip_byte(&manifest_file(dir.path(), newer.epoch.get()));

    let resumed = resume(&url, 3_500);
    assert_eq!(resumed.epoch, older.epoch);
    assert_eq!(resumed.last_completed, t(2));
    assert_eq!(resumed.offsets, offsets_after(t(2)));
    assert_eq!(resumed.rerun, vec![t(3)]);
    assert_eq!(
        resumed.skipped.iter().map(|s| s.epoch).collect::<Vec<_>>(),
        vec![newer.epoch]
    );
}

#[test]
fn a_damaged_newest_state_part_falls_back_to_the_previous_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    let older = driver.run(t(1)).expect("checkpoint");
    let state_at_1 = driver.state.clone();
    let newer = driver.run(t(2)).expect("checkpoint");
    drop(driver);
    // Same size, one bit flipped: the store's latest() still returns it; its read fails.
    flip_byte(&part_file(dir.path(), newer.epoch.get(), "state-0"));

    let store = open_store(&url).expect("open");
    let ((), logs) = capture_logs(|| {
        let Recovery::Resume(resumed) =
            recover(&store, &setup(), 2_500, &RecoverOptions::default()).expect("recover")
        else {
            panic!("expected a resume");
        };
        assert_eq!(resumed.epoch, older.epoch);
        assert_eq!(resumed.last_completed, t(1));
        assert_eq!(resumed.states.get("counts"), Some(&state_at_1));
        assert_eq!(resumed.rerun, vec![t(2)]);
        assert_eq!(resumed.skipped.len(), 1);
        assert_eq!(resumed.skipped[0].epoch, newer.epoch);
        assert!(
            resumed.skipped[0].reason.contains("state-0"),
            "{:?}",
            resumed.skipped
        );
    });
    assert!(logs.contains("passed over a damaged checkpoint"), "{logs}");
}

#[test]
fn a_store_whose_checkpoints_are_all_damaged_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    let first = driver.run(t(1)).expect("checkpoint");
    let second = driver.run(t(2)).expect("checkpoint");
    drop(driver);
    flip_byte(&part_file(dir.path(), second.epoch.get(), "state-0"));
    flip_byte(&manifest_file(dir.path(), first.epoch.get()));

    let err = recover_with(&url, &setup(), &RecoverOptions::default()).expect_err("no fresh start");
    match err {
        StreamError::NoReadableCheckpoint { damaged, .. } => {
            assert_eq!(damaged.len(), 2, "{damaged:?}");
        }
        other => panic!("expected NoReadableCheckpoint, got {other:?}"),
    }
}

/// Commits a checkpoint with the given stream metadata and no state.
fn commit_raw(store: &CheckpointStore, meta: &str) {
    let mut writer = store.begin().expect("begin");
    writer
        .put_part("stream-meta", meta.as_bytes().to_vec())
        .expect("put");
    writer.commit().expect("commit");
}

#[test]
fn a_checkpoint_of_a_newer_format_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    drop(driver);
    let store = open_store(&url).expect("open");
    commit_raw(&store, r#"{"format": 7, "written_by": "a later tidemark"}"#);

    let err = recover(&store, &setup(), 2_000, &RecoverOptions::default()).expect_err("refused");
    let message = err.to_string();
    match err {
        StreamError::CheckpointFormat {
            found,
            supported,
            part,
            ..
        } => {
            assert_eq!((found, supported, part.as_str()), (7, 1, "stream-meta"));
        }
        other => panic!("expected CheckpointFormat, got {other:?}"),
    }
    assert!(message.contains("upgrade tidemark"), "{message}");
}

#[test]
fn a_restarted_driver_fences_the_old_one_whose_write_fails_without_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut old, _) = Driver::start(&url, 0);
    old.run(t(1));
    // A second driver starts on the same directory (the old one is not dead after all).
    let (mut new, recovery) = Driver::start(&url, 1_500);
    assert!(matches!(recovery, Recovery::Resume(_)));
    new.run(t(2));

    old.checkpointer.batch_allocated(t(2)).expect("allocate");
    count(&mut old.state, t(2));
    let err = old
        .checkpointer
        .mark_completed(t(2), &offsets_after(t(2)), &[("counts", &old.state)])
        .expect_err("fenced");
    match err {
        StreamError::CheckpointWrite {
            batch,
            attempts,
            last,
        } => {
            assert_eq!((batch, attempts), (t(2), 1));
            assert!(
                matches!(&*last, StreamError::Checkpoint { source, .. } if matches!(**source, CheckpointError::Fenced { .. })),
                "{last:?}"
            );
        }
        other => panic!("expected CheckpointWrite, got {other:?}"),
    }
    assert_eq!(resume(&url, 2_500).last_completed, t(2));
}

#[test]
fn every_n_batches_writes_less_often_flush_writes_the_rest_and_old_checkpoints_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (store, recovery) =
        get_or_create(&url, &setup(), 0, &RecoverOptions::default()).expect("recover");
    let config = tidemark_stream::checkpoint::CheckpointerConfig {
        every_n_batches: 3,
        keep_last: 2,
        ..fast_config()
    };
    let mut driver = Driver::with(store.clone(), &recovery, config);
    let written: Vec<Option<BatchTime>> =
        (1..=8).map(|s| driver.run(t(s)).map(|c| c.batch)).collect();
    assert_eq!(
        written,
        vec![None, None, Some(t(3)), None, None, Some(t(6)), None, None]
    );
    let flushed = driver
        .checkpointer
        .flush(&offsets_after(t(8)), &[("counts", &driver.state)])
        .expect("flush")
        .expect("batches 7 and 8 were not checkpointed");
    assert_eq!(flushed.batch, t(8));
    let nothing = driver
        .checkpointer
        .flush(&offsets_after(t(8)), &[("counts", &driver.state)])
        .expect("flush");
    assert_eq!(nothing, None);
    let complete = store
        .list()
        .expect("list")
        .iter()
        .filter(|i| i.state == tidemark_checkpoint::CheckpointState::Complete)
        .count();
    assert_eq!(complete, 2);
    assert_eq!(resume(&url, 8_000).last_completed, t(8));
}

#[test]
fn checkpoint_input_that_does_not_match_the_graph_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    let state = driver.state.clone();
    let missing_state = driver
        .checkpointer
        .mark_completed(t(1), &offsets_after(t(1)), &[]);
    assert!(
        matches!(missing_state, Err(StreamError::CheckpointInput { .. })),
        "{missing_state:?}"
    );
    let mut foreign = offsets_after(t(1));
    foreign.set("payments", TopicPartition::new("payments", 0), 5);
    let unknown_stream = driver
        .checkpointer
        .mark_completed(t(1), &foreign, &[("counts", &state)]);
    assert!(
        matches!(unknown_stream, Err(StreamError::CheckpointInput { .. })),
        "{unknown_stream:?}"
    );
    // Neither refusal changed anything: batch 1 still completes.
    assert_eq!(driver.checkpointer.last_completed(), None);
    assert!(driver.run(t(1)).is_some());
}
