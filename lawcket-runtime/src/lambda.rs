//! Serving invocations from the Lambda Runtime API through lambda_runtime:
//! reading the payload as an API Gateway WebSocket event, and reporting
//! failures as Lambda diagnostics.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

use crate::error::Error;
use crate::pipeline::Pipeline;

/// Variables the Lambda service always sets; lambda_runtime panics without them,
/// so their absence is reported as a configuration error first.
const REQUIRED: &[&str] = &[
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

pub(crate) async fn serve(pipeline: Arc<Pipeline>) -> Result<(), Error> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|var| std::env::var_os(var).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Env {
            var: missing.join(", "),
            problem: "AWS_LAMBDA_RUNTIME_API is set but these are not; the Lambda service \
                      sets all of them"
                .into(),
        });
    }
    let service = service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let pipeline = Arc::clone(&pipeline);
        async move {
            run_payload(&pipeline, event.payload)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "invocation failed");
                    Diagnostic::from(&error)
                })
        }
    });
    lambda_runtime::run(service).await.map_err(Error::Runtime)
}

/// Serves a raw invocation payload: anything that is not an API Gateway
/// WebSocket event is [`Error::MalformedEvent`].
async fn run_payload(
    pipeline: &Pipeline,
    payload: serde_json::Value,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request: ApiGatewayWebsocketProxyRequest = serde_json::from_value(payload)
        .map_err(|e| Error::MalformedEvent(format!("not an API Gateway WebSocket event: {e}")))?;
    pipeline.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::error::BoxError;
    use crate::host::{Host, Sdk, Store};
    use crate::invocation::Invocation;

    #[tokio::test]
    async fn a_payload_that_is_no_websocket_event_is_malformed() {
        let host = Host::build(Store::Memory, Sdk::Offline).await;
        let handler = |_: Invocation| async {
            panic!("the handler must not see a malformed event");
            #[allow(unreachable_code)]
            Ok::<(), BoxError>(())
        };
        let pipeline = Pipeline::assemble(Config::new("t"), host, None, Box::new(handler)).unwrap();
        let err = run_payload(&pipeline, serde_json::json!({"a": 1}))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::MalformedEvent(_)), "{err}");
        assert_eq!(
            Diagnostic::from(&err).error_type,
            "lawcket::Error::MalformedEvent"
        );
    }
}
