//! One stateful operator's keyed state (Spark's `updateStateByKey` and
//! `mapWithState` over a `StateMap`).
//!
//! Keys and values are bytes (the application chooses their encoding). The map
//! is a `BTreeMap`, and a batch's new values are grouped by key in key order,
//! each key's values in the order they were given: the same state and the same
//! input always give the same new state, so a batch re-run after a restart
//! computes what its first run did.
//!
//! The map remembers the last batch applied to it and refuses an older or
//! equal one: a batch is never applied twice to the same state.

use std::collections::BTreeMap;

use crate::block::BatchTime;
use crate::error::StreamError;

/// A stateful operator's keyed state, as of [`last_batch`](Self::last_batch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMap {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    last_batch: Option<BatchTime>,
}

/// What one batch did to a [`StateMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateUpdate {
    /// Keys whose state was set (new or replaced).
    pub updated: usize,
    /// Keys whose state was removed.
    pub removed: usize,
}

/// Which keys an update visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Every key with new values and every key with state (`updateStateByKey`).
    AllKeys,
    /// Keys with new values only (`mapWithState`).
    KeysWithValues,
}

impl StateMap {
    /// An empty state that no batch was applied to.
    pub fn new() -> StateMap {
        StateMap::default()
    }

    /// A state rebuilt from its entries, as of `last_batch` (for decoding).
    pub(crate) fn from_parts(
        entries: BTreeMap<Vec<u8>, Vec<u8>>,
        last_batch: Option<BatchTime>,
    ) -> StateMap {
        StateMap {
            entries,
            last_batch,
        }
    }

    /// The state of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key has state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key and its state, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// The last batch applied, `None` if none was.
    pub fn last_batch(&self) -> Option<BatchTime> {
        self.last_batch
    }

    /// Applies `batch` as Spark's `updateStateByKey`: `update(key, new_values,
    /// old_state)` is called once for every key that has new values or state,
    /// in key order (with no new values for a key that only has state);
    /// `Some(state)` sets the key's state, `None` removes it.
    ///
    /// Fails, changing nothing, when `batch` is not newer than the last batch applied.
    pub fn update_state_by_key<F>(
        &mut self,
        batch: BatchTime,
        input: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        update: F,
    ) -> Result<StateUpdate, StreamError>
    where
        F: FnMut(&[u8], &[Vec<u8>], Option<&[u8]>) -> Option<Vec<u8>>,
    {
        self.apply(batch, input, Scope::AllKeys, update)
    }

    /// Applies `batch` as Spark's `mapWithState` (without timeouts or mapped
    /// output): like [`update_state_by_key`](Self::update_state_by_key), but
    /// only keys with new values are visited; other keys keep their state.
    pub fn map_with_state<F>(
        &mut self,
        batch: BatchTime,
        input: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        update: F,
    ) -> Result<StateUpdate, StreamError>
    where
        F: FnMut(&[u8], &[Vec<u8>], Option<&[u8]>) -> Option<Vec<u8>>,
    {
        self.apply(batch, input, Scope::KeysWithValues, update)
    }

    fn apply<F>(
        &mut self,
        batch: BatchTime,
        input: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        scope: Scope,
        mut update: F,
    ) -> Result<StateUpdate, StreamError>
    where
        F: FnMut(&[u8], &[Vec<u8>], Option<&[u8]>) -> Option<Vec<u8>>,
    {
        self.check_newer(batch)?;
        let mut grouped: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for (key, value) in input {
            grouped.entry(key).or_default().push(value);
        }
        if scope == Scope::AllKeys {
            for key in self.entries.keys() {
                grouped.entry(key.clone()).or_default();
            }
        }
        let mut stats = StateUpdate::default();
        for (key, values) in grouped {
            match update(&key, &values, self.entries.get(&key).map(Vec::as_slice)) {
                Some(state) => {
                    self.entries.insert(key, state);
                    stats.updated += 1;
                }
                None => {
                    if self.entries.remove(&key).is_some() {
                        stats.removed += 1;
                    }
                }
            }
        }
        self.last_batch = Some(batch);
        Ok(stats)
    }

    fn check_newer(&self, batch: BatchTime) -> Result<(), StreamError> {
        match self.last_batch {
            Some(last) if batch <= last => Err(StreamError::BatchOutOfOrder {
                what: "update keyed state",
                batch,
                reason: format!("the state already holds batch {last}"),
            }),
            _ => Ok(()),
        }
    }
}
