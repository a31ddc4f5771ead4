//! The one path from an API Gateway WebSocket event to its response, shared by
//! the Lambda entry and the local gateway.
//!
//! This file holds the three lifecycles (`$connect`, `$disconnect`, messages)
//! and the prepare step they share (decode the body, run the middleware).
//! `user_code` runs what the user wrote (middleware, handler, plugins) behind a
//! panic guard, `response` shapes the answers, `publishers` keeps one publisher
//! per API stage.

mod publishers;
mod response;
mod user_code;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderMap;
use tracing::Instrument;

use crate::authorizer::{Authorizer, AuthorizerRequest, Identity, Verdict};
use crate::config::Config;
use crate::connection::{disconnected_id, Connection, Kind};
use crate::error::{chain, Error};
use crate::event::Event;
use crate::host::Host;
use crate::invocation::{Handler, Invocation, Middleware};
use crate::limits::MAX_MESSAGE_BYTES;
use crate::publish::Publish;
use crate::registration::{item, store, Registration};
use crate::registry::Registry;
use crate::reply::{Reply, SEC_WEBSOCKET_PROTOCOL};
use crate::subprotocol;
use crate::sync::Schema;
use publishers::Publishers;

/// Runs events through the user's handler, keeping the registry in step.
///
/// Built once per process; [`Pipeline::run`] serves one event.
pub struct Pipeline {
    schema: Arc<Schema>,
    auto_sync: bool,
    middleware: Vec<(String, Box<dyn Middleware>)>,
    plugins: Vec<(String, Box<dyn Handler>)>,
    handler: Box<dyn Handler>,
    subprotocols: Vec<String>,
    authorizer: Option<Box<dyn Authorizer>>,
    registry: Registry,
    publishers: Publishers,
    /// The fan-out's worker (and dispatcher, through the publishers).
    #[cfg(feature = "fanout")]
    fanout: Arc<crate::fanout::Fanout>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("schema", &self.schema)
            .field("auto_sync", &self.auto_sync)
            .field("subprotocols", &self.subprotocols)
            .field("authorizer", &self.authorizer.is_some())
            .field("registry", &self.registry)
            .field("publishers", &self.publishers)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline for `config` on `host`'s registry. `endpoint_override`, when
    /// set, is the management endpoint for every post. Refuses a configuration
    /// the attribute would have refused.
    pub(crate) fn assemble(
        config: Config,
        host: Host,
        endpoint_override: Option<String>,
        handler: Box<dyn Handler>,
    ) -> Result<Self, Error> {
        config.validate()?;
        #[cfg(feature = "fanout")]
        let fanout = Arc::new(host.fanout()?);
        let publishers = Publishers::new(
            host.sdk,
            host.registry.clone(),
            endpoint_override,
            config.concurrency,
            host.timeouts.post,
            #[cfg(feature = "fanout")]
            Arc::clone(&fanout),
        );
        Ok(Pipeline {
            schema: Arc::new(config.schema),
            auto_sync: config.auto_sync,
            middleware: config.middleware,
            plugins: config.plugins,
            handler,
            subprotocols: config.subprotocols,
            authorizer: config.authorizer,
            registry: host.registry,
            publishers,
            #[cfg(feature = "fanout")]
            fanout,
        })
    }

    /// A pipeline on `registry` whose posts go through clients built from
    /// `sdk` (lawcket's own tests); panics on a configuration it refuses.
    #[cfg(feature = "test-util")]
    pub fn new(
        config: Config,
        registry: Registry,
        sdk: aws_config::SdkConfig,
        endpoint_override: Option<String>,
        handler: impl Handler,
    ) -> Self {
        Self::try_new(config, registry, sdk, endpoint_override, handler)
            .expect("a valid configuration")
    }

    /// [`Pipeline::new`], answering the refusal of a bad configuration.
    #[cfg(feature = "test-util")]
    pub fn try_new(
        config: Config,
        registry: Registry,
        sdk: aws_config::SdkConfig,
        endpoint_override: Option<String>,
        handler: impl Handler,
    ) -> Result<Self, Error> {
        let host = Host {
            sdk,
            registry,
            timeouts: crate::host::Timeouts::from_env()?,
        };
        Self::assemble(config, host, endpoint_override, Box::new(handler))
    }

    /// The registry connections are kept in.
    #[cfg(feature = "test-util")]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves one event.
    ///
    /// `$connect` always answers with a response: 200 when accepted (with
    /// the subprotocol, if any), the refusal's status otherwise (so API
    /// Gateway refuses the handshake with it). Messages answer 200 with the
    /// handler's reply as the body, or an error; `$disconnect` 200 or an error.
    pub async fn run(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        let connection = match Connection::from_request(&request) {
            Ok(connection) => connection,
            Err(error) => {
                if let (Some(id), true) = (disconnected_id(&request), self.auto_sync) {
                    if let Err(release) = self.registry.release(id).await {
                        tracing::error!(error = %chain(&release), "releasing the connection failed");
                    }
                }
                return Err(error);
            }
        };
        let span = tracing::info_span!(
            "lawcket",
            kind = ?connection.kind(),
            connection_id = connection.id(),
            route = connection.route_key(),
            request_id = request.request_context.request_id.as_deref().unwrap_or(""),
        );
        async move {
            match connection.kind() {
                Kind::Connect => {
                    let accepted = match self.prepare(request, &connection).await {
                        Ok(event) => self.connect(event, connection).await,
                        Err(error) => Err(error),
                    };
                    Ok(accepted.map_or_else(response::refuse, response::accept))
                }
                Kind::Message => {
                    let event = self.prepare(request, &connection).await?;
                    self.message(event, connection).await.map(response::reply)
                }
                // The release must happen even when preparing fails.
                Kind::Close => self
                    .disconnect(request, connection)
                    .await
                    .map(|()| response::ok()),
            }
        }
        .instrument(span)
        .await
    }

    /// Works the fan-out batches of one SQS invocation (feature `fanout`),
    /// answering the batch item failures.
    #[cfg(feature = "fanout")]
    pub(crate) async fn work(
        &self,
        records: Vec<crate::fanout::Record>,
        deadline: Option<tokio::time::Instant>,
    ) -> serde_json::Value {
        self.fanout.work(&self.registry, records, deadline).await
    }

    /// Without a fan-out queue, works dispatched batches in this process
    /// (the local gateway: see `Fanout::work_in_process`).
    #[cfg(all(feature = "fanout", feature = "local"))]
    pub(crate) fn work_fanout_in_process(&self) {
        self.fanout.work_in_process(self.registry.clone());
    }

    /// Answers a REQUEST authorizer invocation with the user's authorizer.
    pub(crate) async fn authorize(&self, request: AuthorizerRequest) -> Result<Verdict, Error> {
        let Some(authorizer) = &self.authorizer else {
            return Err(Error::Config(
                "a REQUEST authorizer invocation came, and this handler has no `authorizer = ..`"
                    .into(),
            ));
        };
        let verdict =
            Verdict::from_outcome(user_code::authorize(authorizer.as_ref(), request).await);
        match &verdict {
            Ok(Verdict::Allow(identity)) => {
                tracing::debug!(principal_id = identity.principal_id(), "authorizer allowed")
            }
            Ok(Verdict::Deny(why) | Verdict::Unauthorized(why)) => {
                tracing::info!(reason = %why, "authorizer refused")
            }
            Err(error) => tracing::error!(error = %chain(error), "authorizer failed"),
        }
        verdict
    }

    /// Whether the local gateway must run the authorizer before `$connect`.
    #[cfg(feature = "local")]
    pub(crate) fn has_authorizer(&self) -> bool {
        self.authorizer.is_some()
    }

    /// The step every lifecycle starts with: decode the body, then run the
    /// middleware in order (any of them may change the event or stop it).
    async fn prepare(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
        connection: &Connection,
    ) -> Result<Event, Error> {
        if self.authorizer.is_some() && !Identity::is_in(&request) {
            // API Gateway adds it to every event of a connection its
            // authorizer allowed: the $connect route does not use it.
            // The deployment's mistake, not the client's: 500.
            return Err(Error::Config(
                "no `requestContext.authorizer.principalId`, and the handler has an authorizer: \
                 the `$connect` route must use it (AuthorizationType CUSTOM; see deploy/)"
                    .into(),
            ));
        }
        let event = Event::from_request(request)?;
        user_code::middleware(&self.middleware, event, connection).await
    }

    /// After middleware: the subprotocol (a client offering none of ours is
    /// refused before anything is stored), the store (which must succeed: a
    /// connection API Gateway accepts is always in the registry), then the
    /// handler; if the handler fails (or its reply's headers are invalid)
    /// the item is marked refused.
    /// Answers the headers of the accepted handshake (a reply's body is
    /// dropped: the client never sees one).
    async fn connect(&self, event: Event, connection: Connection) -> Result<HeaderMap, Error> {
        // multiValueHeaders keeps every line of a repeated header.
        let request = event.request();
        let headers = match request.multi_value_headers.is_empty() {
            true => &request.headers,
            false => &request.multi_value_headers,
        };
        let protocol = subprotocol::choose(&self.subprotocols, headers)?.map(str::to_owned);
        if self.auto_sync {
            let item = item(&self.schema, &connection, &event)?;
            store(&self.registry, &item).await?;
        }
        let id = connection.id().to_owned();
        let invocation = self.invocation(event, connection, None);
        let registration = invocation.registration.clone();
        // The handler's own choice of subprotocol wins. A header HTTP refuses
        // fails the connection here, where it is undone like any failure.
        let mut result = self.call(invocation).await.and_then(|reply| {
            let reply = match protocol {
                Some(protocol) if !reply.sets(SEC_WEBSOCKET_PROTOCOL) => reply.protocol(protocol),
                _ => reply,
            };
            reply.http_headers()
        });
        if result.is_ok() && registration.register_failed() {
            // The handler went on after `register()` failed: accepting would
            // leave a live connection untracked.
            result = Err(Error::reject(
                500,
                "Registration::register() failed and the handler accepted the connection anyway",
            ));
        }
        if let Err(error) = &result {
            if self.auto_sync || registration.is_registered() {
                // A marker rather than a delete: a stalled attempt of the store
                // (the SDK retries attempts that time out) may still land.
                let ttl = (crate::clock::now() + self.schema.ttl).as_secs() as i64;
                if let Err(refuse) = self.registry.refuse(&id, ttl).await {
                    tracing::error!(error = %chain(&refuse), "could not mark the refused connection; its TTL will reap it");
                }
            }
            tracing::debug!(error = %chain(error), "handler refused the connection");
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
            let event = self.prepare(request, &connection).await?;
            // No one is left to read a reply.
            self.call(self.invocation(event, connection.clone(), None))
                .await
                .map(drop)
        };
        let release = async {
            match self.auto_sync {
                true => self.registry.release(&id).await,
                false => Ok(()),
            }
        };
        match tokio::join!(handle, release) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
            (Err(error), Err(release)) => {
                tracing::error!(error = %chain(&release), "releasing the connection failed too");
                Err(error)
            }
        }
    }

    /// After middleware: the handler, with a publisher for the sender's
    /// stage. A reply over API Gateway's message size fails, as a post would.
    async fn message(&self, event: Event, connection: Connection) -> Result<Reply, Error> {
        let publisher = self.publishers.for_connection(&connection)?;
        let publish = Publish::new(connection.id(), publisher);
        let reply = self
            .call(self.invocation(event, connection, Some(publish)))
            .await?;
        match reply.body().map(<[u8]>::len) {
            Some(size) if size > MAX_MESSAGE_BYTES => Err(Error::TooLarge {
                size,
                limit: MAX_MESSAGE_BYTES,
            }),
            _ => Ok(reply),
        }
    }

    async fn call(&self, invocation: Invocation) -> Result<Reply, Error> {
        user_code::handle(self.handler.as_ref(), &self.plugins, invocation).await
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
            Arc::clone(&self.schema),
        );
        Invocation {
            event,
            connection,
            publish,
            registration,
        }
    }
}
