// lambda_runtime's service stack is a deep future type; computing its layout needs
// more than the default depth. It stays inside this crate (see `entry`).
#![recursion_limit = "256"]
//! The runtime behind `#[lawcket::handler]`. Use it through the `lawcket` crate;
//! this crate's API is re-exported there.

#![warn(missing_docs)]

mod clients;
mod config;
mod connection;
mod endpoint;
mod entry;
mod error;
mod event;
mod invocation;
mod lambda;
#[cfg(feature = "local")]
pub mod local;
mod pipeline;
mod publish;
mod publisher;
mod registration;
pub mod registry;
mod report;
mod sync;

pub use config::{
    table_from_env, Config, IntoTable, SyncValue, Table, DEFAULT_TTL, RESERVED_ATTRIBUTES,
};
pub use connection::{Connection, Kind};
pub use endpoint::{management_endpoint, ENDPOINT_ENV};
pub use entry::main;
pub use error::{BoxError, Error};
pub use event::{Body, Event, MAX_MESSAGE_BYTES};
pub use invocation::{
    FromInvocation, Handler, HandlerFuture, HandlerOutput, IntoMiddleware, IntoPlugin, Invocation,
    Middleware, MiddlewareFuture, MiddlewareOutput,
};
pub use pipeline::Pipeline;
pub use publish::Publish;
pub use publisher::{Broadcast, Publisher, PublisherBuilder, DEFAULT_CONCURRENCY};
pub use registration::Registration;
pub use report::{Failure, Report};
pub use sync::{Dynamic, DEFAULT_CHARS, DEFAULT_MAX_LEN};
