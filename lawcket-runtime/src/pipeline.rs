//! The one path from an API Gateway WebSocket event to its response, shared by
//! the Lambda entry and the local gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body as ResponseBody;
use tracing::Instrument;

use crate::clients::Clients;
use crate::config::Config;
use crate::endpoint::management_endpoint;
use crate::invocation::{Handler, HandlerFuture, Invocation};
use crate::publisher::Publisher;
use crate::registration::{item, Registration};
use crate::registry::Registry;
use crate::BoxError;
use crate::{Connection, Error, Event, Kind, Publish};

/// Runs events through the user's handler, keeping the registry in step.
///
/// Built once per process; [`Pipeline::run`] serves one event.
pub struct Pipeline {
    config: Arc<Config>,
    registry: Registry,
    clients: Clients,
    publishers: Mutex<HashMap<(String, String), Publisher>>,
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
            config: Arc::new(config),
            registry,
            clients: Clients::new(sdk),
            publishers: Mutex::default(),
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
                Kind::Connect => Ok(self
                    .connect(request, connection)
                    .await
                    .map_or_else(refuse, |()| ok())),
                Kind::Close => self.disconnect(request, connection).await.map(|()| ok()),
                Kind::Message => self.message(request, connection).await.map(|()| ok()),
            }
        }
        .instrument(span)
        .await
    }

    /// Middleware, then the store (which must succeed: a connection API Gateway
    /// accepts is always in the registry), then the handler; if the handler
    /// fails the item is removed again.
    async fn connect(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
        connection: Connection,
    ) -> Result<(), Error> {
        let event = Event::from_request(request)?;
        let event = self.middleware(event, &connection).await?;
        if self.config.auto_sync {
            let item = item(&self.config, &connection, &event)?;
            self.registry.store(&item).await?;
        }
        let id = connection.id().to_owned();
        let invocation = self.invocation(event, connection, None);
        let registration = invocation.registration.clone();
        let result = self.call(invocation).await;
        if let Err(error) = &result {
            if self.config.auto_sync || registration.is_registered() {
                if let Err(release) = self.registry.release(&id).await {
                    tracing::error!(error = %release, "could not remove the refused connection; its TTL will reap it");
                }
            }
            tracing::debug!(%error, "handler refused the connection");
        }
        result
    }

    /// The release runs alongside middleware and handler, and happens whatever
    /// they (or a malformed body) do: the connection is gone either way.
    async fn disconnect(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
        connection: Connection,
    ) -> Result<(), Error> {
        let id = connection.id().to_owned();
        let handle = async {
            let event = Event::from_request(request)?;
            let event = self.middleware(event, &connection).await?;
            self.call(self.invocation(event, connection.clone(), None))
                .await
        };
        let release = async {
            match self.config.auto_sync {
                true => self.registry.release(&id).await,
                false => Ok(()),
            }
        };
        match tokio::join!(handle, release) {
            (Ok(()), Ok(())) => Ok(()),
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
    ) -> Result<(), Error> {
        let event = Event::from_request(request)?;
        let event = self.middleware(event, &connection).await?;
        let publish = Publish::new(connection.id(), self.publisher(&connection));
        self.call(self.invocation(event, connection, Some(publish)))
            .await
    }

    /// Each middleware in order; the first error stops everything.
    async fn middleware(&self, mut event: Event, connection: &Connection) -> Result<Event, Error> {
        for (name, middleware) in &self.config.middleware {
            event = middleware
                .call(event, connection.clone())
                .await
                .map_err(|e| Error::from_user(&format!("middleware `{name}`"), e))?;
        }
        Ok(event)
    }

    /// The handler and every plugin, concurrently; all are awaited and any
    /// failure fails the invocation (the handler's first).
    async fn call(&self, invocation: Invocation) -> Result<(), Error> {
        let plugins: Vec<_> = self
            .config
            .plugins
            .iter()
            .map(|(name, plugin)| {
                let invocation = invocation.clone();
                async move {
                    guarded(|| plugin.call(invocation)).await.map_err(|e| {
                        let error = Error::from_user(&format!("plugin `{name}`"), e);
                        tracing::error!(plugin = %name, %error, "plugin failed");
                        error
                    })
                }
            })
            .collect();
        let (handled, plugged) = tokio::join!(
            guarded(|| self.handler.call(invocation)),
            futures_util::future::join_all(plugins)
        );
        handled.map_err(|e| Error::from_user("the handler", e))?;
        plugged.into_iter().collect()
    }

    fn invocation(
        &self,
        event: Event,
        connection: Connection,
        publish: Option<Publish>,
    ) -> Invocation {
        let registration = Registration::new(
            connection.clone(),
            event.clone(),
            self.registry.clone(),
            Arc::clone(&self.config),
        );
        Invocation {
            event,
            connection,
            publish,
            registration,
        }
    }

    /// A publisher for `connection`'s API stage.
    pub(crate) fn publisher(&self, connection: &Connection) -> Publisher {
        let endpoint = management_endpoint(
            connection,
            self.endpoint_override.as_deref(),
            self.clients.region(),
        );
        // Built once per endpoint and stage (one of each on Lambda), not per message.
        let key = (endpoint, connection.stage().to_owned());
        let mut publishers = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(publisher) = publishers.get(&key) {
            return publisher.clone();
        }
        let publisher = Publisher::from_parts(
            self.clients.client(&key.0),
            key.0.clone(),
            self.registry.clone(),
            Some(key.1.clone()),
            self.config.concurrency,
        );
        publishers.insert(key, publisher.clone());
        publisher
    }
}

/// Runs user code, turning a panic into an error so the pipeline still cleans
/// up (a stored `$connect` item is removed, a `$disconnect` still releases).
async fn guarded(call: impl FnOnce() -> HandlerFuture) -> Result<(), BoxError> {
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".into());
        Err(format!("panicked: {message}").into())
    })
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::registry::Memory;
    use crate::{Body, BoxError};

    const ID: &str = "0PYxyh3bqNs7z8s=";

    fn fixture(name: &str) -> ApiGatewayWebsocketProxyRequest {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/");
        let text = std::fs::read_to_string(format!("{path}{name}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn sdk() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }

    /// A pipeline on a memory registry whose handler records what it was given
    /// and answers with `answer`.
    fn pipeline(
        answer: fn(&Invocation) -> Result<(), BoxError>,
    ) -> (Pipeline, Arc<Memory>, Arc<Mutex<Vec<Invocation>>>) {
        let memory = Arc::new(Memory::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let config = Config::new("connections").sync_field("channel", "#general");
        let handler = move |invocation: Invocation| {
            let result = answer(&invocation);
            record.lock().unwrap().push(invocation);
            async move { result }
        };
        let pipeline = Pipeline::new(
            config,
            Registry::Memory(Arc::clone(&memory)),
            sdk(),
            None,
            handler,
        );
        (pipeline, memory, seen)
    }

    #[tokio::test]
    async fn connect_stores_then_runs_the_handler() {
        let (pipeline, memory, seen) = pipeline(|_| Ok(()));
        let response = pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(response.status_code, 200);

        let item = memory.get(ID).expect("stored");
        assert_eq!(item.stage, "prod");
        assert_eq!(
            item.domain_name,
            "abc123defg.execute-api.us-east-1.amazonaws.com"
        );
        assert_eq!(
            item.fields,
            vec![("channel".to_owned(), crate::SyncValue::from("#general"))]
        );
        assert_eq!(item.connected_at, 1795606853439);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((item.ttl - now - crate::DEFAULT_TTL.as_secs() as i64).abs() <= 2);

        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].connection.kind(), Kind::Connect);
        assert!(seen[0].publish.is_none(), "no publish on $connect");
        assert_eq!(seen[0].event.query("channel"), Some("#general"));
    }

    #[tokio::test]
    async fn failing_connect_handler_removes_the_item_and_refuses() {
        let (pipeline, memory, _) = pipeline(|_| Err("boom".into()));
        let response = pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(response.status_code, 500);
        assert!(memory.is_empty(), "refused connection must not stay stored");
        let Some(ResponseBody::Text(body)) = response.body else {
            panic!()
        };
        assert_eq!(body, "the handler failed: boom");
    }

    #[tokio::test]
    async fn rejection_refuses_with_its_status() {
        let (pipeline, memory, _) = pipeline(|_| Err(Error::reject(401, "no token").into()));
        let response = pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(response.status_code, 401);
        assert!(memory.is_empty());
    }

    #[tokio::test]
    async fn message_gets_a_publisher_for_the_sender() {
        let (pipeline, _, seen) = pipeline(|_| Ok(()));
        let response = pipeline.run(fixture("message-json.json")).await.unwrap();
        assert_eq!(response.status_code, 200);
        let seen = seen.lock().unwrap();
        let invocation = &seen[0];
        assert_eq!(invocation.connection.kind(), Kind::Message);
        assert_eq!(invocation.connection.route_key(), "$default");
        let publish = invocation.publish.as_ref().expect("publish on MESSAGE");
        assert_eq!(publish.sender(), ID);
        assert_eq!(
            publish.endpoint(),
            "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"
        );
        assert_eq!(
            invocation.event.body(),
            &Body::Json(serde_json::json!({"action": "sendmessage", "data": "hi"}))
        );
        #[derive(serde::Deserialize)]
        struct Message {
            data: String,
        }
        assert_eq!(invocation.event.json::<Message>().unwrap().data, "hi");
        let err = invocation.event.json::<Vec<u8>>().unwrap_err();
        assert!(err.to_string().contains("alloc::vec::Vec<u8>"), "{err}");
    }

    #[tokio::test]
    async fn binary_message_is_decoded() {
        let (pipeline, _, seen) = pipeline(|_| Ok(()));
        pipeline.run(fixture("message-binary.json")).await.unwrap();
        let body = seen.lock().unwrap()[0].event.body().clone();
        assert_eq!(body, Body::Binary((0u8..=255).collect()));
    }

    #[tokio::test]
    async fn message_handler_error_is_the_invocation_error() {
        let (pipeline, _, _) = pipeline(|_| Err("bad".into()));
        let err = pipeline
            .run(fixture("message-json.json"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Handler { .. }), "{err}");
    }

    #[tokio::test]
    async fn disconnect_releases_even_when_the_handler_fails() {
        let (pipeline, memory, _) = pipeline(|i| match i.connection.kind() {
            Kind::Close => Err("handler failed on close".into()),
            _ => Ok(()),
        });
        pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(memory.len(), 1);
        let err = pipeline.run(fixture("disconnect.json")).await.unwrap_err();
        assert!(err.to_string().contains("handler failed on close"));
        assert!(memory.is_empty(), "released although the handler failed");
    }

    #[tokio::test]
    async fn malformed_events_are_typed_errors() {
        let (pipeline, _, seen) = pipeline(|_| Ok(()));
        let err = pipeline
            .run_json(serde_json::json!({"a": 1}))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::MalformedEvent(_)), "{err}");

        let mut no_id = fixture("message-json.json");
        no_id.request_context.connection_id = None;
        let err = pipeline.run(no_id).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("requestContext.connectionId is missing"),
            "{err}"
        );

        let mut odd = fixture("message-json.json");
        odd.request_context.event_type = Some("PING".into());
        let err = pipeline.run(odd).await.unwrap_err();
        assert!(err.to_string().contains("\"PING\""), "{err}");

        let mut bad = fixture("message-binary.json");
        bad.body = Some("***".into());
        let err = pipeline.run(bad).await.unwrap_err();
        assert!(matches!(err, Error::Base64(_)), "{err}");
        assert!(
            seen.lock().unwrap().is_empty(),
            "the handler never saw a bad event"
        );
    }

    #[tokio::test]
    async fn custom_domains_post_through_the_execute_api_endpoint() {
        let (pipeline, _, seen) = pipeline(|_| Ok(()));
        let mut request = fixture("message-json.json");
        request.request_context.domain_name = Some("ws.example.com".into());
        pipeline.run(request).await.unwrap();
        let publish = seen.lock().unwrap()[0].publish.clone().unwrap();
        assert_eq!(
            publish.endpoint(),
            "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"
        );
    }

    #[tokio::test]
    async fn the_item_is_stored_before_the_handler_runs() {
        let memory = Arc::new(Memory::new());
        let seen = Arc::clone(&memory);
        let handler = move |_: Invocation| {
            let stored = seen.get(ID).is_some();
            async move {
                assert!(stored, "the handler ran before the connection was stored");
                Ok::<(), BoxError>(())
            }
        };
        let registry = Registry::Memory(Arc::clone(&memory));
        let pipeline = Pipeline::new(Config::new("t"), registry, sdk(), None, handler);
        let response = pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(response.status_code, 200);
    }

    #[tokio::test]
    async fn a_panicking_connect_handler_is_refused_and_leaves_nothing_stored() {
        let (pipeline, memory, _) = pipeline(|_| panic!("boom in the handler"));
        let response = pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(response.status_code, 500);
        assert!(memory.is_empty());
        let Some(ResponseBody::Text(body)) = response.body else {
            panic!()
        };
        assert!(body.contains("panicked: boom in the handler"), "{body}");
    }

    #[tokio::test]
    async fn a_rejection_with_a_success_status_still_refuses() {
        let (pipeline, memory, _) = pipeline(|_| Err(Error::reject(200, "oops").into()));
        let response = pipeline.run(fixture("connect.json")).await.unwrap();
        assert_eq!(response.status_code, 500);
        assert!(memory.is_empty());
    }
}
