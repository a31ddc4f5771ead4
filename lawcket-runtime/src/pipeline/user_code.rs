//! Running what the user wrote: the middleware chain, the handler with its
//! plugins, and the panic guard around each, so a failure in user code is an
//! error the pipeline can clean up after.

use std::future::Future;

use crate::authorizer::{Authorizer, AuthorizerRequest, Identity};
use crate::connection::Connection;
use crate::error::{chain, BoxError, Error};
use crate::event::Event;
use crate::invocation::{Handler, Invocation, Middleware};
use crate::reply::Reply;

/// Each middleware in order; the first error stops everything.
pub(super) async fn middleware(
    chain: &[(String, Box<dyn Middleware>)],
    mut event: Event,
    connection: &Connection,
) -> Result<Event, Error> {
    for (name, middleware) in chain {
        event = guarded(|| middleware.call(event, connection.clone()))
            .await
            .map_err(|e| Error::from_user(&format!("middleware `{name}`"), e))?;
    }
    Ok(event)
}

/// The authorizer, behind the same panic guard.
pub(super) async fn authorize(
    authorizer: &dyn Authorizer,
    request: AuthorizerRequest,
) -> Result<Identity, BoxError> {
    guarded(|| authorizer.call(request)).await
}

/// The handler and every plugin, concurrently; all are awaited and any
/// failure fails the invocation (the handler's first). The handler's reply
/// is the invocation's; a plugin's is not sent.
pub(super) async fn handle(
    handler: &dyn Handler,
    plugins: &[(String, Box<dyn Handler>)],
    invocation: Invocation,
) -> Result<Reply, Error> {
    let plugins: Vec<_> = plugins
        .iter()
        .map(|(name, plugin)| {
            let invocation = invocation.clone();
            async move {
                guarded(|| plugin.call(invocation)).await.map_err(|e| {
                    let error = Error::from_user(&format!("plugin `{name}`"), e);
                    tracing::error!(plugin = %name, error = %chain(&error), "plugin failed");
                    error
                })
            }
        })
        .collect();
    let (handled, plugged) = tokio::join!(
        guarded(|| handler.call(invocation)),
        futures_util::future::join_all(plugins)
    );
    let reply = handled.map_err(|e| Error::from_user("the handler", e))?;
    plugged.into_iter().collect::<Result<Vec<_>, Error>>()?;
    Ok(reply)
}

/// Runs user code, turning a panic into an error so the pipeline still cleans
/// up (a stored `$connect` item is removed, a `$disconnect` still releases).
async fn guarded<T, F>(call: impl FnOnce() -> F) -> Result<T, BoxError>
where
    F: Future<Output = Result<T, BoxError>>,
{
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
