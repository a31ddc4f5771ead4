//! Release rules that match API Gateway, and what a handler may write: the
//! real pipeline on the memory registry, posting to a `@connections`
//! endpoint served here that answers 410 for chosen ids.

mod support;

use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lawcket::{Error, Kind};
use lawcket_runtime::test_util::{offline_sdk_config, Memory, Pipeline, Registry};
use lawcket_runtime::{BoxError, Config, Handler, Invocation};
use support::connections::Connections;
use support::fixture;

const SENDER: &str = "0PYxyh3bqNs7z8s=";
const NEWCOMER: &str = "NEWxyh3bqNs7z8s=";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A `$connect` of `id` that opened just now.
fn connect(id: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut request: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture("connect.json")).unwrap();
    request.request_context.connection_id = Some(id.into());
    request.request_context.connected_at = now_ms();
    request
}

fn message() -> ApiGatewayWebsocketProxyRequest {
    let mut request: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture("message-json.json")).unwrap();
    request.request_context.connected_at = now_ms();
    request
}

async fn pipeline(
    config: Config,
    endpoint: &str,
    handler: impl Handler,
) -> (Pipeline, Arc<Memory>) {
    let memory = Arc::new(Memory::new());
    let registry = Registry::Memory(Arc::clone(&memory));
    let sdk = offline_sdk_config().await;
    let pipeline = Pipeline::new(config, registry, sdk, Some(endpoint.to_owned()), handler);
    (pipeline, memory)
}

type Results = Arc<Mutex<Vec<Result<(), String>>>>;

#[tokio::test]
async fn a_gone_sender_is_released_at_once_and_a_newcomer_is_kept() {
    let connections = Connections::start().await;
    connections.mark_gone(SENDER);
    connections.mark_gone(NEWCOMER);
    let results: Results = Arc::default();
    let record = Arc::clone(&results);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            if let Some(publish) = invocation.publish() {
                // The sender's $connect has completed: its 410 proves it gone.
                let to_sender = publish.send(&"hello").await;
                // A connection that opened a moment ago may still be inside
                // its $connect, when API Gateway answers 410 too.
                let to_newcomer = publish.to(NEWCOMER, &"welcome").await;
                let mut record = record.lock().unwrap();
                for result in [to_sender, to_newcomer] {
                    record.push(result.map_err(|e| format!("{e:?}")));
                }
            }
            Ok::<(), BoxError>(())
        }
    };
    let (pipeline, memory) = pipeline(Config::new("t"), &connections.url, handler).await;
    for id in [SENDER, NEWCOMER] {
        assert_eq!(pipeline.run(connect(id)).await.unwrap().status_code, 200);
    }
    pipeline.run(message()).await.unwrap();

    let results = results.lock().unwrap();
    assert!(
        results[0].as_ref().unwrap_err().starts_with("Gone"),
        "{results:?}"
    );
    assert!(memory.get(SENDER).is_none(), "the gone sender was kept");
    assert!(
        results[1]
            .as_ref()
            .unwrap_err()
            .contains("may still be connecting"),
        "{results:?}"
    );
    assert!(
        memory.get(NEWCOMER).is_some(),
        "a connection inside its $connect was released"
    );
}

#[tokio::test]
async fn a_handler_cannot_write_reserved_or_undeclared_attributes() {
    let results: Results = Arc::default();
    let record = Arc::clone(&results);
    let handler = move |invocation: Invocation| {
        let record = Arc::clone(&record);
        async move {
            if invocation.connection().kind() == Kind::Message {
                let registration = invocation.registration();
                let mut results = Vec::new();
                for (field, value) in [
                    ("ttl", lawcket::SyncValue::Int(i64::MAX)),
                    ("connectionId", "someone-else".into()),
                    ("stage", "admin".into()),
                    ("role", "admin".into()),
                    ("channel", "<script>".into()),
                ] {
                    let result = registration.set(field, value).await;
                    results.push(result.map_err(|e| e.to_string()));
                }
                record.lock().unwrap().extend(results);
            }
            Ok::<(), BoxError>(())
        }
    };
    let config = Config::new("t").sync_dynamic("channel", lawcket::Dynamic::query("channel"));
    let (pipeline, memory) = pipeline(config, "http://127.0.0.1:9", handler).await;
    pipeline.run(connect(SENDER)).await.unwrap();
    let before = memory.get(SENDER).expect("stored");
    pipeline.run(message()).await.unwrap();

    let results = results.lock().unwrap();
    for result in &results[..4] {
        let err = result.as_ref().unwrap_err();
        assert!(err.contains("is not a declared sync field"), "{err}");
    }
    assert!(results[4]
        .as_ref()
        .unwrap_err()
        .contains("`<` is not allowed"));
    assert_eq!(memory.get(SENDER).unwrap(), before, "nothing was written");
}

#[tokio::test]
async fn a_configuration_writing_reserved_attributes_does_not_start() {
    for name in lawcket::RESERVED_ATTRIBUTES {
        let config = Config::new("t").sync_field(name, "x");
        let handler = |_: Invocation| async { Ok::<(), BoxError>(()) };
        let sdk = offline_sdk_config().await;
        let registry = Registry::Memory(Arc::new(Memory::new()));
        let err = Pipeline::try_new(config, registry, sdk, None, handler).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(
            err.to_string().contains("written by lawcket itself"),
            "{err}"
        );
    }
}
