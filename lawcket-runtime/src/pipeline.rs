//! The one path from an API Gateway WebSocket event to its response, shared by
//! the Lambda entry and the local gateway.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body as ResponseBody;
use tracing::Instrument;

use crate::config::Config;
use crate::endpoint::management_endpoint;
use crate::invocation::{Handler, Invocation};
use crate::publish::{Clients, Target};
use crate::registry::{Item, Registry};
use crate::{Connection, Error, Event, Kind, Publish};

/// Runs events through the user's handler, keeping the registry in step.
///
/// Built once per process; [`Pipeline::run`] serves one event.
pub struct Pipeline {
    config: Config,
    registry: Registry,
    clients: Clients,
    endpoint_override: Option<String>,
    handler: Box<dyn Handler>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.config)
            .field("registry", &self.registry)
            .field("endpoint_override", &self.endpoint_override)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline storing connections in `registry` and posting through clients
    /// built from `sdk`. `endpoint_override`, when set, is the management endpoint
    /// for every post.
    pub fn new(
        config: Config,
        registry: Registry,
        sdk: aws_config::SdkConfig,
        endpoint_override: Option<String>,
        handler: impl Handler,
    ) -> Self {
        Self::from_boxed(config, registry, sdk, endpoint_override, Box::new(handler))
    }

    pub(crate) fn from_boxed(
        config: Config,
        registry: Registry,
        sdk: aws_config::SdkConfig,
        endpoint_override: Option<String>,
        handler: Box<dyn Handler>,
    ) -> Self {
        Pipeline {
            config,
            registry,
            clients: Clients::new(sdk),
            endpoint_override,
            handler,
        }
    }

    /// The registry connections are kept in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves a raw invocation payload (what Lambda delivers).
    pub async fn run_json(
        &self,
        payload: serde_json::Value,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        let request = serde_json::from_value(payload).map_err(|e| {
            Error::MalformedEvent(format!("not an API Gateway WebSocket event: {e}"))
        })?;
        self.run(request).await
    }

    /// Serves one event.
    ///
    /// `$connect` always answers with a response: 200 when accepted, the
    /// refusal's status otherwise (so API Gateway refuses the handshake with it).
    /// `$disconnect` and messages answer 200 or an error.
    pub async fn run(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        let connection = Connection::from_request(&request)?;
        let span = tracing::info_span!(
            "lawcket",
            kind = ?connection.kind(),
            connection_id = connection.id(),
            route = connection.route_key(),
        );
        async move {
            match connection.kind() {
                Kind::Connect => Ok(self.connect(request, connection).await),
                Kind::Close => self.disconnect(request, connection).await,
                Kind::Message => self.message(request, connection).await,
            }
        }
        .instrument(span)
        .await
    }

    async fn connect(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
        connection: Connection,
    ) -> ApiGatewayProxyResponse {
        let event = match Event::from_request(request) {
            Ok(event) => event,
            Err(error) => return refuse(error),
        };
        let item = self.item(&connection);
        // Stored before the handler runs: a connection API Gateway accepts is
        // always in the registry.
        if let Err(error) = self.registry.store(&item).await {
            return refuse(error);
        }
        let invocation = Invocation {
            event,
            connection,
            publish: None,
        };
        let id = invocation.connection.id().to_owned();
        match self.call(invocation).await {
            Ok(()) => ok(),
            Err(error) => {
                if let Err(release) = self.registry.release(&id).await {
                    tracing::error!(error = %release, "could not remove the refused connection; its TTL will reap it");
                }
                refuse(error)
            }
        }
    }

    async fn disconnect(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
        connection: Connection,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        let id = connection.id().to_owned();
        let event = Event::from_request(request)?;
        let invocation = Invocation {
            event,
            connection,
            publish: None,
        };
        let (handled, released) = tokio::join!(self.call(invocation), self.registry.release(&id));
        match (handled, released) {
            (Ok(()), Ok(())) => Ok(ok()),
            (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
            (Err(error), Err(release)) => {
                tracing::error!(error = %release, "releasing the connection failed too");
                Err(error)
            }
        }
    }

    async fn message(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
        connection: Connection,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        let event = Event::from_request(request)?;
        let publish = Publish::new(connection.id(), self.target(&connection));
        let invocation = Invocation {
            event,
            connection,
            publish: Some(publish),
        };
        self.call(invocation).await?;
        Ok(ok())
    }

    async fn call(&self, invocation: Invocation) -> Result<(), Error> {
        self.handler
            .call(invocation)
            .await
            .map_err(|e| Error::from_user("the handler", e))
    }

    /// Where posts for `connection` go.
    pub(crate) fn target(&self, connection: &Connection) -> Target {
        let endpoint = management_endpoint(
            connection,
            self.endpoint_override.as_deref(),
            self.clients.region(),
        );
        Target {
            client: self.clients.client(&endpoint),
            endpoint: endpoint.into(),
            registry: self.registry.clone(),
        }
    }

    fn item(&self, connection: &Connection) -> Item {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Item {
            connection_id: connection.id().to_owned(),
            domain_name: connection.domain_name().to_owned(),
            stage: connection.stage().to_owned(),
            fields: self.config.sync.clone(),
            connected_at: if connection.connected_at() > 0 {
                connection.connected_at()
            } else {
                now.as_millis() as i64
            },
            ttl: (now + self.config.ttl).as_secs() as i64,
        }
    }
}

fn ok() -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response
}

/// A `$connect` answer that refuses the handshake; the error is logged.
fn refuse(error: Error) -> ApiGatewayProxyResponse {
    let status = error.status();
    if status >= 500 {
        tracing::error!(%error, "connection refused");
    } else {
        tracing::info!(%error, "connection refused");
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = Some(ResponseBody::Text(error.to_string()));
    response
}
