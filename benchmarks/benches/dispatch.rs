//! Dispatch overhead: an invocation's bytes → the response's bytes, no I/O, for
//! CONNECT, MESSAGE and DISCONNECT, with and without a log subscriber.
//!
//! - lawcket: the pipeline the Lambda entry serves, reading the payload as the
//!   entry does, with the handler `#[lawcket::handler(table = "t",
//!   sync(channel = "#general"))]` generates (written out below: the attribute
//!   also generates `main`, which a benchmark cannot call) and the in-memory
//!   registry.
//! - baseline: what a careful hand-written `lambda_runtime::service_fn` does for
//!   the same events: decode the request, keep the connection in a map on
//!   CONNECT, read the body on MESSAGE, remove it on DISCONNECT, answer 200.
//!
//! Neither posts (the publisher is handed to the handler, not used), so the
//! figure is lawcket's own cost per event.
//!
//! `cargo bench -p lawcket-benchmarks --bench dispatch`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use criterion::{criterion_group, BenchmarkId, Criterion};
use lambda_runtime::{service_fn, Context, LambdaEvent, Service};
use lawcket::{Body, Connection, Event, Publish, SyncValue};
use lawcket_runtime::test_util::{
    offline_sdk_config, run_lambda_payload, Memory, Pipeline, Registry,
};

const EVENTS: [(&str, &str); 3] = [
    ("CONNECT", include_str!("../../tests/fixtures/connect.json")),
    (
        "MESSAGE",
        include_str!("../../tests/fixtures/message-json.json"),
    ),
    (
        "DISCONNECT",
        include_str!("../../tests/fixtures/disconnect.json"),
    ),
];

/// The user's fn of the benchmark.
async fn handler(event: Event, connection: Connection, publish: Option<Publish>) {
    if let Body::Json(value) = event.body() {
        std::hint::black_box((value, connection.id(), publish.is_some()));
    }
}

/// A current-thread runtime (both sides run on it) and lawcket's pipeline.
fn lawcket_pipeline() -> (tokio::runtime::Runtime, Pipeline) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sdk = runtime.block_on(offline_sdk_config());
    let config = lawcket::__private_0_1_0::Config::new("t")
        .sync_field("channel", SyncValue::Str(String::from("#general")));
    // What the attribute generates around the user's fn.
    let generated = |invocation: lawcket::__private_0_1_0::Invocation| async move {
        use lawcket::__private_0_1_0::{FromInvocation, HandlerOutput};
        let output = handler(
            <Event as FromInvocation>::from_invocation(&invocation),
            <Connection as FromInvocation>::from_invocation(&invocation),
            <Option<Publish> as FromInvocation>::from_invocation(&invocation),
        )
        .await;
        HandlerOutput::into_result(output)
    };
    let registry = Registry::Memory(Arc::new(Memory::new()));
    let pipeline = Pipeline::new(config, registry, sdk, None, generated);
    (runtime, pipeline)
}

/// What a hand-written handler keeps per connection: channel, connected at.
type Stored = (&'static str, u64);

/// Time and events per (group, implementation, event kind), summed over
/// criterion's samples, for the ratio table.
type Totals = Mutex<HashMap<(bool, &'static str, &'static str), (Duration, u64)>>;
static TOTALS: std::sync::LazyLock<Totals> = std::sync::LazyLock::new(Totals::default);

fn record(
    logged: bool,
    who: &'static str,
    kind: &'static str,
    time: Duration,
    events: u64,
) -> Duration {
    let mut totals = TOTALS.lock().unwrap();
    let entry = totals.entry((logged, who, kind)).or_default();
    entry.0 += time;
    entry.1 += events;
    time
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The hand-written function, on `connections`.
fn hand_written(
    connections: &Mutex<HashMap<String, Stored>>,
) -> impl Service<
    LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    Response = ApiGatewayProxyResponse,
    Error = lambda_runtime::Error,
> + '_ {
    service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            let request = event.payload;
            let context = request.request_context;
            let id = context.connection_id.unwrap_or_default();
            match context.event_type.as_deref() {
                Some("CONNECT") => {
                    let stored: Stored = ("#general", now_ms());
                    connections.lock().unwrap().insert(id, stored);
                }
                Some("DISCONNECT") => {
                    connections.lock().unwrap().remove(&id);
                }
                _ => {
                    let body: serde_json::Value =
                        serde_json::from_str(request.body.as_deref().unwrap_or("null"))?;
                    std::hint::black_box((body, id));
                }
            }
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = 200;
            Ok::<_, lambda_runtime::Error>(response)
        },
    )
}

/// An info-level fmt subscriber writing nowhere: the formatting and span costs
/// stay, the terminal's do not.
fn subscriber_to_nowhere() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    )
}

/// One invocation through lawcket, bytes to bytes.
async fn lawcket_once(pipeline: &Pipeline, bytes: &[u8]) {
    let response = run_lambda_payload(pipeline, bytes).await.unwrap();
    std::hint::black_box(serde_json::to_vec(&response).unwrap());
}

/// One invocation through the hand-written function, bytes to bytes.
async fn hand_written_once<S>(service: &mut S, bytes: &[u8])
where
    S: Service<LambdaEvent<ApiGatewayWebsocketProxyRequest>, Response = ApiGatewayProxyResponse>,
    S::Error: std::fmt::Debug,
{
    let payload = serde_json::from_slice(bytes).unwrap();
    let event = LambdaEvent::new(payload, Context::default());
    let response = service.call(event).await.unwrap();
    std::hint::black_box(serde_json::to_vec(&response).unwrap());
}

fn bench(c: &mut Criterion) {
    let (runtime, pipeline) = lawcket_pipeline();
    let connections: Mutex<HashMap<String, Stored>> = Mutex::default();
    let mut baseline = hand_written(&connections);

    for subscriber in [false, true] {
        let mut group = c.benchmark_group(if subscriber {
            "dispatch_logged"
        } else {
            "dispatch"
        });
        group.measurement_time(Duration::from_secs(3));
        let dispatch = subscriber_to_nowhere();
        let none = tracing::Dispatch::none();
        let _default = tracing::dispatcher::set_default(if subscriber { &dispatch } else { &none });
        for (kind, json) in EVENTS {
            let bytes = json.as_bytes();
            group.bench_with_input(BenchmarkId::new("lawcket", kind), bytes, |b, bytes| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            lawcket_once(&pipeline, bytes).await;
                        }
                        record(subscriber, "lawcket", kind, start.elapsed(), iters)
                    })
                })
            });
            group.bench_with_input(BenchmarkId::new("hand-written", kind), bytes, |b, bytes| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            hand_written_once(&mut baseline, bytes).await;
                        }
                        record(subscriber, "hand-written", kind, start.elapsed(), iters)
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);

/// `DISPATCH_COUNT=lawcket/CONNECT:N` runs N events of one kind and exits, for
/// counting instructions (benchmarks/dispatch-callgrind.sh); criterion otherwise.
/// `DISPATCH_LOG=1` turns the log subscriber on.
fn count(spec: &str) {
    let _default = std::env::var_os("DISPATCH_LOG")
        .map(|_| tracing::dispatcher::set_default(&subscriber_to_nowhere()));
    let (which, n) = spec.split_once(':').expect("DISPATCH_COUNT=who/KIND:N");
    let (who, kind) = which.split_once('/').expect("DISPATCH_COUNT=who/KIND:N");
    let n: u64 = n.parse().expect("N: a count");
    let bytes = EVENTS
        .iter()
        .find(|(k, _)| *k == kind)
        .expect("a kind")
        .1
        .as_bytes();
    let (runtime, pipeline) = lawcket_pipeline();
    let connections: Mutex<HashMap<String, Stored>> = Mutex::default();
    let mut baseline = hand_written(&connections);
    runtime.block_on(async {
        for _ in 0..n {
            match who {
                "lawcket" => lawcket_once(&pipeline, bytes).await,
                _ => hand_written_once(&mut baseline, bytes).await,
            }
        }
    });
}

fn main() {
    if let Ok(spec) = std::env::var("DISPATCH_COUNT") {
        return count(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    let totals = TOTALS.lock().unwrap();
    let per_event = |key| {
        let (time, events): (Duration, u64) = totals[&key];
        time.as_nanos() as f64 / events.max(1) as f64
    };
    println!("\n| event | log subscriber | lawcket | hand-written | ratio | target |");
    println!("|---|---|---|---|---|---|");
    for logged in [false, true] {
        for (kind, _) in EVENTS {
            let both = ["lawcket", "hand-written"].map(|who| (logged, who, kind));
            if !both.iter().all(|key| totals.contains_key(key)) {
                continue; // filtered out on the command line
            }
            let (ours, theirs) = (
                per_event((logged, "lawcket", kind)),
                per_event((logged, "hand-written", kind)),
            );
            println!(
                "| {kind} | {} | {:.2} µs | {:.2} µs | {:.2}× | ≤ 1.05× |",
                if logged { "on" } else { "off" },
                ours / 1e3,
                theirs / 1e3,
                ours / theirs
            );
        }
    }
}
