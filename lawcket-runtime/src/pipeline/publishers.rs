//! One [`Publisher`] per management endpoint and stage (one of each on
//! Lambda), built on first use and kept: the process's only cache of
//! management clients. Publishers of one endpoint share its client.

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
    by_stage: Mutex<Vec<Entry>>,
    #[cfg(feature = "fanout")]
    fanout: std::sync::Arc<crate::fanout::Fanout>,
}

/// A publisher and what it was built for. The endpoint follows from the
/// domain, stage and API id (the override and region are fixed), so a message
/// finds its publisher by comparing those, with no allocation.
#[derive(Debug)]
struct Entry {
    domain_name: String,
    stage: String,
    api_id: Option<String>,
    endpoint: String,
    publisher: Publisher,
}

impl Publishers {
    pub(super) fn new(
        sdk: aws_config::SdkConfig,
        registry: Registry,
        endpoint_override: Option<String>,
        concurrency: usize,
        timeouts: TimeoutConfig,
        #[cfg(feature = "fanout")] fanout: std::sync::Arc<crate::fanout::Fanout>,
    ) -> Self {
        Publishers {
            sdk,
            registry,
            endpoint_override,
            concurrency,
            timeouts,
            by_stage: Mutex::default(),
            #[cfg(feature = "fanout")]
            fanout,
        }
    }

    /// The publisher for `connection`'s API stage.
    pub(super) fn for_connection(&self, connection: &Connection) -> Result<Publisher, Error> {
        let (domain_name, stage) = (connection.domain_name(), connection.stage());
        let mut cache = self.by_stage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = cache.iter().find(|e| {
            e.domain_name == domain_name
                && e.stage == stage
                && e.api_id.as_deref() == connection.api_id()
        }) {
            return Ok(entry.publisher.clone());
        }
        let endpoint = management_endpoint(
            connection,
            self.endpoint_override.as_deref(),
            self.sdk.region().map(|r| r.as_ref()),
        )?;
        // On Lambda there is one entry; events naming ever new domains (forged,
        // or many custom domains) must not grow it without bound.
        if cache.len() >= MAX_PUBLISHERS {
            cache.clear();
        }
        let client = cache
            .iter()
            .find(|e| e.endpoint == endpoint)
            .map(|e| e.publisher.client().clone())
            .unwrap_or_else(|| crate::management::client(&self.sdk, &endpoint, &self.timeouts));
        let publisher = Publisher::from_parts(
            client,
            endpoint.clone(),
            self.registry.clone(),
            Some(stage.to_owned()),
            self.concurrency,
        );
        #[cfg(feature = "fanout")]
        let publisher = publisher.with_fanout(std::sync::Arc::clone(&self.fanout));
        cache.push(Entry {
            domain_name: domain_name.to_owned(),
            stage: stage.to_owned(),
            api_id: connection.api_id().map(str::to_owned),
            endpoint,
            publisher: publisher.clone(),
        });
        Ok(publisher)
    }
}
