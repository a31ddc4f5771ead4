//! Invoking the pipeline as API Gateway invokes a Lambda: at most
//! `concurrency` invocations at once, later events waiting their turn, and an
//! answer only within the integration timeout.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use super::events::{self, Peer};
use super::state::Gateway;
use crate::error::{chain, Error};

/// What API Gateway makes of an invocation.
pub(crate) enum Answer {
    Response(ApiGatewayProxyResponse),
    Failed(Error),
    /// No answer within the integration timeout.
    TimedOut,
}

pub(crate) fn accepted(response: &ApiGatewayProxyResponse) -> bool {
    (200..300).contains(&response.status_code)
}

/// Runs `request` in a task of its own. Waiting for a slot counts against the
/// integration timeout, as the client waits too; an event still waiting then
/// is never run. One already running runs on, as a Lambda does when API
/// Gateway has stopped waiting; if it was a `$connect` it accepted (`connect`
/// is its peer), the connection is undone with a `$disconnect`, since its
/// client never got it. The task is also what finishes a `$connect` whose
/// client left mid-handshake (the caller is dropped then).
pub(crate) async fn invoke(
    gateway: &Arc<Gateway>,
    request: ApiGatewayWebsocketProxyRequest,
    connect: Option<Peer>,
) -> Answer {
    let deadline = Instant::now() + gateway.settings.integration_timeout;
    let (answer, answered) = oneshot::channel();
    let task = Arc::clone(gateway);
    tokio::spawn(async move {
        let gateway = task;
        let Ok(Ok(permit)) = timeout_at(deadline, gateway.permits.acquire()).await else {
            return; // timed out waiting: API Gateway has answered already
        };
        let result = gateway.pipeline.run(request).await;
        drop(permit); // before the $disconnect below, which needs one
        let accepted = matches!(&result, Ok(response) if accepted(response));
        if let (Err(_), Some(peer), true) = (answer.send(result), connect, accepted) {
            disconnected(&gateway, &peer, 1006, "Client left during $connect").await;
        }
    });
    match timeout_at(deadline, answered).await {
        Ok(Ok(Ok(response))) => Answer::Response(response),
        Ok(Ok(Err(error))) => Answer::Failed(error),
        // The task gave up waiting for a slot, or the deadline passed.
        Ok(Err(_)) | Err(_) => Answer::TimedOut,
    }
}

/// Forgets the connection (posts now answer 410) and runs `$disconnect`,
/// within the bound on invocations in flight.
pub(crate) async fn disconnected(gateway: &Gateway, peer: &Peer, code: u16, reason: &str) {
    gateway.live().remove(&peer.connection_id);
    tracing::info!(connection_id = %peer.connection_id, code, reason, "disconnected");
    let request = events::disconnect(peer, code, reason);
    let Ok(_permit) = gateway.permits.acquire().await else {
        return; // never closed
    };
    if let Err(error) = gateway.pipeline.run(request).await {
        tracing::error!(error = %chain(&error), "$disconnect failed");
    }
}
