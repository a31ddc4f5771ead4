//! # lawcket
//!
//! One attribute turns an `async fn` into a complete AWS Lambda handler for an
//! API Gateway WebSocket API. Every `$connect` is stored in a DynamoDB table,
//! every `$disconnect` (and every post that finds a connection gone) releases it,
//! and the fn gets the [`Event`], its [`Connection`] and, on messages, a
//! [`Publish`] capability.
//!
//! ```no_run
//! use lawcket::{Connection, Event, Publish};
//!
//! #[lawcket::handler(table = "connections", sync(channel = "#general"))]
//! async fn handler(event: Event, connection: Connection, publish: Option<Publish>) -> Result<(), lawcket::Error> {
//!     if let Some(publish) = publish {
//!         publish.send(&serde_json::json!({ "echo": event.body() , "from": connection.id() })).await?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! On Lambda (where `AWS_LAMBDA_RUNTIME_API` is set) the binary serves
//! invocations through `lambda_runtime`; anywhere else, when built with the
//! `local` feature, it runs a local gateway. With the `fanout` feature a
//! broadcast too large for one invocation can be dispatched to SQS and
//! posted by workers that are the same binary.
//! See the README for the table definition, IAM permissions and configuration.

#![warn(missing_docs)]

/// Turns an `async fn` into the binary's `main`: a Lambda handler for an API
/// Gateway WebSocket API whose connections are kept in DynamoDB.
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `table = <expr>` | **required**: the DynamoDB table. A string literal, `env!("VAR")` (read when building; an unset variable is a compile error), or [`table_from_env("VAR")`](table_from_env) (read when the process starts). |
/// | `sync(key = value, ...)` | fields stored with every connection. A value is a string, integer (`i64`) or bool literal, or taken from the `$connect` request: `query("param", default = "..", max_len = N, chars = "a-z0-9")`, `header("name", ...)` or `authorizer("principalId" or a context key, ...)` (see [`Dynamic`]). Keys may not be ones lawcket writes itself ([`RESERVED_ATTRIBUTES`]). |
/// | `index(key = "index-name")` | a global secondary index on the sync field `key`, so [`Publish::matching`] Queries instead of scanning. |
/// | `ttl = <seconds>` | lifetime of a stored connection (DynamoDB TTL attribute `ttl`); default [`DEFAULT_TTL`] (2 h 10 min, as API Gateway closes connections at 2 h). |
/// | `manual_sync` | no automatic store/release; the handler uses [`Registration`]. |
/// | `middleware = [f, ...]` | `async fn(Event, Connection) -> Result<Event, E>`, run in order before the handler. |
/// | `plugins = [f, ...]` | async fns taking handler parameters, run concurrently with the handler. |
/// | `concurrency = N` | posts in flight during a mass publish (default [`DEFAULT_CONCURRENCY`]). |
/// | `subprotocols = ["name", ...]` | the WebSocket subprotocols the fn speaks: `$connect` answers with the first one the client offered (`Sec-WebSocket-Protocol`) and refuses (400) a client that offered only others. |
/// | `authorizer = f` | a REQUEST authorizer, `async fn(`[`AuthorizerRequest`]`) -> Result<`[`Identity`]`, E>`: the same binary answers API Gateway's authorizer invocation, and the local gateway runs it before `$connect`. Its identity reaches every later event ([`Identity`] parameter, `sync(user = authorizer("principalId"))`). |
/// | `local(page = "file.html")` | the page the local gateway serves at `/`. |
/// | `crate = "path"` | where to find `lawcket` if it is renamed or re-exported. |
///
/// ```no_run
/// use lawcket::{Connection, Event};
///
/// async fn auth(event: Event, _connection: Connection) -> Result<Event, lawcket::Error> {
///     match event.query("token") {
///         Some("let-me-in") => Ok(event),
///         _ => Err(lawcket::Error::reject(401, "a token is required")),
///     }
/// }
///
/// async fn audit(connection: Connection) {
///     println!("{:?} {}", connection.kind(), connection.id());
/// }
///
/// #[lawcket::handler(
///     table = lawcket::table_from_env("CONNECTIONS_TABLE"),
///     sync(channel = query("channel", default = "#general"), team = header("x-team")),
///     index(channel = "channel-index"),
///     middleware = [auth],
///     plugins = [audit],
/// )]
/// async fn handler(event: Event, publish: Option<lawcket::Publish>) -> Result<(), lawcket::Error> {
///     if let Some(publish) = publish {
///         publish.matching("channel", "#general").send(&event.text()).await?;
///     }
///     Ok(())
/// }
/// ```
///
/// # The fn
///
/// An `async fn`, not generic, not a method, not named `main`. It takes any of
/// [`Event`], [`Connection`], `Option<`[`Publish`]`>`, [`Kind`],
/// [`Registration`] and (with an authorizer) [`Identity`], in any order,
/// and returns a reply or `Result` of one, with an error that is [`Error`] or
/// any error that converts into `Box<dyn std::error::Error + Send + Sync>`.
/// Taking [`Identity`] without `authorizer = ..` is a compile error, under
/// any name the type is imported as.
/// A reply is `()` (none), [`Reply`], `String`, `serde_json::Value`, ...
/// ([`IntoReply`]): for a message, API Gateway sends it back to the sender
/// when the route has a route response (deploy/ gives `$default` one); for
/// `$connect` its headers go into the handshake ([`Reply::protocol`]).
///
/// ```no_run
/// #[lawcket::handler(table = env!("CONNECTIONS_TABLE"), ttl = 7800)]
/// async fn handler(connection: lawcket::Connection) {
///     println!("{:?} on {}", connection.kind(), connection.id());
/// }
/// ```
///
/// # What happens per event
///
/// - the authorizer's invocation (with `authorizer = f`): `f` decides; the
///   answer is API Gateway's IAM policy and context, or `Unauthorized`.
/// - `$connect`: the subprotocol is chosen (a client offering only others is
///   refused with 400), the connection is stored (`connectionId`,
///   `domainName`, `stage`, the sync fields, `connectedAt`, `ttl`) and then
///   the fn runs; its reply's headers go into the handshake. If the store
///   fails, the connection is refused with 500; if the fn fails or returns
///   [`Error::reject`], the item is marked refused (its TTL reaps it) and the
///   connection refused with that status.
/// - `$disconnect`: the fn runs while the item is deleted.
/// - messages: the fn runs with `Some(publish)`; its reply is the response body.
///
/// Each mistake in the attribute is a compile error pointing at it.
pub use lawcket_macros::handler;

pub use lawcket_runtime::{
    table_from_env, AuthorizerRequest, Body, Broadcast, Connection, Dynamic, Error, Event, Failure,
    Identity, IntoReply, Kind, Publish, Publisher, PublisherBuilder, Registration, Reply, Report,
    SyncValue, Table, DEFAULT_CHARS, DEFAULT_CONCURRENCY, DEFAULT_MAX_LEN, DEFAULT_TTL,
    ENDPOINT_ENV, MAX_MESSAGE_BYTES, RESERVED_ATTRIBUTES,
};

/// Fan-out (feature `fanout`): [`Broadcast::dispatch`] hands a broadcast to an
/// SQS queue in batches, which workers (the same binary) post, paced to a
/// shared budget; [`Publisher::report`] reads what they did. See the README's
/// "Fan-out" and docs/fanout.md.
#[cfg(feature = "fanout")]
pub use lawcket_runtime::{
    BroadcastReport, Dispatch, Dispatched, DEFAULT_FANOUT_RATE, DEFAULT_FANOUT_WORKERS,
};

/// Used by the code `#[lawcket::handler]` generates. Not a stable API.
///
/// Named after the release (as serde's and thiserror's are): the macro names
/// `__private_<its own version>`, so generated code compiles only against the
/// facade it was released with. Every trait a compile error can name is here,
/// so errors show `lawcket::` paths only.
#[doc(hidden)]
pub mod __private_0_1_0 {
    pub use lawcket_runtime::{
        main, Config, Dynamic, FromInvocation, HandlerOutput, IntoAuthorizer, IntoMiddleware,
        IntoPlugin, IntoReply, IntoTable, Invocation, MiddlewareOutput, SyncValue,
    };
}
