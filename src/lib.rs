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
//! invocations through `lambda_runtime`; anywhere else it runs a local gateway.
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
/// | `sync(key = literal, ...)` | fields stored with every connection: string, integer (`i64`) or bool literals. Keys may not be ones lawcket writes itself ([`RESERVED_ATTRIBUTES`]). |
/// | `ttl = <seconds>` | lifetime of a stored connection (DynamoDB TTL attribute `ttl`); default [`DEFAULT_TTL`] (2 h 10 min, as API Gateway closes connections at 2 h). |
/// | `crate = "path"` | where to find `lawcket` if it is renamed or re-exported. |
///
/// # The fn
///
/// An `async fn`, not generic, not a method, not named `main`. It takes any of
/// [`Event`], [`Connection`], `Option<`[`Publish`]`>` and [`Kind`], in any order,
/// and returns `()` or `Result<(), E>` where `E` is [`Error`] or any error that
/// converts into `Box<dyn std::error::Error + Send + Sync>`.
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
/// - `$connect`: the connection is stored (`connectionId`, `domainName`,
///   `stage`, the sync fields, `connectedAt`, `ttl`) and then the fn runs. If
///   the store fails, the connection is refused with 500; if the fn fails or
///   returns [`Error::reject`], the item is removed and the connection refused
///   with that status.
/// - `$disconnect`: the fn runs while the item is deleted.
/// - messages: the fn runs with `Some(publish)`.
///
/// Each mistake in the attribute is a compile error pointing at it.
pub use lawcket_macros::handler;

pub use lawcket_runtime::{
    table_from_env, Body, Broadcast, Connection, Dynamic, Error, Event, Failure, Kind, Publish,
    Publisher, PublisherBuilder, Registration, Report, SyncValue, Table, DEFAULT_CHARS,
    DEFAULT_CONCURRENCY, DEFAULT_MAX_LEN, DEFAULT_TTL, ENDPOINT_ENV, MAX_MESSAGE_BYTES,
    RESERVED_ATTRIBUTES,
};

/// Used by the code `#[lawcket::handler]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use lawcket_runtime::{
        main, Config, Dynamic, FromInvocation, HandlerOutput, IntoMiddleware, IntoPlugin,
        IntoTable, Invocation, SyncValue,
    };
}
