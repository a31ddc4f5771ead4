//! Mass publish (issue 11, item 4), every figure against a baseline measured
//! in the same run:
//!
//! - `publisher.everyone().send(..)` to 10,000 connections through a local
//!   `@connections` endpoint that answers each post after 5 ms, against the
//!   ideal N × 5 ms / concurrency and against a hand-written scan-then-post
//!   loop on the same SDK settings; the registry in memory (a fast in-process
//!   stand-in for DynamoDB: lawcket's own cost) and in moto's DynamoDB;
//! - the peak RSS of the process doing each publish, against the
//!   hand-written loop's (in memory, both processes hold the same items);
//! - the BatchWriteItem calls that release 1,000 gone connections (counted by
//!   a proxy in front of moto), against 1,000 / 25, and that all are gone.
//!
//! Each publish runs in a child process of its own (this binary again), so its
//! time and peak RSS are the publisher's alone; the endpoint and moto run
//! outside it. Runs repeat and the median is reported.
//!
//! `cargo bench -p lawcket-benchmarks --bench mass_publish`. Needs moto:
//! `scripts/test.sh` installs it into .venv (or set LAWCKET_MOTO_SERVER).

#[path = "common/proc.rs"]
mod proc;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_sdk_apigatewaymanagement as management;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use lawcket_runtime::test_util::{Item, Memory, Registry};

const CONNECTIONS: usize = 10_000;
/// Of the connections, every tenth is gone in the gone run.
const GONE: usize = 1_000;
const LATENCY: Duration = Duration::from_millis(5);
const CONCURRENCY: usize = lawcket_runtime::DEFAULT_CONCURRENCY;
/// Runs of each publish (the median is reported); `MASS_PUBLISH_RUNS` for more.
fn runs() -> usize {
    std::env::var("MASS_PUBLISH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3)
        .max(3)
}
const PAGE: i32 = 1_000;
const STAGE: &str = "prod";
const TABLE: &str = "mass-publish";
const GONE_TABLE: &str = "mass-publish-gone";
const MESSAGE: &str = "maintenance at noon";

/// Set in a child process: which publish it does.
const CHILD: &str = "MASS_PUBLISH_CHILD";

fn main() {
    if let Ok(variant) = std::env::var(CHILD) {
        return child(Variant::parse(&variant));
    }
    check_moto();
    tokio::runtime::Runtime::new().unwrap().block_on(bench());
}

fn id(i: usize) -> String {
    format!("conn-{i:05}=")
}

fn is_gone(i: usize) -> bool {
    i.is_multiple_of(CONNECTIONS / GONE)
}

/// Fails loudly without moto (found as support's starter finds it).
fn check_moto() {
    let path = std::env::var_os("LAWCKET_MOTO_SERVER").map_or_else(
        || support::repo().join(".venv/bin/moto_server"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "mass_publish needs moto, not found at {}: run `scripts/test.sh` once (it installs moto \
         into .venv) or set LAWCKET_MOTO_SERVER",
        path.display()
    );
}

/// The same SDK settings for lawcket and the hand-written loop: lawcket's HTTP
/// client, moto's endpoint for DynamoDB (the management clients set their
/// own), fixed credentials.
async fn sdk_config(dynamodb: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(dynamodb)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "bench",
        ))
        .http_client(lawcket_runtime::test_util::http_client())
        .load()
        .await
}

// ---------------------------------------------------------------- endpoint

/// The `@connections` endpoint, on a runtime and thread of its own: answers
/// each post after `LATENCY` (410 `GoneException` for ids marked gone), and
/// counts posts, the time they were held, and how often the posts in flight
/// fell to zero.
struct Endpoint {
    url: String,
    state: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    gone: RwLock<HashSet<String>>,
    posts: AtomicUsize,
    held_us: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Times the posts in flight fell to zero (the end of a publish is one).
    idle: AtomicUsize,
    /// Of those, the times every post of the pages read so far was answered
    /// and none of the next page had arrived: a drain at a page boundary.
    page_drains: AtomicUsize,
}

impl Endpoint {
    fn start() -> Endpoint {
        let state = Arc::new(Counters::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/{STAGE}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/{stage}/@connections/{id}", axum::routing::post(receive))
            .with_state(Arc::clone(&state));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap()
            })
        });
        Endpoint { url, state }
    }

    fn reset(&self) {
        let s = &self.state;
        s.posts.store(0, Ordering::SeqCst);
        s.held_us.store(0, Ordering::SeqCst);
        s.max_in_flight.store(0, Ordering::SeqCst);
        s.idle.store(0, Ordering::SeqCst);
        s.page_drains.store(0, Ordering::SeqCst);
    }

    fn posts(&self) -> usize {
        self.state.posts.load(Ordering::SeqCst)
    }

    /// Times the posts in flight fell to zero before the last answer.
    fn drains(&self) -> usize {
        self.state.idle.load(Ordering::SeqCst).saturating_sub(1)
    }

    fn page_drains(&self) -> usize {
        self.state.page_drains.load(Ordering::SeqCst)
    }

    /// How long a post was held on average, in ms.
    fn mean_latency_ms(&self) -> f64 {
        self.state.held_us.load(Ordering::SeqCst) as f64 / 1000.0 / self.posts().max(1) as f64
    }
}

async fn receive(
    State(state): State<Arc<Counters>>,
    Path((_stage, id)): Path<(String, String)>,
) -> Response {
    let start = Instant::now();
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(LATENCY).await;
    let gone = state.gone.read().unwrap().contains(&id);
    state
        .held_us
        .fetch_add(start.elapsed().as_micros() as u64, Ordering::SeqCst);
    let posts = state.posts.fetch_add(1, Ordering::SeqCst) + 1;
    if state.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
        state.idle.fetch_add(1, Ordering::SeqCst);
        if posts.is_multiple_of(PAGE as usize) && posts < CONNECTIONS {
            state.page_drains.fetch_add(1, Ordering::SeqCst);
        }
    }
    if gone {
        support::connections::gone_response()
    } else {
        StatusCode::OK.into_response()
    }
}

// ------------------------------------------------------------ the publishes

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Variant {
    LawcketMemory,
    HandMemory,
    LawcketDynamo,
    HandDynamo,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::LawcketMemory,
        Variant::HandMemory,
        Variant::LawcketDynamo,
        Variant::HandDynamo,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::LawcketMemory => "lawcket-memory",
            Variant::HandMemory => "hand-memory",
            Variant::LawcketDynamo => "lawcket-dynamo",
            Variant::HandDynamo => "hand-dynamo",
        }
    }

    fn parse(name: &str) -> Variant {
        *Variant::ALL
            .iter()
            .find(|v| v.name() == name)
            .unwrap_or_else(|| panic!("{CHILD}={name}: no such publish"))
    }
}

/// What a child measured.
#[derive(Clone, Copy, Debug)]
struct Measured {
    wall_ms: f64,
    cpu_ms: f64,
    peak_rss_mb: f64,
    delivered: usize,
}

/// One publish, in this (child) process; prints what it measured.
fn child(variant: Variant) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let (endpoint, dynamodb) = (var("MASS_PUBLISH_ENDPOINT"), var("MASS_PUBLISH_MOTO"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (wall, cpu, delivered) = runtime.block_on(async {
        let sdk = sdk_config(&dynamodb).await;
        let data = serde_json::to_vec(MESSAGE).unwrap();
        match variant {
            Variant::LawcketMemory => {
                let memory = seeded_memory().await;
                let publisher =
                    lawcket_runtime::test_util::publisher(memory, &sdk, &endpoint, CONCURRENCY)
                        .unwrap();
                timed(lawcket_publish(&publisher)).await
            }
            Variant::LawcketDynamo => {
                let publisher = lawcket::Publisher::builder()
                    .table(TABLE)
                    .endpoint(&endpoint)
                    .concurrency(CONCURRENCY)
                    .page_size(PAGE)
                    .sdk_config(&sdk)
                    .build()
                    .await
                    .unwrap();
                timed(lawcket_publish(&publisher)).await
            }
            Variant::HandMemory => {
                // Held as lawcket's is, so both processes hold the same data.
                let _memory = seeded_memory().await;
                let client = management_client(&sdk, &endpoint);
                let ids: Vec<String> = (0..CONNECTIONS).map(id).collect();
                timed(post_all(&client, futures_util::stream::iter(ids), &data)).await
            }
            Variant::HandDynamo => {
                let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
                let client = management_client(&sdk, &endpoint);
                timed(scan_then_post(&dynamo, &client, &data)).await
            }
        }
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kb = proc::status_kb(&status, "VmHWM:");
    println!(
        "{} {cpu} {} {delivered}",
        wall.as_secs_f64() * 1000.0,
        peak_kb as f64 / 1024.0
    );
}

/// The wall and CPU time (ms, every thread) `publish` takes, and what it answers.
async fn timed(publish: impl std::future::Future<Output = usize>) -> (Duration, f64, usize) {
    let (cpu, start) = (proc::cpu_ms(), Instant::now());
    let delivered = publish.await;
    (start.elapsed(), proc::cpu_ms() - cpu, delivered)
}

async fn lawcket_publish(publisher: &lawcket::Publisher) -> usize {
    let report = publisher.everyone().send(MESSAGE).await.unwrap();
    assert!(report.is_complete(), "{:?}", report.failed.first());
    report.delivered
}

fn management_client(sdk: &aws_config::SdkConfig, endpoint: &str) -> management::Client {
    let config = management::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .build();
    management::Client::from_conf(config)
}

/// The hand-written loop: `CONCURRENCY` posts in flight over one stream of
/// ids, however they are read. Answers how many were delivered.
async fn post_all(
    client: &management::Client,
    ids: impl futures_util::Stream<Item = String>,
    data: &[u8],
) -> usize {
    ids.map(|id| {
        client
            .post_to_connection()
            .connection_id(id)
            .data(data.to_vec().into())
            .send()
    })
    .buffer_unordered(CONCURRENCY)
    .fold(0, |delivered, result| async move {
        match result {
            Ok(_) => delivered + 1,
            Err(error) => panic!("post failed: {error:?}"),
        }
    })
    .await
}

/// One page of the table, read with the request lawcket's registry sends
/// (registry/dynamo.rs: its filter and projection), so that moto, whose
/// filters cost it much, does the same work for both.
async fn scan_page(
    dynamo: &aws_sdk_dynamodb::Client,
    start: Option<HashMap<String, AttributeValue>>,
) -> (Vec<String>, Option<HashMap<String, AttributeValue>>) {
    let out = dynamo
        .scan()
        .table_name(TABLE)
        .filter_expression(
            "(attribute_not_exists(#ttl) OR #ttl > :now) AND #stage = :stage \
             AND attribute_not_exists(#refused)",
        )
        .projection_expression("#id, #at")
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_names("#id", "connectionId")
        .expression_attribute_names("#at", "connectedAt")
        .expression_attribute_names("#stage", "stage")
        .expression_attribute_names("#refused", "refusedAt")
        .expression_attribute_values(":now", AttributeValue::N((now_ms() / 1000).to_string()))
        .expression_attribute_values(":stage", AttributeValue::S(STAGE.into()))
        .limit(PAGE)
        .set_exclusive_start_key(start)
        .send()
        .await
        .expect("scan");
    let ids = out
        .items()
        .iter()
        .filter_map(|item| item.get("connectionId")?.as_s().ok().cloned())
        .collect();
    (ids, out.last_evaluated_key.filter(|key| !key.is_empty()))
}

/// The hand-written scan-then-post loop: a task scans (one page ahead)
/// while the posts run.
async fn scan_then_post(
    dynamo: &aws_sdk_dynamodb::Client,
    client: &management::Client,
    data: &[u8],
) -> usize {
    let (pages, mut next) = tokio::sync::mpsc::channel::<Vec<String>>(1);
    let dynamo = dynamo.clone();
    let scan = tokio::spawn(async move {
        let mut start = None;
        loop {
            let (ids, next) = scan_page(&dynamo, start).await;
            if pages.send(ids).await.is_err() || next.is_none() {
                return;
            }
            start = next;
        }
    });
    let ids = futures_util::stream::poll_fn(move |cx| next.poll_recv(cx))
        .flat_map(futures_util::stream::iter);
    let delivered = post_all(client, ids, data).await;
    scan.await.unwrap();
    delivered
}

/// How long reading every page takes with no post: moto's floor.
async fn scan_alone(dynamo: &aws_sdk_dynamodb::Client) -> f64 {
    let (started, mut start, mut read) = (Instant::now(), None, 0);
    loop {
        let (ids, next) = scan_page(dynamo, start).await;
        read += ids.len();
        match next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    assert_eq!(read, CONNECTIONS);
    started.elapsed().as_secs_f64() * 1000.0
}

/// Runs `variant` in a child process.
async fn run_child(variant: Variant, endpoint: &Endpoint, moto: &str) -> Measured {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, variant.name())
        .env("MASS_PUBLISH_ENDPOINT", &endpoint.url)
        .env("MASS_PUBLISH_MOTO", moto)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the {} publish failed ({}):\n{stdout}\n{}",
        variant.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<f64> = stdout
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let [wall_ms, cpu_ms, peak_rss_mb, delivered] = fields[..] else {
        panic!(
            "unexpected output of the {} publish: {stdout}",
            variant.name()
        )
    };
    Measured {
        wall_ms,
        cpu_ms,
        peak_rss_mb,
        delivered: delivered as usize,
    }
}

// ------------------------------------------------------------ the registry

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The memory registry with every connection in it.
async fn seeded_memory() -> Registry {
    let memory = Registry::Memory(Arc::new(Memory::new()));
    let now = now_ms();
    for i in 0..CONNECTIONS {
        memory.store(&memory_item(&id(i), now)).await.unwrap();
    }
    memory
}

/// Opened an hour ago (a 410 releases it), reaped in two hours.
fn memory_item(connection_id: &str, now_ms: i64) -> Item {
    Item {
        connection_id: connection_id.to_owned(),
        domain_name: "abc123defg.execute-api.us-east-1.amazonaws.com".into(),
        stage: STAGE.into(),
        fields: Vec::new(),
        connected_at: now_ms - 3_600_000,
        ttl: now_ms / 1000 + 7_200,
    }
}

fn dynamo_item(item: &Item) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "connectionId".to_owned(),
            AttributeValue::S(item.connection_id.clone()),
        ),
        (
            "domainName".to_owned(),
            AttributeValue::S(item.domain_name.clone()),
        ),
        ("stage".to_owned(), AttributeValue::S(item.stage.clone())),
        (
            "connectedAt".to_owned(),
            AttributeValue::N(item.connected_at.to_string()),
        ),
        ("ttl".to_owned(), AttributeValue::N(item.ttl.to_string())),
    ])
}

/// Stores the connections `ids` in `table`, 25 a batch, 8 batches at once.
async fn seed(dynamo: &aws_sdk_dynamodb::Client, table: &str, ids: Vec<String>) {
    let now = now_ms();
    let batches: Vec<Vec<WriteRequest>> = ids
        .chunks(25)
        .map(|batch| {
            batch
                .iter()
                .map(|id| {
                    let put = PutRequest::builder()
                        .set_item(Some(dynamo_item(&memory_item(id, now))))
                        .build()
                        .unwrap();
                    WriteRequest::builder().put_request(put).build()
                })
                .collect()
        })
        .collect();
    futures_util::stream::iter(batches)
        .map(|requests| async move {
            let out = dynamo
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .expect("seeding moto");
            assert!(
                out.unprocessed_items.is_none_or(|u| u.is_empty()),
                "moto left items unprocessed"
            );
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

// -------------------------------------------------------------- the bench

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn bench() {
    let moto = support::moto::start();
    let endpoint = Endpoint::start();
    let sdk = sdk_config(&moto.endpoint).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let all: Vec<String> = (0..CONNECTIONS).map(id).collect();
    for table in [TABLE, GONE_TABLE] {
        support::moto::create_table(&dynamo, table).await;
        seed(&dynamo, table, all.clone()).await;
    }

    let runs = runs();
    eprintln!(
        "mass_publish: {CONNECTIONS} connections, {} ms a post, concurrency {CONCURRENCY}, \
         {runs} runs",
        LATENCY.as_millis()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap();
    let mut measured: HashMap<Variant, Vec<(Measured, usize, f64)>> = HashMap::new();
    let mut scans = Vec::new();
    for run in 0..runs {
        scans.push(scan_alone(&dynamo).await);
        // Alternate who goes first, so drift does not favour one.
        let mut order = Variant::ALL;
        if run % 2 == 1 {
            order.swap(0, 1);
            order.swap(2, 3);
        }
        for variant in order {
            endpoint.reset();
            let m = run_child(variant, &endpoint, &moto.endpoint).await;
            assert_eq!(
                m.delivered, CONNECTIONS,
                "{variant:?}: every connection delivered"
            );
            assert_eq!(endpoint.posts(), CONNECTIONS, "{variant:?}: one post each");
            eprintln!(
                "  run {run} {:15} {:8.1} ms  cpu {:7.1} ms  peak {:5.1} MB  drains {:3} \
                 ({} at a page boundary)  max in flight {:3}  mean post {:.2} ms",
                variant.name(),
                m.wall_ms,
                m.cpu_ms,
                m.peak_rss_mb,
                endpoint.drains(),
                endpoint.page_drains(),
                endpoint.state.max_in_flight.load(Ordering::SeqCst),
                endpoint.mean_latency_ms()
            );
            measured.entry(variant).or_default().push((
                m,
                endpoint.page_drains(),
                endpoint.mean_latency_ms(),
            ));
        }
    }
    let med = |variant: Variant, f: fn(&(Measured, usize, f64)) -> f64| {
        median(measured[&variant].iter().map(f).collect())
    };
    let wall = |v| med(v, |m| m.0.wall_ms);

    // The gone: lawcket's DynamoDB client through the counting proxy.
    let gone: Vec<String> = (0..CONNECTIONS).filter(|&i| is_gone(i)).map(id).collect();
    *endpoint.state.gone.write().unwrap() = gone.iter().cloned().collect();
    let proxy = support::proxy::Proxy::start(&moto.endpoint).await;
    proxy.count("x-amz-target: DynamoDB_20120810.BatchWriteItem");
    let publisher = lawcket::Publisher::builder()
        .table(GONE_TABLE)
        .endpoint(&endpoint.url)
        .concurrency(CONCURRENCY)
        .page_size(PAGE)
        .sdk_config(&sdk_config(&proxy.url).await)
        .build()
        .await
        .unwrap();
    let mut calls = Vec::new();
    let mut removed = Vec::new();
    for run in 0..runs {
        if run > 0 {
            seed(&dynamo, GONE_TABLE, gone.clone()).await;
        }
        proxy.reset_count();
        let report = publisher.everyone().send(MESSAGE).await.unwrap();
        assert!(report.is_complete(), "{:?}", report.failed.first());
        assert_eq!(report.delivered, CONNECTIONS - GONE);
        assert_eq!(report.released.len(), GONE);
        let stored = support::moto::stored_ids(&dynamo, GONE_TABLE).await;
        calls.push(proxy.counted() as f64);
        removed.push(gone.iter().filter(|id| !stored.contains(*id)).count() as f64);
        assert_eq!(
            stored.len() + GONE,
            CONNECTIONS,
            "only the gone were removed"
        );
    }
    endpoint.state.gone.write().unwrap().clear();

    let ideal = (CONNECTIONS as f64) * LATENCY.as_secs_f64() * 1000.0 / CONCURRENCY as f64;
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut row = |name: &str, value: String, baseline: String, ratio: f64, target: &str| {
        rows.push([
            name.into(),
            value,
            baseline,
            format!("{ratio:.2}"),
            target.into(),
        ])
    };
    let ms = |v: f64| format!("{v:.0} ms");
    for (registry, lawcket, hand) in [
        ("memory", Variant::LawcketMemory, Variant::HandMemory),
        ("moto", Variant::LawcketDynamo, Variant::HandDynamo),
    ] {
        row(
            &format!("{registry}: lawcket wall time vs ideal N×5 ms/{CONCURRENCY}"),
            ms(wall(lawcket)),
            ms(ideal),
            wall(lawcket) / ideal,
            "≤ 1.10",
        );
        let latency = med(lawcket, |m| m.2);
        let at_latency = ideal * latency / (LATENCY.as_secs_f64() * 1000.0);
        row(
            &format!("{registry}: lawcket vs ideal at the endpoint's mean post ({latency:.2} ms)"),
            ms(wall(lawcket)),
            ms(at_latency),
            wall(lawcket) / at_latency,
            "",
        );
        if registry == "moto" {
            let scan = median(scans.clone());
            row(
                "moto: Scan of every page alone, no post (moto's floor)",
                ms(scan),
                ms(ideal),
                scan / ideal,
                "",
            );
        }
        row(
            &format!("{registry}: lawcket vs hand-written loop"),
            ms(wall(lawcket)),
            ms(wall(hand)),
            wall(lawcket) / wall(hand),
            "",
        );
        row(
            &format!("{registry}: CPU time, lawcket vs hand-written"),
            ms(med(lawcket, |m| m.0.cpu_ms)),
            ms(med(hand, |m| m.0.cpu_ms)),
            med(lawcket, |m| m.0.cpu_ms) / med(hand, |m| m.0.cpu_ms),
            "",
        );
        row(
            &format!("{registry}: posts in flight fell to 0 at a page boundary"),
            format!("{}", med(lawcket, |m| m.1 as f64)),
            format!("{} (hand-written)", med(hand, |m| m.1 as f64)),
            f64::NAN,
            if registry == "memory" { "0" } else { "" },
        );
        row(
            &format!("{registry}: peak RSS of the publishing process"),
            format!("{:.1} MB", med(lawcket, |m| m.0.peak_rss_mb)),
            format!("{:.1} MB", med(hand, |m| m.0.peak_rss_mb)),
            med(lawcket, |m| m.0.peak_rss_mb) / med(hand, |m| m.0.peak_rss_mb),
            "",
        );
    }
    let expected = GONE.div_ceil(25) as f64;
    row(
        "moto: BatchWriteItem calls releasing 1,000 gone",
        format!("{}", median(calls.clone())),
        format!("{expected} (1,000 / 25)"),
        median(calls.clone()) / expected,
        "= 40",
    );
    row(
        "moto: gone connections removed from the table",
        format!("{}", median(removed.clone())),
        format!("{GONE}"),
        median(removed.clone()) / GONE as f64,
        "all",
    );

    println!(
        "\nMass publish: {CONNECTIONS} connections, `@connections` answering after {} ms, \
         concurrency {CONCURRENCY}, median of {runs} runs\n",
        LATENCY.as_millis()
    );
    println!(
        "Load average (1, 5, 15 min) at the start: {}; at the end: {}\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", "),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("| row | value | baseline | ratio | target |");
    println!("|---|---|---|---|---|");
    for [name, value, baseline, ratio, target] in rows {
        let ratio = if ratio == "NaN" { "—".into() } else { ratio };
        println!("| {name} | {value} | {baseline} | {ratio} | {target} |");
    }
    assert!(
        calls.iter().all(|&c| c == expected),
        "BatchWriteItem calls per run: {calls:?}, expected {expected}"
    );
    assert!(
        removed.iter().all(|&r| r == GONE as f64),
        "gone removed per run: {removed:?}"
    );
}
