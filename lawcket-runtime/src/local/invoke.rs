//! Invoking the pipeline as API Gateway invokes a Lambda: within the bound on
//! invocations in flight (`slots`), and with an answer only within the
//! integration timeout.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use super::events::{self, Peer};
use super::slots::{Lane, Slot};
use super::state::Gateway;
use crate::authorizer::{AuthorizerRequest, Verdict};
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

/// Runs `request` in `slot`. The integration timeout counts from now: it
/// bounds the invocation, as on AWS, where a function scales out instead of
/// waiting; time spent waiting for a slot here is the laptop's,
/// not the handler's. An invocation still running at the timeout runs on, as
/// a Lambda does when API Gateway has stopped waiting; if it is a `$connect`
/// (`connect` is its peer) that accepts, the connection is undone with a
/// `$disconnect`, since its client never got it. That also finishes a
/// `$connect` whose client left mid-handshake (this future is dropped then).
pub(crate) async fn invoke(
    gateway: &Arc<Gateway>,
    slot: Slot,
    request: ApiGatewayWebsocketProxyRequest,
    connect: Option<Peer>,
) -> Answer {
    let deadline = Instant::now() + gateway.settings.integration_timeout;
    let (answer, mut answered) = oneshot::channel();
    let task = Arc::clone(gateway);
    tokio::spawn(async move {
        let gateway = task;
        let result = gateway.pipeline.run(request).await;
        drop(slot); // before the $disconnect below, which takes one
        let accepted = matches!(&result, Ok(response) if accepted(response));
        if let (Err(_), Some(peer), true) = (answer.send(result), connect, accepted) {
            disconnected(&gateway, &peer, 1006, "Client left during $connect").await;
        }
    });
    let result = match timeout_at(deadline, &mut answered).await {
        Ok(answer) => answer.ok(),
        Err(_) => {
            // No answer is taken after this, so the task undoes a connect
            // that accepts late; one sent just as the deadline passed still
            // counts.
            answered.close();
            answered.try_recv().ok()
        }
    };
    match result {
        Some(Ok(response)) => Answer::Response(response),
        Some(Err(error)) => Answer::Failed(error),
        // The task cannot end without answering (the pipeline catches
        // panics): the deadline passed.
        None => Answer::TimedOut,
    }
}

/// Runs the REQUEST authorizer in `slot`, within the integration timeout
/// (`None` past it).
pub(crate) async fn authorize(
    gateway: &Gateway,
    slot: Slot,
    request: AuthorizerRequest,
) -> Option<Result<Verdict, Error>> {
    let deadline = Instant::now() + gateway.settings.integration_timeout;
    let verdict = timeout_at(deadline, gateway.pipeline.authorize(request)).await;
    drop(slot);
    verdict.ok()
}

/// Forgets the connection (posts now answer 410) and runs `$disconnect`
/// once it has a slot.
pub(crate) async fn disconnected(gateway: &Gateway, peer: &Peer, code: u16, reason: &str) {
    gateway.live().remove(&peer.connection_id);
    tracing::info!(connection_id = %peer.connection_id, code, reason, "disconnected");
    let request = events::disconnect(peer, code, reason);
    let _slot = Arc::clone(&gateway.slots).acquire(Lane::Lifecycle).await;
    if let Err(error) = gateway.pipeline.run(request).await {
        tracing::error!(error = %chain(&error), "$disconnect failed");
    }
}
