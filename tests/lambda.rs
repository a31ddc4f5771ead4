//! End to end on the Lambda path: the `echo` example binary runs as a child
//! process with AWS_LAMBDA_RUNTIME_API pointing at a Runtime API served here, so
//! the real lambda_runtime client handles each invocation; DynamoDB is moto;
//! posts go to a `@connections` endpoint served here.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use support::connections::Connections;
use support::function::{error_type, status, Function};
use support::runtime_api::{Outcome, RuntimeApi};
use support::{fixture, moto};

const TABLE: &str = env!("CONNECTIONS_TABLE");
const ID: &str = "0PYxyh3bqNs7z8s=";

async fn item(
    client: &aws_sdk_dynamodb::Client,
    id: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    moto::item(client, TABLE, id).await
}

#[tokio::test]
async fn echo_binary_serves_real_invocations() {
    let moto = moto::start();
    let dynamo = moto.client().await;
    moto::create_table(&dynamo, TABLE).await;
    let runtime = RuntimeApi::start().await;
    let connections = Connections::start().await;

    let mut env = runtime.env();
    env.extend(moto.env());
    env.push(("LAWCKET_MANAGEMENT_ENDPOINT", connections.url.clone()));
    let function = Function::spawn("echo", env);

    // CONNECT: stored with every attribute before the handler answers.
    let before = now_secs();
    let outcome = runtime.invoke(fixture("connect.json")).await;
    assert_eq!(status(&outcome), 200, "{}", function.log());
    let stored = item(&dynamo, ID)
        .await
        .expect("connection stored on $connect");
    assert_eq!(
        stored["domainName"],
        AttributeValue::S("abc123defg.execute-api.us-east-1.amazonaws.com".into())
    );
    assert_eq!(stored["stage"], AttributeValue::S("prod".into()));
    assert_eq!(stored["channel"], AttributeValue::S("#general".into()));
    assert_eq!(
        stored["connectedAt"],
        AttributeValue::N("1795606853439".into())
    );
    let ttl: u64 = stored["ttl"].as_n().unwrap().parse().unwrap();
    let default_ttl = lawcket::DEFAULT_TTL.as_secs();
    assert!(
        (before + default_ttl..=now_secs() + default_ttl).contains(&ttl),
        "ttl {ttl} should be now + {default_ttl}"
    );

    // MESSAGE (JSON): the handler's answer reaches @connections, signed by the SDK.
    let outcome = runtime.invoke(fixture("message-json.json")).await;
    assert_eq!(status(&outcome), 200, "{}", function.log());
    let posts = connections.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].connection_id, ID);
    let body: serde_json::Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(
        body,
        json!({ "echo": { "action": "sendmessage", "data": "hi" }, "from": ID })
    );
    assert!(posts[0]
        .authorization
        .as_deref()
        .unwrap_or("")
        .starts_with("AWS4-HMAC-SHA256"));

    // MESSAGE (binary, base64): decoded and echoed as bytes.
    let outcome = runtime.invoke(fixture("message-binary.json")).await;
    assert_eq!(status(&outcome), 200, "{}", function.log());
    assert_eq!(
        connections.posts()[1].body,
        (0u8..=255).collect::<Vec<u8>>()
    );

    // A malformed event is a typed error, and the function keeps serving.
    let outcome = runtime.invoke(json!({ "hello": "world" })).await;
    assert_eq!(error_type(&outcome), "lawcket::Error::MalformedEvent");
    let mut bad_base64 = fixture("message-binary.json");
    bad_base64["body"] = json!("not base64!");
    assert_eq!(
        error_type(&runtime.invoke(bad_base64).await),
        "lawcket::Error::Base64"
    );

    // 410 Gone on the post: the connection is released from the table.
    connections.mark_gone(ID);
    let outcome = runtime.invoke(fixture("message-json.json")).await;
    assert_eq!(error_type(&outcome), "lawcket::Error::Gone");
    assert!(
        item(&dynamo, ID).await.is_none(),
        "gone connection released"
    );

    // DISCONNECT releases the item.
    assert_eq!(status(&runtime.invoke(fixture("connect.json")).await), 200);
    assert!(item(&dynamo, ID).await.is_some());
    assert_eq!(
        status(&runtime.invoke(fixture("disconnect.json")).await),
        200
    );
    assert!(item(&dynamo, ID).await.is_none(), "released on $disconnect");
    assert_eq!(runtime.init_error(), None);
}

#[tokio::test]
async fn missing_table_refuses_the_connection_and_names_the_table() {
    let moto = moto::start(); // a fresh moto: no table at all
    let runtime = RuntimeApi::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    let function = Function::spawn("echo", env);

    let outcome = runtime.invoke(fixture("connect.json")).await;
    let Outcome::Response(response) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(response["statusCode"], 500, "{}", function.log());
    // The client gets the status's reason; the detail, with the request id,
    // goes to the function's log.
    assert_eq!(response["body"], "Internal Server Error");
    let log = function.wait_for_log("does not exist");
    assert!(log.contains(&format!("table `{TABLE}`")), "{log}");
    assert!(log.contains("request_id="), "{log}");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
