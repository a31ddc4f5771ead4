//! Serving invocations from the Lambda Runtime API through lambda_runtime:
//! reading the payload as an API Gateway WebSocket event, and reporting
//! failures as Lambda diagnostics.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::error::{chain, Error};
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
    let service = service_fn(move |event: LambdaEvent<Payload>| {
        let pipeline = Arc::clone(&pipeline);
        async move {
            let request_id = event.context.request_id;
            run_payload(&pipeline, event.payload)
                .await
                .map_err(|error| {
                    tracing::error!(error = %chain(&error), %request_id, "invocation failed");
                    Diagnostic::from(&error)
                })
        }
    });
    lambda_runtime::run(service).await.map_err(Error::Runtime)
}

/// Serves one invocation's raw bytes exactly as [`serve`] reads them (a
/// deserializer over the bytes, as lambda_runtime builds one): for tests and
/// fuzzing, which have no Runtime API.
#[cfg(any(test, feature = "test-util"))]
pub(crate) async fn run_bytes(
    pipeline: &Pipeline,
    bytes: &[u8],
) -> Result<ApiGatewayProxyResponse, Error> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    match Payload::deserialize(&mut json) {
        Ok(payload) => run_payload(pipeline, payload).await,
        Err(never) => Err(Error::MalformedEvent(never.to_string())),
    }
}

/// Serves one invocation's payload.
async fn run_payload(
    pipeline: &Pipeline,
    payload: Payload,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = payload.0.map_err(|reason| {
        Error::MalformedEvent(format!("not an API Gateway WebSocket event: {reason}"))
    })?;
    pipeline.run(request).await
}

/// What Lambda delivered: an API Gateway WebSocket event, or why it is not one.
///
/// Read straight from the invocation's bytes, once. Deserialising never fails:
/// a payload that is not an event (not JSON, not UTF-8, nested past serde_json's
/// depth limit, an array, fields of the wrong type) keeps serde's reason, so it
/// is answered as [`Error::MalformedEvent`] by lawcket rather than as an error
/// inside lambda_runtime.
pub(crate) struct Payload(pub(crate) Result<ApiGatewayWebsocketProxyRequest, String>);

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Event;
        impl<'de> Visitor<'de> for Event {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            // Only an object: serde's derive would also fill the struct from an
            // array, position by position, and report a confusing field error.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Payload, A::Error> {
                // An error here propagates: it is what the deserializer reports
                // (the rest of the map is never read), and is caught below.
                let map = serde::de::value::MapAccessDeserializer::new(map);
                ApiGatewayWebsocketProxyRequest::deserialize(map).map(|r| Payload(Ok(r)))
            }
        }
        Ok(deserializer
            .deserialize_any(Event)
            .unwrap_or_else(|e| Payload(Err(e.to_string()))))
    }
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
        let host = Host::build(Store::Memory, Sdk::Offline).await.unwrap();
        let handler = |_: Invocation| async {
            panic!("the handler must not see a malformed event");
            #[allow(unreachable_code)]
            Ok::<(), BoxError>(())
        };
        let pipeline = Pipeline::assemble(Config::new("t"), host, None, Box::new(handler)).unwrap();
        let deep = "[".repeat(100_000);
        let bad: [&[u8]; 5] = [
            br#"{"a": 1}"#,
            b"[1, 2]",
            b"\xff\xfe{",
            deep.as_bytes(),
            br#"{"requestContext": {"connectionId": 7}}"#,
        ];
        for bytes in bad {
            let err = run_bytes(&pipeline, bytes).await.unwrap_err();
            assert!(matches!(err, Error::MalformedEvent(_)), "{err}");
            assert_eq!(
                Diagnostic::from(&err).error_type,
                "lawcket::Error::MalformedEvent"
            );
        }
    }
}
