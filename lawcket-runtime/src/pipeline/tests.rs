//! The pipeline on the memory registry, with the repository's event fixtures.

use std::sync::{Arc, Mutex};

use aws_lambda_events::encodings::Body as ResponseBody;

use super::*;
use crate::error::{chain, BoxError};
use crate::event::Body;
use crate::registry::Memory;
use crate::sync::SyncValue;

const ID: &str = "0PYxyh3bqNs7z8s=";

/// The repository's event fixtures (tests/fixtures), as Lambda delivers them.
fn fixture(name: &str) -> ApiGatewayWebsocketProxyRequest {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    let text = std::fs::read_to_string(format!("{path}{name}"))
        .unwrap_or_else(|e| panic!("cannot read fixture {path}{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build()
}

fn build(config: Config, registry: Registry, handler: impl Handler) -> Pipeline {
    let host = Host {
        sdk: sdk(),
        registry,
        timeouts: crate::host::Timeouts::from_env().unwrap(),
    };
    Pipeline::assemble(config, host, None, Box::new(handler)).unwrap()
}

/// A pipeline on a memory registry whose handler records what it was given
/// and answers with `answer`.
fn pipeline(
    answer: fn(&Invocation) -> Result<(), BoxError>,
) -> (Pipeline, Arc<Memory>, Arc<Mutex<Vec<Invocation>>>) {
    let memory = Arc::new(Memory::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let config = Config::new("connections").sync_field("channel", "#general");
    let handler = move |invocation: Invocation| {
        let result = answer(&invocation);
        record.lock().unwrap().push(invocation);
        async move { result }
    };
    let pipeline = build(config, Registry::Memory(Arc::clone(&memory)), handler);
    (pipeline, memory, seen)
}

#[tokio::test]
async fn connect_stores_then_runs_the_handler() {
    let (pipeline, memory, seen) = pipeline(|_| Ok(()));
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 200);

    let item = memory.get(ID).expect("stored");
    assert_eq!(item.stage, "prod");
    assert_eq!(
        item.domain_name,
        "abc123defg.execute-api.us-east-1.amazonaws.com"
    );
    assert_eq!(
        item.fields,
        vec![("channel".to_owned(), SyncValue::from("#general"))]
    );
    assert_eq!(item.connected_at, 1795606853439);
    let now = crate::clock::now_secs();
    assert!((item.ttl - now - crate::limits::DEFAULT_TTL.as_secs() as i64).abs() <= 2);

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].connection.kind(), Kind::Connect);
    assert!(seen[0].publish.is_none(), "no publish on $connect");
    assert_eq!(seen[0].event.query("channel"), Some("#general"));
}

#[tokio::test]
async fn failing_connect_handler_removes_the_item_and_refuses() {
    let (pipeline, memory, _) = pipeline(|_| Err("boom".into()));
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 500);
    assert!(memory.is_empty(), "refused connection must not stay stored");
    // The client is told the status's reason only.
    let Some(ResponseBody::Text(body)) = response.body else {
        panic!()
    };
    assert_eq!(body, "Internal Server Error");
    // The error itself is what the lifecycle returns (and logs).
    let err = refusal(&pipeline).await;
    assert_eq!(chain(&err).to_string(), "the handler failed: boom");
}

/// The error behind a `$connect` refusal, from the lifecycle itself.
async fn refusal(pipeline: &Pipeline) -> Error {
    let request = fixture("connect.json");
    let connection = Connection::from_request(&request).unwrap();
    let event = pipeline.prepare(request, &connection).await.unwrap();
    pipeline.connect(event, connection).await.unwrap_err()
}

#[tokio::test]
async fn rejection_refuses_with_its_status() {
    let (pipeline, memory, _) = pipeline(|_| Err(Error::reject(401, "no token").into()));
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 401);
    assert!(memory.is_empty());
}

#[tokio::test]
async fn message_gets_a_publisher_for_the_sender() {
    let (pipeline, _, seen) = pipeline(|_| Ok(()));
    let response = pipeline.run(fixture("message-json.json")).await.unwrap();
    assert_eq!(response.status_code, 200);
    let seen = seen.lock().unwrap();
    let invocation = &seen[0];
    assert_eq!(invocation.connection.kind(), Kind::Message);
    assert_eq!(invocation.connection.route_key(), "$default");
    let publish = invocation.publish.as_ref().expect("publish on MESSAGE");
    assert_eq!(publish.sender(), ID);
    assert_eq!(
        publish.endpoint(),
        "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"
    );
    assert_eq!(
        invocation.event.body(),
        &Body::Json(serde_json::json!({"action": "sendmessage", "data": "hi"}))
    );
    #[derive(serde::Deserialize)]
    struct Message {
        data: String,
    }
    assert_eq!(invocation.event.json::<Message>().unwrap().data, "hi");
    let err = invocation.event.json::<Vec<u8>>().unwrap_err();
    assert!(err.to_string().contains("alloc::vec::Vec<u8>"), "{err}");
}

#[tokio::test]
async fn binary_message_is_decoded() {
    let (pipeline, _, seen) = pipeline(|_| Ok(()));
    pipeline.run(fixture("message-binary.json")).await.unwrap();
    let body = seen.lock().unwrap()[0].event.body().clone();
    assert_eq!(body, Body::Binary((0u8..=255).collect()));
}

#[tokio::test]
async fn message_handler_error_is_the_invocation_error() {
    let (pipeline, _, _) = pipeline(|_| Err("bad".into()));
    let err = pipeline
        .run(fixture("message-json.json"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Handler { .. }), "{err}");
}

#[tokio::test]
async fn disconnect_releases_even_when_the_handler_fails() {
    let (pipeline, memory, _) = pipeline(|i| match i.connection.kind() {
        Kind::Close => Err("handler failed on close".into()),
        _ => Ok(()),
    });
    pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(memory.len(), 1);
    let err = pipeline.run(fixture("disconnect.json")).await.unwrap_err();
    assert!(chain(&err).to_string().contains("handler failed on close"));
    assert!(memory.is_empty(), "released although the handler failed");
}

#[tokio::test]
async fn malformed_events_are_typed_errors() {
    let (pipeline, _, seen) = pipeline(|_| Ok(()));
    let mut no_id = fixture("message-json.json");
    no_id.request_context.connection_id = None;
    let err = pipeline.run(no_id).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("requestContext.connectionId is missing"),
        "{err}"
    );

    let mut odd = fixture("message-json.json");
    odd.request_context.event_type = Some("PING".into());
    let err = pipeline.run(odd).await.unwrap_err();
    assert!(err.to_string().contains("\"PING\""), "{err}");

    let mut bad = fixture("message-binary.json");
    bad.body = Some("***".into());
    let err = pipeline.run(bad).await.unwrap_err();
    assert!(matches!(err, Error::Base64(_)), "{err}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the handler never saw a bad event"
    );
}

#[tokio::test]
async fn custom_domains_post_through_the_execute_api_endpoint() {
    let (pipeline, _, seen) = pipeline(|_| Ok(()));
    let mut request = fixture("message-json.json");
    request.request_context.domain_name = Some("ws.example.com".into());
    pipeline.run(request).await.unwrap();
    let publish = seen.lock().unwrap()[0].publish.clone().unwrap();
    assert_eq!(
        publish.endpoint(),
        "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"
    );
}

#[tokio::test]
async fn the_item_is_stored_before_the_handler_runs() {
    let memory = Arc::new(Memory::new());
    let seen = Arc::clone(&memory);
    let handler = move |_: Invocation| {
        let stored = seen.get(ID).is_some();
        async move {
            assert!(stored, "the handler ran before the connection was stored");
            Ok::<(), BoxError>(())
        }
    };
    let registry = Registry::Memory(Arc::clone(&memory));
    let pipeline = build(Config::new("t"), registry, handler);
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 200);
}

#[tokio::test]
async fn a_panicking_connect_handler_is_refused_and_leaves_nothing_stored() {
    let (pipeline, memory, _) = pipeline(|_| panic!("boom in the handler"));
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 500);
    assert!(memory.is_empty());
    let Some(ResponseBody::Text(body)) = response.body else {
        panic!()
    };
    assert_eq!(body, "Internal Server Error");
    let err = refusal(&pipeline).await;
    assert!(
        chain(&err)
            .to_string()
            .contains("panicked: boom in the handler"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rejection_with_a_success_status_still_refuses() {
    let (pipeline, memory, _) = pipeline(|_| Err(Error::reject(200, "oops").into()));
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 500);
    assert!(memory.is_empty());
}

#[tokio::test]
async fn a_panicking_middleware_on_disconnect_still_releases() {
    let memory = Arc::new(Memory::new());
    let middleware = |event: Event, connection: Connection| async move {
        if connection.kind() == Kind::Close {
            panic!("boom in the middleware");
        }
        Ok::<Event, BoxError>(event)
    };
    let config = Config::new("t").middleware("explode", middleware);
    let handler = |_: Invocation| async { Ok::<(), BoxError>(()) };
    let pipeline = build(config, Registry::Memory(Arc::clone(&memory)), handler);
    pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(memory.len(), 1);
    let err = pipeline.run(fixture("disconnect.json")).await.unwrap_err();
    assert!(
        chain(&err)
            .to_string()
            .contains("panicked: boom in the middleware"),
        "{err}"
    );
    assert!(
        memory.is_empty(),
        "released although the middleware panicked"
    );
}

#[tokio::test]
async fn a_connect_whose_manual_register_failed_is_refused_even_if_the_handler_goes_on() {
    // DynamoDB that nobody listens on: every store fails at once.
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .http_client(crate::https::client())
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "t"),
        ))
        .build();
    let dynamo = crate::registry::Dynamo::new(aws_sdk_dynamodb::Client::new(&sdk), "t");
    let registry = Registry::Dynamo(Arc::new(dynamo));
    let handler = |invocation: Invocation| async move {
        // Ignores the error: the pipeline must not accept the connection.
        let _ = invocation.registration().register().await;
        Ok::<(), BoxError>(())
    };
    let pipeline = build(Config::new("t").manual_sync(), registry, handler);
    let response = pipeline.run(fixture("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 500);
}
