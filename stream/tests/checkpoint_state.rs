//! Keyed state of a stateful operator: update semantics, determinism, and its
//! round trip through real checkpoints (a re-run batch gives the same state).

mod checkpoint_support;

use checkpoint_support::*;
use tidemark_stream::StreamError;
use tidemark_stream::checkpoint::{Recovery, StateMap, StateUpdate};

fn kv(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

fn contents(state: &StateMap) -> Vec<(String, String)> {
    state
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Concatenates the batch's values onto the old state; "drop" removes the key.
fn append(_key: &[u8], new: &[Vec<u8>], old: Option<&[u8]>) -> Option<Vec<u8>> {
    if new.iter().any(|v| v == b"drop") {
        return None;
    }
    let mut out = old.unwrap_or_default().to_vec();
    for v in new {
        out.extend_from_slice(v);
    }
    Some(out)
}

#[test]
fn update_state_by_key_visits_every_key_in_order_and_none_removes() {
    let mut state = StateMap::new();
    let stats = state
        .update_state_by_key(t(1), vec![kv("b", "1"), kv("a", "x"), kv("b", "2")], append)
        .expect("update");
    assert_eq!(
        stats,
        StateUpdate {
            updated: 2,
            removed: 0
        }
    );
    assert_eq!(
        contents(&state),
        vec![("a".into(), "x".into()), ("b".into(), "12".into())]
    );

    // Every key is visited, with or without new values, in key order.
    let mut visits = Vec::new();
    let stats = state
        .update_state_by_key(
            t(2),
            vec![kv("c", "3"), kv("a", "drop")],
            |key, new, old| {
                visits.push((
                    String::from_utf8_lossy(key).into_owned(),
                    new.len(),
                    old.is_some(),
                ));
                append(key, new, old)
            },
        )
        .expect("update");
    assert_eq!(
        visits,
        vec![
            ("a".into(), 1, true),
            ("b".into(), 0, true),
            ("c".into(), 1, false)
        ]
    );
    assert_eq!(
        stats,
        StateUpdate {
            updated: 2,
            removed: 1
        }
    );
    assert_eq!(
        contents(&state),
        vec![("b".into(), "12".into()), ("c".into(), "3".into())]
    );
    assert_eq!(state.last_batch(), Some(t(2)));
}

#[test]
fn map_with_state_visits_only_keys_with_new_values() {
    let mut state = StateMap::new();
    state
        .map_with_state(t(1), vec![kv("a", "1"), kv("b", "2")], append)
        .expect("update");
    let mut visited = Vec::new();
    state
        .map_with_state(t(2), vec![kv("b", "3")], |key, new, old| {
            visited.push(key.to_vec());
            append(key, new, old)
        })
        .expect("update");
    assert_eq!(visited, vec![b"b".to_vec()]);
    assert_eq!(
        contents(&state),
        vec![("a".into(), "1".into()), ("b".into(), "23".into())]
    );
}

#[test]
fn a_batch_is_never_applied_twice_to_a_state() {
    let mut state = StateMap::new();
    state
        .update_state_by_key(t(2), vec![kv("a", "1")], append)
        .expect("update");
    let before = state.clone();
    for batch in [t(2), t(1)] {
        let again = state.update_state_by_key(batch, vec![kv("a", "1")], append);
        assert!(
            matches!(again, Err(StreamError::BatchOutOfOrder { .. })),
            "{again:?}"
        );
    }
    assert_eq!(state, before, "a refused batch changes nothing");
}

#[test]
fn the_same_input_in_any_key_order_gives_the_same_state() {
    let input = vec![kv("k2", "a"), kv("k1", "b"), kv("k2", "c"), kv("k3", "d")];
    let mut reordered = input.clone();
    reordered.sort_by(|x, y| x.0.cmp(&y.0)); // keys regrouped; each key's values keep their order
    let (mut one, mut two) = (StateMap::new(), StateMap::new());
    one.update_state_by_key(t(1), input, append)
        .expect("update");
    two.update_state_by_key(t(1), reordered, append)
        .expect("update");
    assert_eq!(one, two);
}

#[test]
fn batches_rerun_after_a_restart_give_the_state_their_first_run_gave() {
    // The reference: a driver that never fails.
    let mut reference = StateMap::new();
    for s in 1..=5 {
        count(&mut reference, t(s));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.run(t(1));
    driver.run(t(2));
    // Batch 3's state update happened, then the driver died before its output.
    driver.checkpointer.batch_allocated(t(3)).expect("allocate");
    count(&mut driver.state, t(3));
    drop(driver);

    let (mut driver, recovery) = Driver::start(&url, 5_100);
    let Recovery::Resume(resumed) = &recovery else {
        panic!("expected a resume");
    };
    assert_eq!(resumed.rerun, vec![t(3), t(4), t(5)]);
    for batch in resumed.rerun.clone() {
        driver.run(batch);
    }
    assert_eq!(driver.state, reference);
    assert_eq!(resume(&url, 5_100).states["counts"], reference);
}

#[test]
fn a_large_state_streams_through_its_part_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = local_url(dir.path());
    let (mut driver, _) = Driver::start(&url, 0);
    driver.checkpointer.batch_allocated(t(1)).expect("allocate");
    // About 12 MiB of state: more than one 5 MiB upload chunk and the inline limit.
    let input = (0..50_000u32).map(|i| {
        (
            format!("key-{i:08}").into_bytes(),
            vec![(i % 251) as u8; 240],
        )
    });
    driver
        .state
        .update_state_by_key(t(1), input, |_, new, _| new.last().cloned())
        .expect("update");
    let commit = driver
        .checkpointer
        .mark_completed(t(1), &offsets_after(t(1)), &[("counts", &driver.state)])
        .expect("checkpoint")
        .expect("written");
    let part = part_file(dir.path(), commit.epoch.get(), "state-0");
    let size = std::fs::metadata(&part).expect("part file").len();
    assert!(size > 12_000_000, "state part is {size} bytes");

    let resumed = resume(&url, 1_000);
    let back = &resumed.states["counts"];
    assert_eq!(back.len(), 50_000);
    assert_eq!(back, &driver.state);
}
