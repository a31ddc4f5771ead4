//! The local gateway: a WebSocket server on 127.0.0.1 that emulates API Gateway
//! (event shapes, connection ids, route selection, `@connections` with 410 for
//! gone ids, size limits, idle and maximum-duration timeouts) and feeds the same
//! [`Pipeline`] as Lambda.

mod clock;
mod events;
mod gateway;
mod settings;
mod socket;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

pub use settings::Settings;

use crate::config::Config;
use crate::endpoint::ENDPOINT_ENV;
use crate::invocation::Handler;
use crate::pipeline::Pipeline;
use crate::registry::{Memory, Registry};
use crate::Error;

/// A local gateway bound to its address, ready to serve.
///
/// Binding first tells the address (port 0 picks a free one), which the
/// pipeline's publisher needs as its management endpoint.
#[derive(Debug)]
pub struct LocalGateway {
    listener: TcpListener,
    settings: Settings,
}

impl LocalGateway {
    /// Binds `settings.addr`.
    pub async fn bind(settings: Settings) -> Result<Self, Error> {
        let listener = TcpListener::bind(settings.addr).await.map_err(|e| {
            Error::Config(format!(
                "the local gateway cannot listen on {}: {e} (set LAWCKET_LOCAL_ADDR to another address)",
                settings.addr
            ))
        })?;
        Ok(LocalGateway { listener, settings })
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

    /// Serves WebSocket clients and the management API until the process ends.
    pub async fn serve(self, pipeline: Arc<Pipeline>) -> Result<(), Error> {
        let gateway = Arc::new(gateway::Gateway {
            settings: self.settings,
            pipeline,
            live: Mutex::new(Default::default()),
        });
        let app = gateway::router(gateway).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .await
            .map_err(|e| Error::Config(format!("the local gateway stopped: {e}")))
    }
}

/// SDK settings for the in-memory mode: fixed local credentials and region, so
/// no AWS account or configuration is needed.
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "lawcket-local",
        ))
        .load()
        .await
}

pub(crate) async fn serve(config: Config, handler: Box<dyn Handler>) -> Result<(), Error> {
    let mut settings = Settings::from_env()?;
    settings.page = config.local_page;
    let gateway = LocalGateway::bind(settings).await?;
    let (registry, sdk) = match std::env::var("LAWCKET_LOCAL_REGISTRY").as_deref() {
        Err(_) | Ok("") | Ok("memory") => (
            Registry::Memory(Arc::new(Memory::new())),
            local_sdk_config().await,
        ),
        Ok("dynamodb") => {
            let table = config.table.resolve()?;
            let region = aws_config::meta::region::RegionProviderChain::default_provider()
                .or_else("us-east-1");
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(region)
                .load()
                .await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            (
                Registry::Dynamo(Arc::new(config.dynamo(client, table))),
                sdk,
            )
        }
        Ok(other) => {
            return Err(Error::Config(format!(
                "LAWCKET_LOCAL_REGISTRY={other:?}: expected `memory` or `dynamodb`"
            )))
        }
    };
    let endpoint = std::env::var(ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| gateway.endpoint());
    tracing::info!(
        "local gateway on ws://{addr} (page: http://{addr}/), registry: {}, @connections: {endpoint}",
        registry.describe(),
        addr = gateway.local_addr(),
    );
    let pipeline = Pipeline::from_boxed(config, registry, sdk, Some(endpoint), handler);
    gateway.serve(Arc::new(pipeline)).await
}
