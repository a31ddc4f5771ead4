//! Faults on the Lambda path, through the real `echo` binary under a Runtime
//! API served here: a DynamoDB that hangs, and one that stalls and then
//! delivers what it held (a timed-out store landing late).

mod support;

use support::function::{status, Function};
use support::proxy::Proxy;
use support::runtime_api::{Outcome, RuntimeApi};
use support::{fixture, moto};

const TABLE: &str = env!("CONNECTIONS_TABLE");
const ID: &str = "0PYxyh3bqNs7z8s=";

/// Whether the table holds the connection as live (not only the marker of
/// a refusal, which carries no stage and no publish reaches).
async fn stored(client: &aws_sdk_dynamodb::Client) -> bool {
    let item = moto::item(client, TABLE, ID).await;
    item.is_some_and(|item| item.contains_key("stage") && !item.contains_key("refusedAt"))
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
    let log = function.wait_for_log("marking it refused failed too");
    assert!(log.contains("did not answer in time"), "{log}");
    // And the function serves the next event.
    let outcome = runtime.invoke(fixture("disconnect.json")).await;
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
}

/// The function behind a proxy to moto, with a short DynamoDB bound, after a
/// first connect and disconnect went through as usual.
async fn behind_a_proxy() -> (
    Proxy,
    RuntimeApi,
    Function,
    aws_sdk_dynamodb::Client,
    moto::Moto,
) {
    let moto = moto::start();
    let client = moto.client().await;
    moto::create_table(&client, TABLE).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let runtime = RuntimeApi::start().await;
    let mut env = runtime.env();
    env.extend(moto.env());
    env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", proxy.url.clone()));
    env.push(("LAWCKET_DYNAMODB_TIMEOUT", "0.5".into()));
    let function = Function::spawn("echo", env);
    assert_eq!(status(&runtime.invoke(fixture("connect.json")).await), 200);
    assert!(stored(&client).await);
    assert_eq!(
        status(&runtime.invoke(fixture("disconnect.json")).await),
        200
    );
    assert!(!stored(&client).await);
    (proxy, runtime, function, client, moto)
}

/// DynamoDB stalls: the store times out and the connection is refused;
/// marking it refused times out too, and both requests stay held.
async fn refused_while_stalled(proxy: &Proxy, runtime: &RuntimeApi, function: &Function) {
    proxy.pause();
    let outcome = runtime.invoke(fixture("connect.json")).await;
    assert_eq!(status(&outcome), 500, "{}", function.log());
    function.wait_for_log("storing the connection failed");
}

#[tokio::test]
async fn a_store_that_lands_after_its_timeout_is_undone() {
    let (proxy, runtime, function, client, _moto) = behind_a_proxy().await;
    refused_while_stalled(&proxy, &runtime, &function).await;
    // DynamoDB resumes and processes what it held, in order: the store that
    // timed out lands, and the refusal marker over it.
    let delivered = proxy.resume().await;
    assert!(
        !stored(&client).await,
        "a refused connection was left in the table"
    );
    assert!(delivered >= 2, "the proxy held {delivered} requests");
}

#[tokio::test]
async fn a_store_that_lands_after_the_refusal_cannot_bring_the_connection_back() {
    let (proxy, runtime, function, client, _moto) = behind_a_proxy().await;
    refused_while_stalled(&proxy, &runtime, &function).await;
    // The refusal lands first, the stalled store after it: a delete would
    // lose this race; the marker does not.
    let delivered = proxy.resume_newest_first().await;
    assert!(delivered >= 2, "the proxy held {delivered} requests");
    assert!(
        !stored(&client).await,
        "a store that landed after the refusal brought the connection back"
    );
}
