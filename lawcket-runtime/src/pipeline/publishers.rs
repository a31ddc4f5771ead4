//! One [`Publisher`] per management endpoint and stage (one of each on
//! Lambda), built on first use and kept: the process's only cache of
//! management clients. Publishers of one endpoint share its client.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::timeout::TimeoutConfig;

use crate::connection::Connection;
use crate::endpoint::management_endpoint;
use crate::error::Error;
use crate::publisher::Publisher;
use crate::registry::Registry;

/// Publishers kept at most; past it the cache starts again.
const MAX_PUBLISHERS: usize = 64;

#[derive(Debug)]
pub(super) struct Publishers {
    sdk: aws_config::SdkConfig,
    registry: Registry,
    endpoint_override: Option<String>,
    concurrency: usize,
    timeouts: TimeoutConfig,
    by_stage: Mutex<HashMap<(String, String), Publisher>>,
}

impl Publishers {
    pub(super) fn new(
        sdk: aws_config::SdkConfig,
        registry: Registry,
        endpoint_override: Option<String>,
        concurrency: usize,
        timeouts: TimeoutConfig,
    ) -> Self {
        Publishers {
            sdk,
            registry,
            endpoint_override,
            concurrency,
            timeouts,
            by_stage: Mutex::default(),
        }
    }

    /// The publisher for `connection`'s API stage.
    pub(super) fn for_connection(&self, connection: &Connection) -> Result<Publisher, Error> {
        let endpoint = management_endpoint(
            connection,
            self.endpoint_override.as_deref(),
            self.sdk.region().map(|r| r.as_ref()),
        )?;
        let key = (endpoint, connection.stage().to_owned());
        let mut cache = self.by_stage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(publisher) = cache.get(&key) {
            return Ok(publisher.clone());
        }
        // On Lambda there is one entry; events naming ever new domains (forged,
        // or many custom domains) must not grow it without bound.
        if cache.len() >= MAX_PUBLISHERS {
            cache.clear();
        }
        let client = cache
            .iter()
            .find(|((endpoint, _), _)| *endpoint == key.0)
            .map(|(_, publisher)| publisher.client().clone())
            .unwrap_or_else(|| crate::management::client(&self.sdk, &key.0, &self.timeouts));
        let publisher = Publisher::from_parts(
            client,
            key.0.clone(),
            self.registry.clone(),
            Some(key.1.clone()),
            self.concurrency,
        );
        cache.insert(key, publisher.clone());
        Ok(publisher)
    }
}
