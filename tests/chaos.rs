//! A seeded randomized run: thousands of concurrent connects, messages,
//! disconnects, lost disconnects (API Gateway delivers `$disconnect` on a
//! best-effort basis) and gone connections, with DynamoDB faults (connections
//! cut in front of moto) and post faults (500s from `@connections`) injected.
//! The real pipeline on the DynamoDB registry (moto).
//!
//! At the end every live connection must be in the table (none lost), and
//! every item that is not live must carry a TTL; one mass publish then
//! releases every gone one it reaches, leaving the table equal to the live set
//! (none leaked). Reproduce a run with `LAWCKET_CHAOS_SEED=<seed>`; the counts
//! are printed (`cargo test --test chaos -- --nocapture`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lawcket_runtime::test_util::{Dynamo, Pipeline, Registry};
use lawcket_runtime::{BoxError, Config, Invocation};
use support::connections::Connections;
use support::proxy::Proxy;
use support::{fixture, moto};

const OPERATIONS: usize = 3_000;
const BATCH: usize = 8;

enum Op {
    Connect(String),
    /// A message from the connection; a broadcast to everyone when set.
    Message(String, bool),
    Disconnect(String),
}

/// splitmix64: small, seedable, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick(&mut self, set: &BTreeSet<String>) -> Option<String> {
        let n = set.len() as u64;
        (n > 0).then(|| set.iter().nth(self.below(n) as usize).unwrap().clone())
    }
}

fn event(name: &str, id: &str, connected_at: i64) -> ApiGatewayWebsocketProxyRequest {
    let mut request: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture(name)).unwrap();
    request.request_context.connection_id = Some(id.into());
    request.request_context.connected_at = connected_at;
    request
}

fn message(id: &str, body: &str, connected_at: i64) -> ApiGatewayWebsocketProxyRequest {
    let mut request = event("message-json.json", id, connected_at);
    request.body = Some(body.into());
    request
}

#[derive(Default, Debug)]
struct Counts {
    connects: usize,
    refused: usize,
    messages: usize,
    failed_messages: usize,
    broadcasts: usize,
    disconnects: usize,
    lost_disconnects: usize,
    gone: usize,
    dynamodb_faults: usize,
    post_faults: usize,
}

async fn table_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> BTreeMap<String, Option<i64>> {
    let mut items = BTreeMap::new();
    let mut pages = client
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().items.unwrap_or_default() {
            // A refused connection's marker is no connection (and TTL-bound).
            if item.contains_key("refusedAt") {
                continue;
            }
            let id = item["connectionId"].as_s().unwrap().clone();
            let ttl = item.get("ttl").and_then(|t| t.as_n().ok()?.parse().ok());
            items.insert(id, ttl);
        }
    }
    items
}

#[tokio::test]
async fn a_seeded_run_with_faults_loses_and_leaks_nothing() {
    let seed: u64 = std::env::var("LAWCKET_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261129);
    let mut rng = Rng(seed);
    let table = moto::unique_table("chaos");
    let moto = moto::start();
    let direct = moto.client().await;
    moto::create_table(&direct, &table).await;

    // The pipeline reaches DynamoDB through a proxy that can cut it off.
    let proxy = Proxy::start(&moto.endpoint).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(lawcket_runtime::test_util::http_client())
        .endpoint_url(&proxy.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "chaos",
        ))
        .load()
        .await;
    // Faults are answered by retries as in production, with a short backoff
    // so thousands of them fit in a test.
    let retries = aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_initial_backoff(std::time::Duration::from_millis(2));
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_config(retries)
            .build(),
    );
    let registry = Registry::Dynamo(Arc::new(Dynamo::new(client, table.as_str())));
    let connections = Connections::start().await;
    let handler = |invocation: Invocation| async move {
        let Some(publish) = invocation.publish() else {
            return Ok::<(), BoxError>(());
        };
        if invocation.event().text().as_deref() == Some("\"broadcast\"") {
            publish.everyone().send(&"to all").await?;
        } else {
            publish.send(&"pong").await?;
        }
        Ok(())
    };
    let config = Config::new(table.as_str()).sync_field("app", "chaos");
    let pipeline = Pipeline::new(
        config,
        registry,
        sdk,
        Some(connections.url.clone()),
        handler,
    );

    // Connections opened a minute ago: past $connect's window, so a 410 proves
    // them gone.
    let opened = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let mut live: BTreeSet<String> = BTreeSet::new();
    let mut counts = Counts::default();
    let mut next_id = 0u64;
    // Operations run eight at a time, concurrently, as a busy API's events
    // do: a message can race its sender's disconnect, a broadcast a connect.
    let mut done = 0;
    while done < OPERATIONS {
        // A DynamoDB fault for this batch, one in twelve.
        let fault = rng.below(12) == 0;
        if fault {
            counts.dynamodb_faults += 1;
        }
        proxy.cut(fault);
        let mut batch = Vec::new();
        for _ in 0..BATCH {
            done += 1;
            match rng.below(100) {
                0..=34 => {
                    next_id += 1;
                    counts.connects += 1;
                    batch.push(Op::Connect(format!("c{next_id:09}=")));
                }
                35..=69 => {
                    let Some(id) = rng.pick(&live) else { continue };
                    if rng.below(10) == 0 {
                        // Some live connection's posts fail for a while (two
                        // posts' worth of the SDK's attempts): the sender's
                        // own answer, or a broadcast that reaches it.
                        let unlucky = rng.pick(&live).unwrap();
                        connections.fail(&unlucky, 500, 10);
                        counts.post_faults += 1;
                    }
                    let broadcast = rng.below(40) == 0;
                    counts.broadcasts += usize::from(broadcast);
                    counts.messages += 1;
                    batch.push(Op::Message(id, broadcast));
                }
                70..=84 => {
                    let Some(id) = rng.pick(&live) else { continue };
                    live.remove(&id);
                    connections.mark_gone(&id);
                    counts.disconnects += 1;
                    // Its release may meet a fault: the item stays, TTL-bound.
                    batch.push(Op::Disconnect(id));
                }
                85..=92 => {
                    // The client left and API Gateway never sent $disconnect.
                    let Some(id) = rng.pick(&live) else { continue };
                    live.remove(&id);
                    connections.mark_gone(&id);
                    counts.lost_disconnects += 1;
                }
                _ => {
                    // The connection is gone, and a message from it was
                    // already on its way: its post answers 410.
                    let Some(id) = rng.pick(&live) else { continue };
                    live.remove(&id);
                    connections.mark_gone(&id);
                    counts.gone += 1;
                    batch.push(Op::Message(id, false));
                }
            }
        }
        let outcomes = futures_util::future::join_all(batch.into_iter().map(|op| {
            let pipeline = &pipeline;
            async move {
                let outcome = match &op {
                    Op::Connect(id) => pipeline.run(event("connect.json", id, opened)).await,
                    Op::Message(id, broadcast) => {
                        let body = if *broadcast {
                            "\"broadcast\""
                        } else {
                            "\"ping\""
                        };
                        pipeline.run(message(id, body, opened)).await
                    }
                    Op::Disconnect(id) => pipeline.run(event("disconnect.json", id, opened)).await,
                };
                (op, outcome)
            }
        }))
        .await;
        for (op, outcome) in outcomes {
            match (op, outcome) {
                (Op::Connect(id), Ok(response)) if response.status_code == 200 => {
                    live.insert(id);
                }
                (Op::Connect(id), _) => {
                    // API Gateway never opened it: posts to it answer 410.
                    connections.mark_gone(&id);
                    counts.refused += 1;
                }
                (Op::Message(..), Err(_)) => counts.failed_messages += 1,
                _ => {}
            }
        }
    }
    proxy.cut(false);

    let before = table_items(&direct, &table).await;
    let lost: Vec<&String> = live.iter().filter(|id| !before.contains_key(*id)).collect();
    let stale: Vec<(&String, &Option<i64>)> = before
        .iter()
        .filter(|(id, _)| !live.contains(*id))
        .collect();
    let unbounded = stale.iter().filter(|(_, ttl)| ttl.is_none()).count();

    // With the faults over, one mass publish releases every gone connection.
    connections.clear_failures();
    let sweeper = live
        .iter()
        .next()
        .cloned()
        .expect("some connection is live");
    pipeline
        .run(message(&sweeper, "\"broadcast\"", opened))
        .await
        .unwrap();
    let after = table_items(&direct, &table).await;
    let leaked: Vec<&String> = after.keys().filter(|id| !live.contains(*id)).collect();
    let lost_after: Vec<&String> = live.iter().filter(|id| !after.contains_key(*id)).collect();

    println!(
        "seed {seed}: {OPERATIONS} operations {counts:?}; DynamoDB cuts {}; live {}; \
         in the table before the sweep {} (stale {}, without TTL {unbounded}); \
         lost {}; after the sweep {}, leaked {}, lost {}",
        proxy.cuts(),
        live.len(),
        before.len(),
        stale.len(),
        lost.len(),
        after.len(),
        leaked.len(),
        lost_after.len(),
    );
    assert!(
        counts.refused > 0 && counts.dynamodb_faults > 15 && counts.post_faults > 50,
        "faults were injected"
    );
    assert!(counts.lost_disconnects > 50 && counts.gone > 50);
    assert_eq!(
        lost,
        Vec::<&String>::new(),
        "live connections missing from the table"
    );
    assert_eq!(unbounded, 0, "stale items without a TTL");
    assert_eq!(
        leaked,
        Vec::<&String>::new(),
        "items left for connections that are gone"
    );
    assert_eq!(
        lost_after,
        Vec::<&String>::new(),
        "the sweep released a live connection"
    );
}
