// lambda_runtime's service stack is a deep future type; computing its layout needs
// more than the default depth. It stays inside this crate (see `entry`).
#![recursion_limit = "256"]
//! The runtime behind `#[lawcket::handler]`. Use it through the `lawcket` crate,
//! which re-exports this crate's public API; the rest is private.
//!
//! Modules, from the bottom up (each uses only those above it in this list, so
//! there is no import cycle; `tests/architecture.rs` checks it):
//!
//! | module | holds |
//! |---|---|
//! | `limits`, `clock` | AWS's numbers and lawcket's defaults; the one clock |
//! | `error`, `env` | [`Error`] and its Lambda diagnostic; the one reader of lawcket's variables |
//! | `connection`, `event` | what an event says: [`Connection`], [`Event`] and its [`Body`] |
//! | `sync` | sync fields and their rules ([`SyncValue`], [`Dynamic`]) |
//! | `registry` | where connections are kept: DynamoDB or memory |
//! | `management`, `endpoint` | the `@connections` API: clients, posts, which endpoint |
//! | `https` | the one HTTP client of every AWS call (rustls on ring, Amazon's roots) |
//! | `host` | one assembly step: SDK settings, call timeouts and registry, built once |
//! | `report`, `publisher`, `publish` | sending: [`Publisher`], [`Report`], the handler's [`Publish`] |
//! | `registration` | a connection's item, and [`Registration`] for the handler |
//! | `invocation` | what user code receives and returns ([`FromInvocation`], [`HandlerOutput`], ...) |
//! | `config` | what the attribute configures ([`Config`], [`Table`]) |
//! | `pipeline` | one event to one response: lifecycles, user code, responses |
//! | `lambda`, `local` | the two transports that feed the pipeline |
//! | `entry` | the process's `main` |

#![warn(missing_docs)]

mod authorizer;
mod clock;
mod config;
mod connection;
#[cfg(feature = "fanout")]
mod dispatch;
mod endpoint;
mod entry;
mod env;
mod error;
mod event;
#[cfg(feature = "fanout")]
mod fanout;
mod host;
mod https;
mod invocation;
mod lambda;
mod limits;
#[cfg(feature = "local")]
mod local;
mod management;
mod pipeline;
mod publish;
mod publisher;
mod registration;
mod registry;
mod reply;
mod report;
mod subprotocol;
mod sync;

pub use authorizer::{Authorizer, AuthorizerFuture, AuthorizerRequest, Identity, IntoAuthorizer};
pub use config::{table_from_env, Config, IntoTable, Table};
pub use connection::{Connection, Kind};
#[cfg(feature = "fanout")]
pub use dispatch::{BroadcastReport, Dispatch, Dispatched};
pub use endpoint::ENDPOINT_ENV;
pub use entry::main;
pub use error::{BoxError, Error};
pub use event::{Body, Event};
#[cfg(feature = "fanout")]
pub use fanout::{DEFAULT_FANOUT_RATE, DEFAULT_FANOUT_WORKERS};
pub use invocation::{
    FromInvocation, Handler, HandlerFuture, HandlerOutput, IntoMiddleware, IntoPlugin, Invocation,
    Middleware, MiddlewareFuture, MiddlewareOutput,
};
pub use lawcket_rules::{DEFAULT_CHARS, DEFAULT_MAX_LEN, RESERVED_ATTRIBUTES};
pub use limits::{DEFAULT_CONCURRENCY, DEFAULT_TTL, MAX_MESSAGE_BYTES};
pub use publish::Publish;
pub use publisher::{Broadcast, Publisher, PublisherBuilder};
pub use registration::Registration;
pub use reply::{IntoReply, Reply};
pub use report::{Failure, Report};
pub use sync::{Dynamic, SyncValue};

/// What lawcket's own integration tests reach into: the pipeline, the
/// registries and the local gateway. Behind the `test-util` feature, so no
/// user's binary carries it.
#[cfg(feature = "test-util")]
pub mod test_util {
    pub use crate::pipeline::Pipeline;
    pub use crate::registry::{Dynamo, Item, Memory, Registry, Selector};

    #[cfg(feature = "local")]
    pub use crate::local::{LocalGateway, Settings};

    /// The HTTP client lawcket gives the SDK, for the tests' own SDK clients.
    pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        crate::https::client()
    }

    /// SDK settings with fixed local credentials and region, as the local
    /// gateway uses in memory.
    pub async fn offline_sdk_config() -> aws_config::SdkConfig {
        crate::host::load(crate::host::Sdk::Offline).await
    }

    /// A [`Publisher`](crate::Publisher) over `registry` (the memory one,
    /// typically) posting to `endpoint` through a management client built as
    /// lawcket builds its own (retries, post timeouts from the environment),
    /// at most `concurrency` posts in flight. It reaches every stage.
    pub fn publisher(
        registry: Registry,
        sdk: &aws_config::SdkConfig,
        endpoint: &str,
        concurrency: usize,
    ) -> Result<crate::Publisher, crate::Error> {
        let timeouts = crate::host::Timeouts::from_env()?;
        let client = crate::management::client(sdk, endpoint, &timeouts.post);
        Ok(crate::Publisher::from_parts(
            client,
            endpoint.to_owned(),
            registry,
            None,
            concurrency.max(1),
        ))
    }

    pub use crate::lambda::Output as LambdaOutput;

    #[cfg(feature = "fanout")]
    pub use crate::fanout::{Batch as FanoutBatch, Post as FanoutPost, Worker as FanoutWorker};
    /// What one post came to (a fan-out worker's simulated posts answer it).
    pub use crate::management::Outcome as PostOutcome;

    /// Dispatches `data` to every connection of `registry` through the
    /// fan-out's own dispatcher, `batch` connections per message, handing
    /// each group of message bodies to `send` instead of SQS. Answers the
    /// broadcast id, the connections and the batches.
    #[cfg(feature = "fanout")]
    pub async fn fanout_dispatch<S, F>(
        registry: &Registry,
        endpoint: &str,
        data: &[u8],
        batch: usize,
        send: S,
    ) -> Result<(String, u64, u64), crate::Error>
    where
        S: Fn(Vec<String>) -> F,
        F: std::future::Future<Output = Result<(), crate::Error>>,
    {
        let selector = crate::registry::Selector::default();
        let enqueued =
            crate::fanout::dispatch_into(registry, selector, endpoint, data, batch, send).await?;
        Ok((enqueued.id, enqueued.connections, enqueued.batches))
    }

    /// Runs one Lambda invocation payload (any bytes) through `pipeline`,
    /// read exactly as the Lambda entry reads it.
    pub async fn run_lambda_payload(
        pipeline: &Pipeline,
        bytes: &[u8],
    ) -> Result<LambdaOutput, crate::Error> {
        crate::lambda::run_bytes(pipeline, bytes).await
    }

    /// Serves `pipeline` through lambda_runtime, as a Lambda binary does (the
    /// `AWS_LAMBDA_*` variables must be set).
    pub async fn serve_lambda(pipeline: std::sync::Arc<Pipeline>) -> Result<(), crate::Error> {
        crate::lambda::serve(pipeline).await
    }
}
