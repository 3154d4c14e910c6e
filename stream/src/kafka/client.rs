//! Connection settings shared by every Kafka client of the stream layer, and
//! the properties each role forces whatever the user set.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;

use crate::error::StreamError;

/// Where the brokers are, and any other librdkafka properties (security,
/// fetch sizes, timeouts), as `name = value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaClientConf {
    /// `bootstrap.servers`: `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Further librdkafka properties. Those a role depends on (listed where the
    /// role is) are overridden, with a warning.
    pub properties: BTreeMap<String, String>,
}

impl KafkaClientConf {
    /// Settings for the brokers at `bootstrap_servers`, with no other property.
    pub fn new(bootstrap_servers: impl Into<String>) -> KafkaClientConf {
        KafkaClientConf {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Creates a consumer with `defaults`, the user's properties over them,
    /// then `forced` on top.
    pub(crate) fn consumer(
        &self,
        role: &str,
        defaults: &[(&str, &str)],
        forced: &[(&str, &str)],
    ) -> Result<BaseConsumer, StreamError> {
        let mut config = ClientConfig::new();
        for &(name, value) in defaults {
            config.set(name, value);
        }
        for (name, value) in &self.properties {
            config.set(name, value);
        }
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for &(name, value) in forced {
            if self.properties.get(name).is_some_and(|v| v != value) {
                tracing::warn!(
                    role,
                    name,
                    value,
                    "overriding a Kafka property this role relies on"
                );
            }
            config.set(name, value);
        }
        config.create().map_err(|source| StreamError::Kafka {
            what: format!("create the Kafka {role} for {}", self.bootstrap_servers),
            source,
        })
    }
}
