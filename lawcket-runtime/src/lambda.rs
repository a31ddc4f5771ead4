//! Serving invocations from the Lambda Runtime API through lambda_runtime:
//! reading the payload as an API Gateway WebSocket event or a REQUEST
//! authorizer invocation, and reporting failures as Lambda diagnostics.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Serialize;

use crate::authorizer::AuthorizerRequest;
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
            // Epoch ms, as a point on tokio's clock.
            let left = (event.context.deadline as i64).saturating_sub(crate::clock::now_ms());
            let deadline =
                tokio::time::Instant::now() + std::time::Duration::from_millis(left.max(0) as u64);
            match run_payload(&pipeline, event.payload, Some(deadline)).await {
                Ok(Output::Unauthorized) => Err(unauthorized()),
                Ok(output) => Ok(output),
                Err(error) => {
                    tracing::error!(error = %chain(&error), %request_id, "invocation failed");
                    Err(Diagnostic::from(&error))
                }
            }
        }
    });
    lambda_runtime::run(service).await.map_err(Error::Runtime)
}

/// Serves one invocation's raw bytes exactly as [`serve`] reads them (a
/// deserializer over the bytes, as lambda_runtime builds one): for tests and
/// fuzzing, which have no Runtime API.
#[cfg(any(test, feature = "test-util"))]
pub(crate) async fn run_bytes(pipeline: &Pipeline, bytes: &[u8]) -> Result<Output, Error> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    match Payload::deserialize(&mut json) {
        Ok(payload) => run_payload(pipeline, payload, None).await,
        Err(never) => Err(Error::MalformedEvent(never.to_string())),
    }
}

/// What an invocation answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
// Returned once per invocation and never stored: boxing the response would
// cost every event an allocation to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// An API Gateway WebSocket event's response.
    Response(ApiGatewayProxyResponse),
    /// A REQUEST authorizer's policy (Allow or Deny) and context.
    Policy(serde_json::Value),
    /// The batch item failures of an SQS invocation (feature `fanout`).
    #[cfg(feature = "fanout")]
    Batches(serde_json::Value),
    /// A REQUEST authorizer's 401: the invocation fails with the error
    /// message `Unauthorized`, which API Gateway answers with 401 ("Output
    /// from an API Gateway Lambda authorizer").
    #[serde(skip)]
    Unauthorized,
}

#[cfg(any(test, feature = "test-util"))]
impl Output {
    /// The status of an event's response.
    pub fn status_code(&self) -> Option<i64> {
        match self {
            Output::Response(response) => Some(response.status_code),
            _ => None,
        }
    }
}

/// The error API Gateway reads as "401 Unauthorized" from an authorizer.
fn unauthorized() -> Diagnostic {
    Diagnostic {
        error_type: "Unauthorized".into(),
        error_message: "Unauthorized".into(),
    }
}

/// Serves one invocation's payload; `deadline` is when Lambda stops it.
async fn run_payload(
    pipeline: &Pipeline,
    payload: Payload,
    #[cfg_attr(not(feature = "fanout"), allow(unused_variables))] deadline: Option<
        tokio::time::Instant,
    >,
) -> Result<Output, Error> {
    let incoming = payload.0.map_err(|reason| {
        Error::MalformedEvent(format!("not an API Gateway WebSocket event: {reason}"))
    })?;
    match incoming {
        Incoming::Event(request) => pipeline.run(request).await.map(Output::Response),
        Incoming::Authorize(request) => {
            let method_arn = request.method_arn.clone();
            let verdict = pipeline.authorize(request).await?;
            Ok(verdict
                .policy(&method_arn)
                .map_or(Output::Unauthorized, Output::Policy))
        }
        #[cfg(feature = "fanout")]
        Incoming::Records(records) => Ok(Output::Batches(pipeline.work(records, deadline).await)),
    }
}

/// An invocation's payload, read.
pub(crate) enum Incoming {
    /// `$connect`, `$disconnect` or a message.
    Event(ApiGatewayWebsocketProxyRequest),
    /// A REQUEST authorizer invocation: `"type": "REQUEST"` and a
    /// `methodArn`, beside the fields of a `$connect` event.
    Authorize(AuthorizerRequest),
    /// SQS records: fan-out batches for this binary's worker.
    #[cfg(feature = "fanout")]
    Records(Vec<crate::fanout::Record>),
}

/// What Lambda delivered: an API Gateway WebSocket event or authorizer
/// invocation, or why it is neither.
///
/// Read straight from the invocation's bytes, once: the authorizer's two
/// extra fields are taken out of the stream as it passes (`Intercept`), so
/// telling the two apart costs no second parse. Deserialising never fails:
/// a payload that is not an event (not JSON, not UTF-8, nested past serde_json's
/// depth limit, an array, fields of the wrong type) keeps serde's reason, so it
/// is answered as [`Error::MalformedEvent`] by lawcket rather than as an error
/// inside lambda_runtime.
pub(crate) struct Payload(pub(crate) Result<Incoming, String>);

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
                let mut extra = Extra::default();
                let map = serde::de::value::MapAccessDeserializer::new(Intercept {
                    map,
                    extra: &mut extra,
                });
                let request = ApiGatewayWebsocketProxyRequest::deserialize(map);
                // An SQS event is `Records` alone: no event fields, so the
                // event's own deserializer fails on what is missing.
                #[cfg(feature = "fanout")]
                if let Some(records) = extra.records {
                    return Ok(Payload(Ok(Incoming::Records(records))));
                }
                let request = request?;
                let incoming = match (extra.kind.as_deref(), extra.method_arn) {
                    (None, None) => Ok(Incoming::Event(request)),
                    (Some("REQUEST"), Some(method_arn)) => {
                        Ok(Incoming::Authorize(AuthorizerRequest {
                            method_arn,
                            request,
                        }))
                    }
                    (kind, _) => Err(format!(
                        "an authorizer invocation of type {:?}; lawcket answers REQUEST \
                         authorizers (with a methodArn)",
                        kind.unwrap_or("(none)")
                    )),
                };
                Ok(Payload(incoming))
            }
        }
        Ok(deserializer
            .deserialize_any(Event)
            .unwrap_or_else(|e| Payload(Err(e.to_string()))))
    }
}

/// The fields of an authorizer invocation (or an SQS event) that a
/// WebSocket event lacks.
#[derive(Default)]
struct Extra {
    kind: Option<String>,
    method_arn: Option<String>,
    #[cfg(feature = "fanout")]
    records: Option<Vec<crate::fanout::Record>>,
}

/// A map whose `type` and `methodArn` entries are taken into [`Extra`]; every
/// other entry passes on to the event's own deserializer.
struct Intercept<'a, A> {
    map: A,
    extra: &'a mut Extra,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Intercept<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
        loop {
            let Some(key) = self.map.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            #[cfg(feature = "fanout")]
            if key.as_str() == "Records" {
                if self.extra.records.is_some() {
                    return Err(serde::de::Error::custom("duplicate field `Records`"));
                }
                self.extra.records = Some(self.map.next_value()?);
                continue;
            }
            let slot = match key.as_str() {
                "type" => &mut self.extra.kind,
                "methodArn" => &mut self.extra.method_arn,
                _ => {
                    return match key {
                        Key::Borrowed(key) => seed.deserialize(BorrowedStrDeserializer::new(key)),
                        // A key written with escapes.
                        Key::Owned(key) => seed.deserialize(StringDeserializer::new(key)),
                    }
                    .map(Some);
                }
            };
            if slot.is_some() {
                let message = format!("duplicate field `{}`", key.as_str());
                return Err(serde::de::Error::custom(message));
            }
            *slot = Some(self.map.next_value()?);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A map key, borrowed from the input when it can be.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(key) => key,
            Key::Owned(key) => key,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(key))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(key.to_owned()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
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

#[cfg(all(test, feature = "fanout"))]
mod sqs_tests {
    use super::*;
    use crate::config::Config;
    use crate::error::BoxError;
    use crate::host::{Host, Sdk, Store};
    use crate::invocation::Invocation;

    async fn pipeline() -> Pipeline {
        let host = Host::build(Store::Memory, Sdk::Offline).await.unwrap();
        let handler = |_: Invocation| async {
            panic!("an SQS event never reaches the handler");
            #[allow(unreachable_code)]
            Ok::<(), BoxError>(())
        };
        Pipeline::assemble(Config::new("t"), host, None, Box::new(handler)).unwrap()
    }

    fn failures(output: Output) -> serde_json::Value {
        match output {
            Output::Batches(value) => value["batchItemFailures"].clone(),
            other => panic!("not an SQS answer: {:?}", serde_json::to_string(&other)),
        }
    }

    #[tokio::test]
    async fn an_sqs_event_is_worked_and_a_message_that_is_no_batch_fails_alone() {
        let pipeline = pipeline().await;
        let empty = run_bytes(&pipeline, br#"{"Records": []}"#).await.unwrap();
        assert_eq!(failures(empty), serde_json::json!([]));

        let event = br#"{"Records": [
            {"messageId": "m1", "receiptHandle": "r", "body": "not json", "eventSource": "aws:sqs",
             "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}},
            {"messageId": "m2", "body": "{\"lawcket\": \"fanout/9\"}", "eventSource": "aws:sqs"},
            {"messageId": "m3", "body": "{}", "eventSource": "aws:kinesis"},
            {"messageId": "m4", "eventSource": "aws:sqs", "body":
             "{\"lawcket\": \"fanout/1\", \"broadcast\": \"b\", \"at\": 1, \"seq\": 0, \"endpoint\": \"https://evil.example.com/prod\", \"connections\": [[\"c\", null]]}"}
        ]}"#;
        let answer = failures(run_bytes(&pipeline, event).await.unwrap());
        assert_eq!(
            answer,
            serde_json::json!([
                { "itemIdentifier": "m1" },
                { "itemIdentifier": "m2" },
                { "itemIdentifier": "m3" },
                { "itemIdentifier": "m4" }
            ])
        );
    }

    #[tokio::test]
    async fn records_of_the_wrong_shape_are_malformed() {
        let pipeline = pipeline().await;
        for bad in [
            &br#"{"Records": "x"}"#[..],
            br#"{"Records": [{"body": "no id"}]}"#,
            br#"{"Records": [], "Records": []}"#,
        ] {
            let err = run_bytes(&pipeline, bad).await.unwrap_err();
            assert!(matches!(err, Error::MalformedEvent(_)), "{err}");
        }
    }
}
