//! Mass publish against moto (the registry) and a `@connections` endpoint
//! served here that answers 410 for chosen ids, injects latency and failures,
//! and counts requests in flight.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use lawcket::{Error, Publisher};
use support::connections::Connections;
use support::moto;

const INDEX: &str = "channel-index";

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    moto::create_indexed_table(client, table, &[("channel", INDEX)]).await;
}

struct Seed<'a> {
    id: String,
    channel: &'a str,
    stage: &'a str,
    ttl: u64,
}

async fn seed(client: &aws_sdk_dynamodb::Client, table: &str, items: &[Seed<'_>]) {
    for batch in items.chunks(25) {
        let requests = batch
            .iter()
            .map(|s| {
                let item = HashMap::from([
                    ("connectionId".to_owned(), AttributeValue::S(s.id.clone())),
                    (
                        "channel".to_owned(),
                        AttributeValue::S(s.channel.to_owned()),
                    ),
                    ("stage".to_owned(), AttributeValue::S(s.stage.to_owned())),
                    (
                        "domainName".to_owned(),
                        AttributeValue::S("abc.execute-api.us-east-1.amazonaws.com".into()),
                    ),
                    ("ttl".to_owned(), AttributeValue::N(s.ttl.to_string())),
                ]);
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .unwrap();
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A table with `general` + `random` live connections on stage prod, plus a
/// few that must never be posted to: another stage, and an expired TTL.
async fn world(
    general: usize,
    random: usize,
) -> (String, aws_sdk_dynamodb::Client, Vec<String>, Vec<String>) {
    let moto = moto::shared();
    let client = moto.client().await;
    let table = moto::unique_table("publish");
    create_table(&client, &table).await;
    let live = now() + 3600;
    let general_ids: Vec<String> = (0..general).map(|i| format!("g{i:05}=")).collect();
    let random_ids: Vec<String> = (0..random).map(|i| format!("r{i:05}=")).collect();
    let mut items: Vec<Seed> = general_ids
        .iter()
        .map(|id| Seed {
            id: id.clone(),
            channel: "#general",
            stage: "prod",
            ttl: live,
        })
        .chain(random_ids.iter().map(|id| Seed {
            id: id.clone(),
            channel: "#random",
            stage: "prod",
            ttl: live,
        }))
        .collect();
    items.push(Seed {
        id: "other-stage=".into(),
        channel: "#general",
        stage: "dev",
        ttl: live,
    });
    items.push(Seed {
        id: "expired=".into(),
        channel: "#general",
        stage: "prod",
        ttl: now() - 10,
    });
    seed(&client, &table, &items).await;
    (table, client, general_ids, random_ids)
}

async fn publisher(table: &str, endpoint: &str, index: bool, concurrency: usize) -> Publisher {
    let mut builder = Publisher::builder()
        .table(table)
        .endpoint(format!("{endpoint}/prod"))
        .concurrency(concurrency)
        .page_size(250) // several pages, so paging is exercised
        .sdk_config(&moto::shared().sdk_config().await);
    if index {
        builder = builder.index("channel", INDEX);
    }
    builder.build().await.unwrap()
}

fn posts_per_id(connections: &Connections) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for post in connections.posts() {
        *counts.entry(post.connection_id).or_insert(0) += 1;
    }
    counts
}

async fn channel_publish_is_exact(index: bool) {
    let (table, client, general, random) = world(2000, 700).await;
    let connections = Connections::start().await;
    connections.set_latency(Duration::from_millis(2));
    let gone: Vec<String> = general.iter().step_by(20).cloned().collect(); // 100
    for id in &gone {
        connections.mark_gone(id);
    }
    let publisher = publisher(&table, &connections.url, index, 16).await;

    let report = publisher
        .matching("channel", "#general")
        .send(&serde_json::json!({ "text": "hello" }))
        .await
        .unwrap();

    assert_eq!(report.delivered, 1900);
    let mut released = report.released.clone();
    released.sort();
    assert_eq!(released, gone);
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let counts = posts_per_id(&connections);
    let expected: HashSet<&String> = general.iter().filter(|id| !gone.contains(id)).collect();
    assert_eq!(
        counts.len(),
        1900,
        "every live #general connection got a message"
    );
    assert!(counts.values().all(|&n| n == 1), "each exactly once");
    assert!(
        counts.keys().all(|id| expected.contains(id)),
        "no other connection got one"
    );
    assert!(connections
        .posts()
        .iter()
        .all(|p| p.body == br#"{"text":"hello"}"#));

    let max = connections.max_in_flight();
    assert!(max <= 16, "concurrency bound exceeded: {max}");
    assert!(max > 1, "posts were not concurrent at all");

    let stored = moto::stored_ids(&client, &table).await;
    assert!(
        gone.iter().all(|id| !stored.contains(id)),
        "gone connections released"
    );
    assert_eq!(
        stored.len(),
        2000 - 100 + 700 + 2,
        "nothing else was deleted"
    );
    assert!(random.iter().all(|id| stored.contains(id)));
}

#[tokio::test]
async fn channel_publish_through_the_index_is_exact() {
    channel_publish_is_exact(true).await;
}

#[tokio::test]
async fn channel_publish_by_scan_is_exact() {
    channel_publish_is_exact(false).await;
}

#[tokio::test]
async fn everyone_except_one_and_failures_are_reported_not_hidden() {
    let (table, client, general, random) = world(30, 20).await;
    let connections = Connections::start().await;
    let broken = &general[0];
    let throttled = &general[1];
    connections.fail(broken, 500, usize::MAX); // fails on every attempt
    connections.fail(throttled, 429, 2); // throttled twice, then accepted
    let publisher = publisher(&table, &connections.url, false, 4).await;

    let report = publisher
        .everyone()
        .except(&random[0])
        .send_bytes(vec![1, 2, 3])
        .await
        .unwrap();

    assert_eq!(report.matched(), 49);
    assert_eq!(
        report.delivered, 48,
        "the throttled post was retried and delivered"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(&report.failed[0].connection_id, broken);
    assert!(matches!(report.failed[0].error, Error::Post { .. }));
    assert!(report.failed[0].error.to_string().contains(broken.as_str()));
    assert!(!report.is_complete());
    let counts = posts_per_id(&connections);
    assert!(
        !counts.contains_key(&random[0]),
        "the excepted connection got nothing"
    );
    assert!(!counts.contains_key("other-stage=") && !counts.contains_key("expired="));
    assert!(
        moto::stored_ids(&client, &table).await.contains(broken),
        "a failing connection is never deleted"
    );
}

#[tokio::test]
async fn a_single_post_that_finds_the_connection_gone_releases_it() {
    let (table, client, general, _) = world(3, 0).await;
    let connections = Connections::start().await;
    connections.mark_gone(&general[0]);
    let publisher = publisher(&table, &connections.url, true, 4).await;
    let err = publisher.to(&general[0], "hi").await.unwrap_err();
    assert!(
        matches!(&err, Error::Gone { connection_id } if *connection_id == general[0]),
        "{err}"
    );
    publisher.to(&general[1], "hi").await.unwrap();
    let stored = moto::stored_ids(&client, &table).await;
    assert!(!stored.contains(&general[0]) && stored.contains(&general[1]));
}

#[tokio::test]
async fn a_registry_that_cannot_be_read_is_an_error_not_an_empty_report() {
    let connections = Connections::start().await;
    let publisher = publisher("no-such-table", &connections.url, false, 4).await;
    let err = publisher.everyone().send("x").await.unwrap_err();
    assert!(
        err.to_string().contains("Scan on table `no-such-table`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_connection_still_connecting_is_never_released() {
    // API Gateway answers 410 for a connection whose $connect has not finished:
    // such a young item must survive; an old one answering 410 is released.
    let (table, client, general, _) = world(3, 0).await;
    let connections = Connections::start().await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for (id, connected_at) in [(&general[0], now_ms - 3_600_000), (&general[1], now_ms)] {
        client
            .update_item()
            .table_name(&table)
            .key("connectionId", AttributeValue::S(id.clone()))
            .update_expression("SET connectedAt = :at")
            .expression_attribute_values(":at", AttributeValue::N(connected_at.to_string()))
            .send()
            .await
            .unwrap();
        connections.mark_gone(id);
    }
    for index in [true, false] {
        let publisher = publisher(&table, &connections.url, index, 4).await;
        let report = publisher
            .matching("channel", "#general")
            .send("hi")
            .await
            .unwrap();
        let failed: Vec<&str> = report
            .failed
            .iter()
            .map(|f| f.connection_id.as_str())
            .collect();
        assert_eq!(failed, [general[1].as_str()], "index: {index}");
        assert!(report.failed[0]
            .error
            .to_string()
            .contains("may still be connecting"));
        let stored = moto::stored_ids(&client, &table).await;
        assert!(stored.contains(&general[1]), "the young connection is kept");
        assert!(
            !stored.contains(&general[0]),
            "the old gone connection is released"
        );

        let err = publisher.to(&general[1], "hi").await.unwrap_err();
        assert!(matches!(err, Error::Post { .. }), "{err}");
        assert!(moto::stored_ids(&client, &table)
            .await
            .contains(&general[1]));
    }
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_any_post() {
    let (table, _, _, _) = world(3, 0).await;
    let connections = Connections::start().await;
    let publisher = publisher(&table, &connections.url, false, 4).await;
    let big = vec![b'x'; lawcket::MAX_MESSAGE_BYTES + 1];
    let err = publisher
        .everyone()
        .send_bytes(big.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(matches!(
        publisher.to_bytes("g00000=", big).await,
        Err(Error::TooLarge { .. })
    ));
    assert!(connections.posts().is_empty());
}
