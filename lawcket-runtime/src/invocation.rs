//! What the generated code hands the user's fn: [`Invocation`], resolved into
//! parameters through [`FromInvocation`], and the fn's result read back through
//! [`HandlerOutput`].

use std::future::Future;
use std::pin::Pin;

use crate::connection::{Connection, Kind};
use crate::error::BoxError;
use crate::event::Event;
use crate::publish::Publish;
use crate::registration::Registration;
use crate::reply::{IntoReply, Reply};

/// One event on its way to the handler.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub(crate) event: Event,
    pub(crate) connection: Connection,
    pub(crate) publish: Option<Publish>,
    pub(crate) registration: Registration,
}

impl Invocation {
    /// The event being served.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The connection the event belongs to.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The publisher (MESSAGE events only).
    pub fn publish(&self) -> Option<&Publish> {
        self.publish.as_ref()
    }

    /// The connection's registration in the table.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }
}

/// A type a handler can take as a parameter.
#[diagnostic::on_unimplemented(
    message = "a lawcket handler cannot take a parameter of type `{Self}`",
    label = "lawcket cannot provide this",
    note = "handler parameters may be, in any order and any subset: `lawcket::Event`, `lawcket::Connection`, `Option<lawcket::Publish>`, `lawcket::Kind`, `lawcket::Registration`, `lawcket::Identity` (with an authorizer), `Option<lawcket::Identity>`"
)]
pub trait FromInvocation: Sized {
    /// Whether only a handler with an authorizer can provide it
    /// ([`Identity`](crate::Identity)); `#[lawcket::handler]` refuses such a
    /// parameter without `authorizer = ..`, whatever the type is called.
    const NEEDS_AUTHORIZER: bool = false;

    /// Takes the value out of the invocation.
    fn from_invocation(invocation: &Invocation) -> Self;
}

impl FromInvocation for Event {
    fn from_invocation(invocation: &Invocation) -> Self {
        invocation.event.clone()
    }
}

impl FromInvocation for Connection {
    fn from_invocation(invocation: &Invocation) -> Self {
        invocation.connection.clone()
    }
}

impl FromInvocation for Option<Publish> {
    fn from_invocation(invocation: &Invocation) -> Self {
        invocation.publish.clone()
    }
}

impl FromInvocation for Kind {
    fn from_invocation(invocation: &Invocation) -> Self {
        invocation.connection.kind()
    }
}

impl FromInvocation for Invocation {
    fn from_invocation(invocation: &Invocation) -> Self {
        invocation.clone()
    }
}

impl FromInvocation for Registration {
    fn from_invocation(invocation: &Invocation) -> Self {
        invocation.registration.clone()
    }
}

/// What a handler may return: a reply ([`IntoReply`]: `()`, [`Reply`],
/// `String`, `serde_json::Value`, ...) or `Result` of one with any error that
/// converts into `Box<dyn Error + Send + Sync>` (`lawcket::Error`,
/// `anyhow::Error`, `std::io::Error`, `String`, ...).
#[diagnostic::on_unimplemented(
    message = "a lawcket handler cannot return `{Self}`",
    label = "return `()`, a reply, or `Result` of one here",
    note = "a reply is `()`, `lawcket::Reply`, `String`, `&'static str`, `serde_json::Value`, `Vec<u8>` or an `Option` of one; the error may be `lawcket::Error` or any error that converts into `Box<dyn std::error::Error + Send + Sync>`"
)]
pub trait HandlerOutput {
    /// The outcome as the pipeline reads it.
    fn into_result(self) -> Result<Reply, BoxError>;
}

impl<T: IntoReply> HandlerOutput for T {
    fn into_result(self) -> Result<Reply, BoxError> {
        Ok(self.into_reply())
    }
}

impl<T: IntoReply, E: Into<BoxError>> HandlerOutput for Result<T, E> {
    fn into_result(self) -> Result<Reply, BoxError> {
        self.map(IntoReply::into_reply).map_err(Into::into)
    }
}

/// The future a [`Handler`] returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, BoxError>> + Send>>;

/// The user's fn as the pipeline calls it. Implemented for every
/// `Fn(Invocation) -> impl Future<Output = impl HandlerOutput>`.
pub trait Handler: Send + Sync + 'static {
    /// Runs the handler for one invocation.
    fn call(&self, invocation: Invocation) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
{
    fn call(&self, invocation: Invocation) -> HandlerFuture {
        let future = self(invocation);
        Box::pin(async move { future.await.into_result() })
    }
}

/// What a middleware may return: `Result<Event, E>`, the event (changed or not)
/// to pass on, or an error that stops everything ([`Error::reject`](crate::Error::reject)
/// refuses a `$connect` with its status).
#[diagnostic::on_unimplemented(
    message = "a lawcket middleware must return `Result<lawcket::Event, E>`, not `{Self}`",
    label = "expected `Result<lawcket::Event, E>`",
    note = "a middleware is `async fn(lawcket::Event, lawcket::Connection) -> Result<lawcket::Event, E>`"
)]
pub trait MiddlewareOutput {
    /// The outcome as the pipeline reads it.
    fn into_result(self) -> Result<Event, BoxError>;
}

impl<E: Into<BoxError>> MiddlewareOutput for Result<Event, E> {
    fn into_result(self) -> Result<Event, BoxError> {
        self.map_err(Into::into)
    }
}

/// The future a [`Middleware`] returns.
pub type MiddlewareFuture = Pin<Box<dyn Future<Output = Result<Event, BoxError>> + Send>>;

/// A step run before the handler. Implemented for every
/// `Fn(Event, Connection) -> impl Future<Output = Result<Event, BoxError>>`.
pub trait Middleware: Send + Sync + 'static {
    /// Runs the middleware on one event.
    fn call(&self, event: Event, connection: Connection) -> MiddlewareFuture;
}

impl<F, Fut> Middleware for F
where
    F: Fn(Event, Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Event, BoxError>> + Send + 'static,
{
    fn call(&self, event: Event, connection: Connection) -> MiddlewareFuture {
        Box::pin(self(event, connection))
    }
}

/// An async fn usable as middleware: `async fn(Event, Connection) -> Result<Event, E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a lawcket middleware",
    label = "not `async fn(lawcket::Event, lawcket::Connection) -> Result<lawcket::Event, E>`",
    note = "a middleware takes the event and the connection, and returns the event to pass on (changed or not) or an error; `lawcket::Error::reject(401, ..)` refuses a `$connect`"
)]
pub trait IntoMiddleware: Send + Sync + 'static {
    /// The middleware as the pipeline stores it.
    fn into_middleware(self) -> Box<dyn Middleware>;
}

impl<F, Fut> IntoMiddleware for F
where
    F: Fn(Event, Connection) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: MiddlewareOutput,
{
    fn into_middleware(self) -> Box<dyn Middleware> {
        Box::new(move |event, connection| {
            let future = self(event, connection);
            async move { future.await.into_result() }
        })
    }
}

/// An async fn usable as a plugin: it takes handler parameters (any of
/// `Event`, `Connection`, `Option<Publish>`, `Kind`, `Registration`,
/// `Identity`) and returns `()` or `Result<(), E>`, like a handler (a reply it
/// returns is not sent).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a lawcket plugin",
    label = "not an async fn taking handler parameters",
    note = "a plugin is an `async fn` whose parameters are handler parameters (`lawcket::Event`, `lawcket::Connection`, `Option<lawcket::Publish>`, `lawcket::Kind`, `lawcket::Registration`) and that returns `()` or `Result<(), E>`"
)]
pub trait IntoPlugin<Args>: Send + Sync + 'static {
    /// The plugin as the pipeline stores it.
    fn into_plugin(self) -> Box<dyn Handler>;
}

macro_rules! plugin_for_arity {
    ($($param:ident),*) => {
        impl<F, Fut, $($param,)*> IntoPlugin<($($param,)*)> for F
        where
            F: Fn($($param),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: HandlerOutput,
            $($param: FromInvocation,)*
        {
            #[allow(unused_variables)] // the zero-parameter case
            fn into_plugin(self) -> Box<dyn Handler> {
                Box::new(move |invocation: Invocation| {
                    let future = self($($param::from_invocation(&invocation)),*);
                    async move { future.await.into_result() }
                })
            }
        }
    };
}

plugin_for_arity!();
plugin_for_arity!(A);
plugin_for_arity!(A, B);
plugin_for_arity!(A, B, C);
plugin_for_arity!(A, B, C, D);
plugin_for_arity!(A, B, C, D, E);
