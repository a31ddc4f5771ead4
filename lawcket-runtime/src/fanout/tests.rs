//! The dispatcher and the worker on the memory registry's ledger, with posts
//! answered by a closure: what is enqueued, what is posted, what is counted,
//! and what a retried batch does. (tests/fanout.rs runs them through SQS,
//! DynamoDB and Lambda processes.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::clock::{now_ms, now_secs};
use crate::management::Outcome;
use crate::registry::{Claim, Done, Item, Memory};

const ENDPOINT: &str = "https://abc.execute-api.us-east-1.amazonaws.com/prod";

async fn registry(count: usize, connected_at: i64) -> Registry {
    let registry = Registry::Memory(Arc::new(Memory::new()));
    for i in 0..count {
        let item = Item {
            connection_id: format!("c{i:04}"),
            domain_name: "abc.execute-api.us-east-1.amazonaws.com".into(),
            stage: "prod".into(),
            fields: Vec::new(),
            connected_at,
            ttl: now_secs() + 3600,
        };
        registry.store(&item).await.unwrap();
    }
    registry
}

fn an_hour_ago() -> i64 {
    now_ms() - 3_600_000
}

async fn dispatch_all(
    registry: &Registry,
    data: &[u8],
    except: Option<&str>,
) -> (Enqueued, Vec<Batch>) {
    let bodies = Mutex::new(Vec::new());
    let selector = Selector {
        stage: Some("prod".into()),
        ..Selector::default()
    };
    let enqueued = dispatch::dispatch(
        registry,
        selector,
        except,
        ENDPOINT,
        data,
        dispatch::Cut {
            batch: 100,
            segments: 4,
        },
        |group| {
            assert!(group.len() <= message::SEND_BATCH_ENTRIES);
            bodies.lock().unwrap().extend(group);
            async { Ok(()) }
        },
    )
    .await
    .unwrap();
    let batches = bodies
        .into_inner()
        .unwrap()
        .iter()
        .map(|body| Batch::from_body(body).unwrap())
        .collect();
    (enqueued, batches)
}

type Answers = HashMap<String, fn() -> Outcome>;
/// A delivered post: the connection and the payload.
type Delivery = (String, Vec<u8>);

/// Posts answered from a table of outcomes by id (delivered otherwise),
/// counting what each id was sent.
#[derive(Clone, Default)]
struct Endpoint {
    answers: Arc<Mutex<Answers>>,
    posts: Arc<Mutex<Vec<Delivery>>>,
}

impl Endpoint {
    fn answer(&self, id: &str, outcome: fn() -> Outcome) {
        self.answers.lock().unwrap().insert(id.to_owned(), outcome);
    }

    fn post(&self) -> Post {
        let endpoint = self.clone();
        Arc::new(move |id, payload| {
            let endpoint = endpoint.clone();
            Box::pin(async move {
                let answer = endpoint.answers.lock().unwrap().get(&id).copied();
                let outcome = answer.map_or(Outcome::Delivered, |answer| answer());
                if matches!(outcome, Outcome::Delivered) {
                    endpoint.posts.lock().unwrap().push((id, payload.to_vec()));
                }
                outcome
            })
        })
    }

    fn delivered(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .posts
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

fn throttled() -> Outcome {
    Outcome::Throttled(Error::Config("429".into()))
}

/// Works `batch` with a fresh worker; whether it is finished.
async fn finishes(registry: &Registry, batch: Batch, endpoint: &Endpoint) -> bool {
    worker()
        .run(registry, batch, None, endpoint.post())
        .await
        .unwrap()
}

fn worker() -> Worker {
    Worker::new(1_000_000.0, 8, Duration::from_secs(30))
}

#[tokio::test]
async fn a_broadcast_is_enqueued_in_batches_and_posted_once_each() {
    let registry = registry(250, an_hour_ago()).await;
    let (enqueued, batches) = dispatch_all(&registry, br#"{"hi":1}"#, Some("c0007")).await;
    assert_eq!((enqueued.connections, enqueued.batches), (249, 3));
    assert_eq!(
        batches.iter().map(|b| b.connections.len()).sum::<usize>(),
        249
    );
    assert!(batches
        .iter()
        .all(|b| b.payload.is_some() && b.endpoint == ENDPOINT));

    let endpoint = Endpoint::default();
    endpoint.answer("c0001", || Outcome::Gone);
    endpoint.answer("c0002", || Outcome::Failed(Error::Config("400".into())));
    let worker = worker();
    for batch in batches {
        assert!(worker
            .run(&registry, batch, None, endpoint.post())
            .await
            .unwrap());
    }
    let delivered = endpoint.delivered();
    assert_eq!(delivered.len(), 247);
    assert!(!delivered.contains(&"c0007".to_owned()), "the except");
    let mut unique = delivered.clone();
    unique.dedup();
    assert_eq!(unique, delivered, "each once");
    assert!(endpoint
        .posts
        .lock()
        .unwrap()
        .iter()
        .all(|(_, p)| p == br#"{"hi":1}"#));

    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!(
        (
            tally.delivered,
            tally.released,
            tally.failed,
            tally.batches_done
        ),
        (247, 1, 1, 3)
    );
    assert_eq!((tally.batches, tally.connections), (Some(3), Some(249)));
    let Registry::Memory(memory) = &registry else {
        unreachable!()
    };
    assert!(memory.get("c0001").is_none(), "the gone one is released");
    assert!(memory.get("c0002").is_some(), "the failed one is kept");
}

#[tokio::test]
async fn a_batch_delivered_again_posts_nothing_and_counts_nothing() {
    let registry = registry(100, an_hour_ago()).await;
    let (enqueued, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    let again = Batch::from_body(&batch.to_body()).unwrap();
    let endpoint = Endpoint::default();
    assert!(finishes(&registry, batch, &endpoint).await);
    assert!(finishes(&registry, again, &endpoint).await);
    assert_eq!(endpoint.delivered().len(), 100);
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!((tally.delivered, tally.batches_done), (100, 1));
}

#[tokio::test]
async fn a_batch_left_by_a_dead_attempt_is_finished_without_posting_its_done_again() {
    let registry = registry(100, an_hour_ago()).await;
    let (enqueued, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    // An attempt that recorded 40 deliveries, then died; its lease ran out.
    let (id, seq) = (&batch.broadcast.clone(), batch.seq);
    let now = now_ms();
    let claim = registry
        .claim_batch(
            id,
            seq,
            "dead",
            now - 60_000,
            now - 30_000,
            ids::ledger_ttl(),
        )
        .await
        .unwrap();
    assert_eq!(claim, Claim::Mine(Done::default()));
    let done = Done {
        delivered: batch.connections[..40]
            .iter()
            .map(|(id, _)| id.clone())
            .collect(),
        ..Done::default()
    };
    assert!(registry
        .record_progress(id, seq, "dead", now - 1, &done)
        .await
        .unwrap());

    let endpoint = Endpoint::default();
    assert!(finishes(&registry, batch, &endpoint).await);
    let delivered = endpoint.delivered();
    assert_eq!(
        delivered.len(),
        60,
        "only what the dead attempt had not done"
    );
    assert!(delivered.iter().all(|id| !done.delivered.contains(id)));
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!(
        (tally.delivered, tally.batches_done),
        (100, 1),
        "counted once, whole"
    );
    // The dead attempt cannot record or finish any more.
    assert!(!registry
        .record_progress(id, seq, "dead", now_ms() + 1000, &done)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_batch_another_attempt_holds_is_left_for_later() {
    let registry = registry(10, an_hour_ago()).await;
    let (_, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    let now = now_ms();
    let claim = registry
        .claim_batch(
            &batch.broadcast,
            batch.seq,
            "other",
            now,
            now + 30_000,
            ids::ledger_ttl(),
        )
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Mine(_)));
    let endpoint = Endpoint::default();
    assert!(!finishes(&registry, batch, &endpoint).await);
    assert!(endpoint.delivered().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_throttled_post_leaves_its_batch_for_later_and_the_retry_posts_only_it() {
    let registry = registry(30, an_hour_ago()).await;
    let (enqueued, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    let again = Batch::from_body(&batch.to_body()).unwrap();
    let endpoint = Endpoint::default();
    endpoint.answer("c0005", throttled);
    let worker = worker();
    assert!(!worker
        .run(&registry, batch, None, endpoint.post())
        .await
        .unwrap());
    assert_eq!(endpoint.delivered().len(), 29);
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!(tally.batches_done, 0, "not finished, not counted");

    endpoint.answers.lock().unwrap().clear();
    // SQS delivers it again (the attempt gave its lease up as it stopped).
    let later = Worker::new(1_000_000.0, 8, Duration::from_secs(30));
    assert!(later
        .run(&registry, again, None, endpoint.post())
        .await
        .unwrap());
    let delivered = endpoint.delivered();
    assert_eq!(delivered.len(), 30);
    assert_eq!(delivered.iter().filter(|id| *id == "c0005").count(), 1);
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!((tally.delivered, tally.batches_done), (30, 1));
}

#[tokio::test]
async fn a_connection_gone_while_it_may_still_be_connecting_is_kept() {
    let registry = registry(3, now_ms() - 1_000).await;
    let (enqueued, batches) = dispatch_all(&registry, b"x", None).await;
    let endpoint = Endpoint::default();
    endpoint.answer("c0000", || Outcome::Gone);
    for batch in batches {
        assert!(finishes(&registry, batch, &endpoint).await);
    }
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!((tally.delivered, tally.released, tally.failed), (2, 0, 1));
    let Registry::Memory(memory) = &registry else {
        unreachable!()
    };
    assert!(memory.get("c0000").is_some());
}

#[tokio::test]
async fn a_large_payload_travels_by_pointer_and_is_read_once() {
    let registry = registry(250, an_hour_ago()).await;
    let data = vec![b'x'; 100 * 1024];
    let (_, batches) = dispatch_all(&registry, &data, None).await;
    assert!(batches.iter().all(|b| b.payload.is_none()));
    assert!(
        batches.iter().all(|b| b.to_body().len() < 16 * 1024),
        "ids only"
    );
    let endpoint = Endpoint::default();
    let worker = worker();
    for batch in batches {
        assert!(worker
            .run(&registry, batch, None, endpoint.post())
            .await
            .unwrap());
    }
    let posts = endpoint.posts.lock().unwrap();
    assert_eq!(posts.len(), 250);
    assert!(posts.iter().all(|(_, payload)| *payload == data));
}

#[tokio::test]
async fn an_empty_selection_is_a_finished_broadcast_of_no_batches() {
    let registry = registry(0, an_hour_ago()).await;
    let (enqueued, batches) = dispatch_all(&registry, b"x", None).await;
    assert!(batches.is_empty());
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!((tally.batches, tally.batches_done), (Some(0), 0));
}

#[tokio::test]
async fn a_batch_finished_by_an_attempt_that_died_before_counting_is_counted_once() {
    let registry = registry(10, an_hour_ago()).await;
    let (enqueued, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    let (id, seq) = (batch.broadcast.clone(), batch.seq);
    let now = now_ms();
    let claim = registry
        .claim_batch(&id, seq, "dead", now, now + 30_000, ids::ledger_ttl())
        .await
        .unwrap();
    assert_eq!(claim, Claim::Mine(Done::default()));
    let done = Done {
        delivered: batch.connections.iter().map(|(id, _)| id.clone()).collect(),
        ..Done::default()
    };
    assert!(registry
        .finish_batch(&id, seq, "dead", &done, now)
        .await
        .unwrap());
    assert_eq!(registry.tally(&id).await.unwrap().unwrap().batches_done, 0);

    let endpoint = Endpoint::default();
    let again = Batch::from_body(&batch.to_body()).unwrap();
    assert!(finishes(&registry, batch, &endpoint).await);
    assert!(finishes(&registry, again, &endpoint).await);
    assert!(endpoint.delivered().is_empty(), "nothing posted again");
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!((tally.delivered, tally.batches_done), (10, 1));
}

#[tokio::test(start_paused = true)]
async fn a_batch_never_has_more_than_its_bound_of_posts_started_and_unrecorded() {
    let registry = registry(100, an_hour_ago()).await;
    let (_, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    // Posts that never answer: each keeps its place; no more may start.
    let started = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&started);
    let post: Post = Arc::new(move |_, _| {
        *counter.lock().unwrap() += 1;
        Box::pin(std::future::pending())
    });
    let worker = Worker::new(1_000_000.0, 1_000, Duration::from_secs(30));
    let run = worker.run(&registry, batch, None, post);
    let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
    assert_eq!(*started.lock().unwrap(), worker::UNRECORDED_MAX);
}

#[tokio::test(start_paused = true)]
async fn a_worker_stops_before_its_deadline_and_the_next_delivery_posts_the_rest() {
    let registry = registry(100, an_hour_ago()).await;
    let (enqueued, mut batches) = dispatch_all(&registry, b"x", None).await;
    let batch = batches.remove(0);
    let again = Batch::from_body(&batch.to_body()).unwrap();
    let endpoint = Endpoint::default();
    // 5 posts a second: 100 need 20 s; the invocation has 12.
    let slow = Worker::new(5.0, 8, Duration::from_secs(30));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    let finished = slow
        .run(&registry, batch, Some(deadline), endpoint.post())
        .await;
    assert!(!finished.unwrap(), "left for the next delivery");
    assert!(
        tokio::time::Instant::now() < deadline,
        "answered before Lambda's deadline"
    );
    let first = endpoint.delivered().len();
    assert!(first > 0 && first < 100, "{first}");

    assert!(finishes(&registry, again, &endpoint).await);
    let delivered = endpoint.delivered();
    let mut unique = delivered.clone();
    unique.dedup();
    assert_eq!(
        (delivered.len(), unique.len()),
        (100, 100),
        "the rest, once"
    );
    let tally = registry.tally(&enqueued.id).await.unwrap().unwrap();
    assert_eq!((tally.delivered, tally.batches_done), (100, 1));
}

#[tokio::test]
async fn a_dispatch_that_fails_part_way_names_its_broadcast() {
    let registry = registry(250, an_hour_ago()).await;
    let calls = Mutex::new(0);
    let cut = dispatch::Cut {
        batch: 10,
        segments: 1,
    };
    let error = dispatch::dispatch(
        &registry,
        Selector::default(),
        None,
        ENDPOINT,
        b"x",
        cut,
        |_| {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            let call = *calls;
            async move {
                match call {
                    1 => Ok(()),
                    _ => Err(Error::Config("SQS is down".into())),
                }
            }
        },
    )
    .await
    .unwrap_err();
    let Error::Dispatch {
        broadcast, batches, ..
    } = &error
    else {
        panic!("{error}")
    };
    assert!(*batches >= 10, "{batches}");
    assert!(error.to_string().contains(broadcast.as_str()), "{error}");
    // Its record is there to read, unfinished.
    let tally = registry.tally(broadcast).await.unwrap().unwrap();
    assert_eq!(tally.batches, None);
}

#[test]
fn workers_post_only_to_api_gateway_s_endpoints() {
    assert!(trusted_endpoint(ENDPOINT, None));
    assert!(trusted_endpoint(
        "https://abc.execute-api.cn-north-1.amazonaws.com.cn/v1",
        None
    ));
    for forged in [
        "https://evil.example.com/prod",
        "http://abc.execute-api.us-east-1.amazonaws.com/prod",
        "https://abc.execute-api.us-east-1.amazonaws.com.evil.example/prod",
        "https://abc.execute-api.us-east-1.amazonaws.com/prod/../x",
        "https://user@abc.execute-api.us-east-1.amazonaws.com/prod",
        "https://abc.execute-api.us-east-1.amazonaws.com",
    ] {
        assert!(!trusted_endpoint(forged, None), "{forged}");
    }
}
