//! The local gateway: a WebSocket server on 127.0.0.1 that emulates API Gateway
//! (event shapes, connection ids, route selection, `@connections` with 410 for
//! gone ids, size limits, idle and maximum-duration timeouts) and feeds the same
//! [`Pipeline`] as Lambda.
//!
//! `settings` reads the `LAWCKET_LOCAL_*` variables; `state` is what the HTTP
//! side and the sockets share; `listen` accepts connections; `guard` keeps
//! web pages out; `http` serves the handshake (`$connect`), the `@connections`
//! API and the page; `invoke` runs the pipeline in one of the `slots` (the
//! concurrency bound) and within the integration timeout; `socket` runs one open WebSocket;
//! `in_process` takes the handlers' posts to the gateway without a socket;
//! `events` builds the events API Gateway would send; `formats` its ids and
//! timestamps.

mod events;
mod formats;
mod guard;
mod http;
mod in_process;
mod invoke;
mod listen;
mod settings;
mod slots;
mod socket;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use settings::LocalRegistry;
pub use settings::Settings;

use crate::config::Config;
use crate::endpoint::override_from_env;
use crate::error::Error;
use crate::host::{Host, Sdk, Store};
use crate::invocation::Handler;
use crate::pipeline::Pipeline;
use in_process::InProcess;
use state::Gateway;

/// A local gateway bound to its address, ready to serve.
///
/// Binding first tells the address (port 0 picks a free one), which the
/// pipeline's publisher needs as its management endpoint.
#[derive(Debug)]
pub struct LocalGateway {
    listener: TcpListener,
    settings: Settings,
    in_process: InProcess,
}

impl LocalGateway {
    /// Binds `settings.addr`.
    pub async fn bind(settings: Settings) -> Result<Self, Error> {
        let listener = TcpListener::bind(settings.addr)
            .await
            .map_err(|source| Error::Io {
                context: format!(
                    "the local gateway cannot listen on {} (set LAWCKET_LOCAL_ADDR to another address)",
                    settings.addr
                ),
                source,
            })?;
        Ok(LocalGateway {
            listener,
            settings,
            in_process: InProcess::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The management endpoint of this gateway (`http://{addr}`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    /// `sdk` with this gateway's own `@connections` API reached in process,
    /// for the pipeline's publishers: posts are signed and answered as over
    /// HTTP, without a socket each.
    pub fn in_process_sdk(&self, sdk: aws_config::SdkConfig) -> aws_config::SdkConfig {
        sdk.into_builder()
            .http_client(self.in_process.clone())
            .build()
    }

    /// Serves WebSocket clients and the management API until the process ends.
    pub async fn serve(self, pipeline: Arc<Pipeline>) -> Result<(), Error> {
        let handshake_timeout = self.settings.handshake_timeout;
        // No SQS here: dispatched broadcasts are worked in this process.
        #[cfg(feature = "fanout")]
        pipeline.work_fanout_in_process();
        let router = http::router(Arc::new(Gateway::new(self.settings, pipeline)));
        self.in_process.serve(router.clone());
        listen::serve(self.listener, router, handshake_timeout).await;
        Ok(())
    }
}

/// Runs the local gateway for the generated `main`: the settings from the
/// environment, the registry `LAWCKET_LOCAL_REGISTRY` names, and posts to the
/// gateway itself unless `LAWCKET_MANAGEMENT_ENDPOINT` says otherwise.
pub(crate) async fn serve(config: Config, handler: Box<dyn Handler>) -> Result<(), Error> {
    config.validate()?; // before anything is bound or logged as serving
    let mut settings = Settings::from_env()?;
    settings.page = config.local_page;
    let registry = settings.registry;
    let gateway = LocalGateway::bind(settings).await?;
    let (store, sdk) = match registry {
        LocalRegistry::Memory => (Store::Memory, Sdk::Offline),
        LocalRegistry::Dynamo => (config.dynamo_store()?, Sdk::EnvironmentOrLocalRegion),
    };
    let mut host = Host::build(store, sdk).await?;
    let endpoint = match override_from_env() {
        Some(endpoint) => endpoint,
        None => {
            host.sdk = gateway.in_process_sdk(host.sdk);
            gateway.endpoint()
        }
    };
    tracing::info!(
        "local gateway on ws://{addr} (page: http://{addr}/), registry: {}, @connections: {endpoint}",
        host.registry.describe(),
        addr = gateway.local_addr(),
    );
    let pipeline = Pipeline::assemble(config, host, Some(endpoint), handler)?;
    gateway.serve(Arc::new(pipeline)).await
}
