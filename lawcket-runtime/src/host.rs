//! One assembly step: the AWS SDK settings, the bounds on every call and the
//! registry (with its DynamoDB client), built once per process and the same
//! way for Lambda, the local gateway and
//! [`PublisherBuilder`](crate::PublisherBuilder). Cold work happens here and
//! nowhere per invocation; management clients are built from the host's
//! settings on first use, one per endpoint (`pipeline::publishers`).

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

use crate::env;
use crate::error::Error;
use crate::limits::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, DEFAULT_DYNAMODB_TIMEOUT, DEFAULT_POST_TIMEOUT,
    INTEGRATION_TIMEOUT,
};
use crate::registry::{Dynamo, Memory, Registry};

/// Where the SDK finds its region and credentials.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // some are the local gateway's
pub(crate) enum Sdk {
    /// The SDK's default chain (environment, profile, the Lambda role).
    Environment,
    /// The default chain, with `us-east-1` when no region is configured (the
    /// local gateway with DynamoDB, often moto or DynamoDB Local).
    EnvironmentOrLocalRegion,
    /// Fixed local credentials and region: the local gateway in memory needs
    /// no AWS account or configuration.
    Offline,
    /// Settings the caller built.
    Given(Box<aws_config::SdkConfig>),
}

/// Where connections are kept.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // memory is the local gateway's
pub(crate) enum Store<'a> {
    /// In memory (the local gateway's default).
    Memory,
    /// A DynamoDB table, with its sync-field indexes and an optional page size.
    Dynamo {
        table: String,
        indexes: &'a [(String, String)],
        page_size: Option<i32>,
    },
}

/// The SDK settings and the registry a process runs with.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) registry: Registry,
    pub(crate) timeouts: Timeouts,
}

/// Bounds on every AWS call: no DynamoDB call or post can hang an invocation
/// until Lambda's own timeout.
#[derive(Clone, Debug)]
pub(crate) struct Timeouts {
    pub(crate) dynamodb: TimeoutConfig,
    pub(crate) post: TimeoutConfig,
}

impl Timeouts {
    /// lawcket's defaults, or `LAWCKET_DYNAMODB_TIMEOUT` and
    /// `LAWCKET_POST_TIMEOUT` (seconds, a call's bound with its retries).
    pub(crate) fn from_env() -> Result<Self, Error> {
        let dynamodb =
            env::seconds("LAWCKET_DYNAMODB_TIMEOUT")?.unwrap_or(DEFAULT_DYNAMODB_TIMEOUT);
        let post = env::seconds("LAWCKET_POST_TIMEOUT")?.unwrap_or(DEFAULT_POST_TIMEOUT);
        // A refused $connect may wait for a store and the refusal marker.
        if dynamodb * 2 >= INTEGRATION_TIMEOUT - Duration::from_secs(9) {
            tracing::warn!(
                ?dynamodb,
                "LAWCKET_DYNAMODB_TIMEOUT is long: a refused $connect waits up to twice it, and \
                 API Gateway gives up after 29 s, when a store may still land"
            );
        }
        Ok(Timeouts {
            // A DynamoDB call is safe to repeat: a hung attempt is retried.
            dynamodb: bounds(dynamodb, Some(ATTEMPT_TIMEOUT)),
            // A post is not: an attempt that timed out may have been delivered,
            // so it is not retried; throttling and 5xx answers still are.
            post: bounds(post, None),
        })
    }
}

fn bounds(operation: Duration, attempt: Option<Duration>) -> TimeoutConfig {
    let builder = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(operation))
        .operation_timeout(operation);
    match attempt {
        Some(attempt) => builder.operation_attempt_timeout(attempt.min(operation)),
        None => builder,
    }
    .build()
}

impl Host {
    /// The fan-out of this host, with the settings the environment sets.
    #[cfg(feature = "fanout")]
    pub(crate) fn fanout(&self) -> Result<crate::fanout::Fanout, Error> {
        let settings = crate::fanout::Settings::from_env()?;
        Ok(crate::fanout::Fanout::new(
            &self.sdk,
            &self.timeouts.dynamodb,
            &self.timeouts.post,
            settings,
        ))
    }

    /// Loads the SDK settings and builds the registry on them, with the
    /// timeouts the environment sets.
    pub(crate) async fn build(store: Store<'_>, sdk: Sdk) -> Result<Host, Error> {
        let timeouts = Timeouts::from_env()?;
        let sdk = load(sdk).await;
        let registry = match store {
            Store::Memory => Registry::Memory(Arc::new(Memory::new())),
            Store::Dynamo {
                table,
                indexes,
                page_size,
            } => {
                let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .timeout_config(timeouts.dynamodb.clone())
                    .build();
                let client = aws_sdk_dynamodb::Client::from_conf(config);
                let dynamo = indexes
                    .iter()
                    .fold(Dynamo::new(client, table), |d, (f, i)| {
                        d.with_index(f.as_str(), i.as_str())
                    });
                let dynamo = match page_size {
                    Some(items) => dynamo.with_page_size(items),
                    None => dynamo,
                };
                Registry::Dynamo(Arc::new(dynamo))
            }
        };
        Ok(Host {
            sdk,
            registry,
            timeouts,
        })
    }
}

pub(crate) async fn load(sdk: Sdk) -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    let defaults =
        aws_config::defaults(BehaviorVersion::latest()).http_client(crate::https::client());
    match sdk {
        // A config built by the user's own aws-config, which may have no HTTP
        // client of its own (lawcket does not turn on the SDK's default one).
        Sdk::Given(sdk) if sdk.http_client().is_none() => sdk
            .into_builder()
            .http_client(crate::https::client())
            .build(),
        Sdk::Given(sdk) => *sdk,
        Sdk::Environment => defaults.load().await,
        Sdk::EnvironmentOrLocalRegion => {
            // The environment and the profile: the default region chain's last
            // step, EC2's instance metadata, builds its own HTTP client, which
            // lawcket does not link (a laptop has no instance metadata anyway).
            use aws_config::environment::EnvironmentVariableRegionProvider;
            use aws_config::profile::ProfileFileRegionProvider;
            let region = aws_config::meta::region::RegionProviderChain::first_try(
                EnvironmentVariableRegionProvider::new(),
            )
            .or_else(ProfileFileRegionProvider::new())
            .or_else(Region::new("us-east-1"));
            defaults.region(region).load().await
        }
        Sdk::Offline => {
            let credentials = aws_sdk_apigatewaymanagement::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "lawcket-local",
            );
            defaults
                .region(Region::new("us-east-1"))
                .credentials_provider(credentials)
                .load()
                .await
        }
    }
}
