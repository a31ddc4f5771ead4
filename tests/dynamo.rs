//! The registry against moto's DynamoDB server, through the real pipeline.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_dynamodb::types::AttributeValue;
use lawcket::Error;
use lawcket_runtime::test_util::{Dynamo, Pipeline, Registry};
use lawcket_runtime::{BoxError, Config, Invocation, Kind};
use support::{fixture, moto};

const ID: &str = "0PYxyh3bqNs7z8s=";

fn event(name: &str) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(fixture(name)).unwrap()
}

async fn pipeline(
    table: &str,
    config: Config,
    answer: fn(Kind) -> Result<(), BoxError>,
) -> (Pipeline, aws_sdk_dynamodb::Client) {
    let moto = moto::shared();
    let client = moto.client().await;
    let registry = Registry::Dynamo(Arc::new(Dynamo::new(client.clone(), table)));
    let handler =
        move |invocation: Invocation| async move { answer(invocation.connection().kind()) };
    let pipeline = Pipeline::new(config, registry, moto.sdk_config().await, None, handler);
    (pipeline, client)
}

async fn get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    moto::item(client, table, ID).await
}

#[tokio::test]
async fn sync_fields_keep_their_types_and_ttl_is_configurable() {
    let table = moto::unique_table("types");
    let config = Config::new(table.as_str())
        .sync_field("channel", "#general")
        .sync_field("level", 3)
        .sync_field("debt", -7)
        .sync_field("admin", false)
        .ttl(Duration::from_secs(600));
    let (pipeline, client) = pipeline(&table, config, |_| Ok(())).await;
    moto::create_table(&client, &table).await;

    let response = pipeline.run(event("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 200);
    let item = get(&client, &table).await.expect("stored");
    assert_eq!(item["channel"], AttributeValue::S("#general".into()));
    assert_eq!(item["level"], AttributeValue::N("3".into()));
    assert_eq!(item["debt"], AttributeValue::N("-7".into()));
    assert_eq!(item["admin"], AttributeValue::Bool(false));
    assert_eq!(item["connectionId"], AttributeValue::S(ID.into()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    assert!((ttl - (now + 600)).abs() <= 2, "ttl {ttl}, now {now}");
    assert_eq!(item.len(), 9, "exactly the declared attributes: {item:?}");

    pipeline.run(event("disconnect.json")).await.unwrap();
    assert!(
        get(&client, &table).await.is_none(),
        "deleted on $disconnect"
    );
}

#[tokio::test]
async fn a_failed_connect_handler_leaves_only_a_refusal_marker() {
    let table = moto::unique_table("refused");
    let config = Config::new(table.as_str()).sync_field("channel", "#general");
    let (pipeline, client) = pipeline(&table, config, |kind| match kind {
        Kind::Connect => Err(Error::reject(403, "banned").into()),
        _ => Ok(()),
    })
    .await;
    moto::create_table(&client, &table).await;
    let response = pipeline.run(event("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 403);
    // No connection: only the marker a late store cannot overwrite, which no
    // publish reaches (no stage, no sync field) and its TTL reaps.
    let item = get(&client, &table).await.expect("the refusal marker");
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["connectedAt", "connectionId", "refusedAt", "ttl"]);
    // A release leaves the marker; a store after it is refused.
    pipeline.run(event("disconnect.json")).await.unwrap();
    assert!(get(&client, &table).await.is_some(), "the marker stays");
}

#[tokio::test]
async fn a_missing_table_refuses_the_connection_before_the_handler() {
    let table = moto::unique_table("never-created");
    let (pipeline, _) = pipeline(&table, Config::new(table.as_str()), |_| {
        panic!("the handler must not run when the connection could not be stored")
    })
    .await;
    let logs = support::logs::capture();
    let response = pipeline.run(event("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 500);
    // The client gets the status's reason only; the detail is in the log.
    assert_eq!(generic(&response), "Internal Server Error");
    let log = logs.text();
    assert!(
        log.contains(&format!("PutItem on table `{table}`")),
        "{log}"
    );
    assert!(log.contains("does not exist"), "{log}");
}

fn generic(response: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> String {
    match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => text.clone(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_a_clear_error() {
    let port = support::free_port(); // nothing listens there
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(lawcket_runtime::test_util::http_client())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "a", "b", None, None, "t",
        ))
        .load()
        .await;
    let registry = Registry::Dynamo(Arc::new(Dynamo::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        "t",
    )));
    let handler = |_: Invocation| async { Ok::<(), BoxError>(()) };
    let pipeline = Pipeline::new(Config::new("t"), registry, sdk, None, handler);
    let logs = support::logs::capture();
    let response = pipeline.run(event("connect.json")).await.unwrap();
    assert_eq!(response.status_code, 500);
    assert_eq!(generic(&response), "Internal Server Error");
    let log = logs.text();
    assert!(
        log.contains("table `t`") && log.contains("could not be reached"),
        "{log}"
    );

    let err = pipeline.run(event("disconnect.json")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Registry {
                operation: "DeleteItem",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_conditional_update_never_resurrects_a_released_connection() {
    let table = moto::unique_table("update");
    let (pipeline, client) = pipeline(
        &table,
        Config::new(table.as_str()).sync_field("channel", "#general"),
        |_| Ok(()),
    )
    .await;
    moto::create_table(&client, &table).await;
    let registry = pipeline.registry();
    pipeline.run(event("connect.json")).await.unwrap();

    assert!(registry
        .update(ID, "channel", &"#rust".into())
        .await
        .unwrap());
    let item = get(&client, &table).await.unwrap();
    assert_eq!(item["channel"], AttributeValue::S("#rust".into()));
    assert!(item.contains_key("updatedAt"));

    pipeline.run(event("disconnect.json")).await.unwrap();
    assert!(
        !registry
            .update(ID, "channel", &"#late".into())
            .await
            .unwrap(),
        "reported as not stored"
    );
    assert!(get(&client, &table).await.is_none(), "not written back");
}

/// The fan-out's ledger in a real table: a broadcast's records are no
/// connections, a batch delivered twice posts and counts once, the gone are
/// released, a large payload is read from the ledger, and
/// `Publisher::report` reads the counts (summed over the tally's shards).
#[tokio::test]
async fn the_fanout_ledger_counts_each_batch_once() {
    use lawcket_runtime::test_util::{
        fanout_dispatch, FanoutBatch, FanoutWorker, Item, PostOutcome,
    };
    use std::sync::Mutex;
    let moto = moto::shared();
    let client = moto.client().await;
    let table = moto::unique_table("fanout");
    moto::create_table(&client, &table).await;
    let registry = Registry::Dynamo(Arc::new(Dynamo::new(client.clone(), &table)));
    let connected_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    for i in 0..150 {
        let item = Item {
            connection_id: format!("c{i:03}"),
            domain_name: "example.com".into(),
            stage: "prod".into(),
            fields: Vec::new(),
            connected_at,
            ttl: connected_at / 1000 + 7200,
        };
        registry.store(&item).await.unwrap();
    }
    let bodies = Mutex::new(Vec::new());
    let (id, connections, batches) =
        // Over 32 KiB: stored once in the ledger, read by the worker.
        fanout_dispatch(&registry, "http://127.0.0.1:9/prod", &[b'x'; 40 * 1024], 100, |group| {
            bodies.lock().unwrap().extend(group);
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!((connections, batches), (150, 2));
    let bodies = bodies.into_inner().unwrap();
    assert_eq!(bodies.len(), 2);

    let posts = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&posts);
    let post: lawcket_runtime::test_util::FanoutPost = Arc::new(move |id: String, payload| {
        let recorder = Arc::clone(&recorder);
        assert_eq!(payload.len(), 40 * 1024, "the stored payload");
        Box::pin(async move {
            if id == "c003" {
                return PostOutcome::Gone;
            }
            recorder.lock().unwrap().push(id);
            PostOutcome::Delivered
        })
    });
    let worker = FanoutWorker::new(10_000.0, 8, Duration::from_secs(30));
    for body in bodies.iter().chain(&bodies[..1]) {
        let batch = FanoutBatch::from_body(body).unwrap();
        assert!(worker
            .run(&registry, batch, None, post.clone())
            .await
            .unwrap());
    }
    let mut posted = posts.lock().unwrap().clone();
    posted.sort();
    posted.dedup();
    assert_eq!(
        posts.lock().unwrap().len(),
        149,
        "the batch delivered twice posted once"
    );
    assert_eq!(posted.len(), 149);

    let publisher = lawcket::Publisher::builder()
        .table(&table)
        .endpoint("http://127.0.0.1:9/prod")
        .sdk_config(&moto.sdk_config().await)
        .build()
        .await
        .unwrap();
    let report = publisher.report(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            report.delivered,
            report.released,
            report.failed,
            report.batches_done
        ),
        (149, 1, 0, 2)
    );
    assert_eq!((report.batches, report.connections), (Some(2), Some(150)));
    assert!(report.is_finished());
    assert!(publisher
        .report("no-such-broadcast")
        .await
        .unwrap()
        .is_none());
    assert!(
        moto::item(&client, &table, "c003").await.is_none(),
        "released"
    );
    // The ledger's records are no connections: a publish reaches 149.
    let page = registry
        .page(&lawcket_runtime::test_util::Selector::default(), None)
        .await
        .unwrap();
    assert_eq!(
        page.0.len(),
        149,
        "{:?}",
        page.0
            .iter()
            .find(|e| e.connection_id.starts_with("lawcket#"))
    );
}
