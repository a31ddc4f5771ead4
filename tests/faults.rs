//! Faults on the Lambda path, through the real `echo` binary under a Runtime
//! API served here: a DynamoDB that hangs, and one that stalls and then
//! delivers what it held (a timed-out store landing late).

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use support::function::{status, Function};
use support::proxy::Proxy;
use support::runtime_api::{Outcome, RuntimeApi};
use support::{fixture, moto};

const TABLE: &str = env!("CONNECTIONS_TABLE");
const ID: &str = "0PYxyh3bqNs7z8s=";

async fn stored(client: &aws_sdk_dynamodb::Client) -> bool {
    client
        .get_item()
        .table_name(TABLE)
        .key("connectionId", AttributeValue::S(ID.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

#[tokio::test]
async fn a_hung_dynamodb_refuses_the_connect_instead_of_hanging() {
    // Accepts connections and never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hung.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            open.push(socket);
        }
    });
    let runtime = RuntimeApi::start().await;
    let mut env = runtime.env();
    env.push(("AWS_ENDPOINT_URL", format!("http://{addr}")));
    env.push(("AWS_REGION", "us-east-1".into()));
    env.push(("AWS_ACCESS_KEY_ID", "test".into()));
    env.push(("AWS_SECRET_ACCESS_KEY", "test".into()));
    env.push(("LAWCKET_DYNAMODB_TIMEOUT", "0.5".into()));
    let function = Function::spawn("echo", env);

    // Without a bound the store would wait for ever and the harness would
    // give up after 30 s; with it the connection is refused.
    let outcome = runtime.invoke(fixture("connect.json")).await;
    assert_eq!(status(&outcome), 500, "{}", function.log());
    let log = function.wait_for_log("removing it failed too");
    assert!(log.contains("did not answer in time"), "{log}");
    // And the function serves the next event.
    let outcome = runtime.invoke(fixture("disconnect.json")).await;
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_store_that_lands_after_its_timeout_is_undone() {
    let moto = moto::start();
    let client = moto.client().await;
    moto::create_table(&client, TABLE).await;
    let proxy = Proxy::start(&moto.env()[0].1).await;
    let runtime = RuntimeApi::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", proxy.url.clone()));
    env.push(("LAWCKET_DYNAMODB_TIMEOUT", "0.5".into()));
    let function = Function::spawn("echo", env);

    // Through the proxy as usual.
    assert_eq!(status(&runtime.invoke(fixture("connect.json")).await), 200);
    assert!(stored(&client).await);
    assert_eq!(
        status(&runtime.invoke(fixture("disconnect.json")).await),
        200
    );
    assert!(!stored(&client).await);

    // DynamoDB stalls: the store times out and the connection is refused;
    // the compensating delete times out too.
    proxy.pause();
    let outcome = runtime.invoke(fixture("connect.json")).await;
    assert_eq!(status(&outcome), 500, "{}", function.log());
    function.wait_for_log("storing the connection failed");
    // DynamoDB resumes and processes what it held, in order: the store that
    // timed out lands, and the delete after it.
    let delivered = proxy.resume().await;
    assert!(
        !stored(&client).await,
        "a refused connection was left in the table"
    );
    // The late store did reach DynamoDB (and the delete after it).
    assert!(delivered >= 2, "the proxy held {delivered} requests");
}
