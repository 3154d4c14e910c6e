//! The settings a driver ran with, kept in its checkpoints for comparison.
//!
//! Unlike Spark, which restores most of the checkpointed `SparkConf`, a
//! restarted tidemark driver always runs with its own settings; the
//! checkpoint's are only compared with them, and every difference is logged
//! and reported ([`SettingChange`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Settings by name, sorted (a stable order for comparison and encoding).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    /// No settings.
    pub fn new() -> Settings {
        Settings::default()
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Settings {
        self.0.insert(name.into(), value.into());
        self
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every setting, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Each setting whose value differs between `old` (a checkpoint's) and
    /// `self` (this run's), in name order.
    pub fn changes_from(&self, old: &Settings) -> Vec<SettingChange> {
        let mut names: Vec<&String> = old.0.keys().chain(self.0.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                let (was, now) = (old.0.get(name), self.0.get(name));
                (was != now).then(|| SettingChange {
                    name: name.clone(),
                    old: was.cloned(),
                    new: now.cloned(),
                })
            })
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Settings {
        Settings(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// A setting whose value this run differs from the checkpoint's; this run's applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingChange {
    /// The setting.
    pub name: String,
    /// The checkpoint's value; `None` if it was not set.
    pub old: Option<String>,
    /// This run's value; `None` if it is not set.
    pub new: Option<String>,
}

impl fmt::Display for SettingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| {
            v.as_deref()
                .map_or("(unset)".to_string(), |v| format!("{v:?}"))
        };
        write!(
            f,
            "{}: {} -> {}",
            self.name,
            show(&self.old),
            show(&self.new)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_changed_added_and_removed_settings() {
        let old = Settings::new().set("a", "1").set("b", "2").set("c", "3");
        let new = Settings::new().set("a", "1").set("b", "20").set("d", "4");
        let changes = new.changes_from(&old);
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "b: \"2\" -> \"20\"",
                "c: \"3\" -> (unset)",
                "d: (unset) -> \"4\""
            ]
        );
    }
}
