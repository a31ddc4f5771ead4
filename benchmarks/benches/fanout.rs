//! Fan-out (feature `fanout`): a broadcast to 1,000,000 simulated
//! connections, timed against the bound `N / quota` computed for the same
//! run (the fastest any sender can go under API Gateway's account throttle).
//!
//! lawcket's own code paths do the work; only API Gateway and SQS are
//! simulated, in process:
//!
//! - the registry is the memory one, filled with N connections (opened an
//!   hour ago, 0.1% of them gone);
//! - lawcket's dispatcher (`test_util::fanout_dispatch`, 100 connections a
//!   message) reads it and hands each group of up to 10 message bodies to an
//!   in-process queue (a SendMessageBatch that takes `SQS_SEND`), while the
//!   workers already consume it, as with SQS;
//! - W workers (deploy/'s default 10), each a `FanoutWorker` with its share
//!   of the budget (`budget / W`, lawcket's `LAWCKET_FANOUT_RATE /
//!   LAWCKET_FANOUT_WORKERS`), 64 posts in flight and a 30 s lease, each
//!   one Lambda instance: it takes up to 10 messages (an event source
//!   batch), is invoked after `INVOKE`, and runs them all at once as
//!   `Fanout::work` does; a batch answered "not finished" goes back to the
//!   queue (SQS delivers it again);
//! - API Gateway's `@connections` is one account-wide token bucket (GCRA) at
//!   `quota` a second with a burst of `quota / 2` (10,000 and 5,000: "Amazon
//!   API Gateway quotas"), answering 429 over it, 410 for the gone, and
//!   otherwise delivering after 20–40 ms (a hash of the connection id).
//!
//! It checks that every live connection got exactly one delivery and every
//! gone one was released from the registry. Each run is a child process of
//! its own (this binary again), so its CPU time and peak RSS are its own.
//!
//! Rows: `quota` (the workers' budget is the whole quota, target ≤ 1.1×),
//! `default` (lawcket's default budget, 9,000 of a 10,000 quota, leaving the
//! rest to the handlers' own posts: ≈ 1.11× by design), and, on request,
//! `over` (a budget 1.5× the quota: the pacers meet 429s).
//!
//! `cargo bench -p lawcket-benchmarks --bench fanout` (about 11 minutes).
//! `FANOUT_N` (default 1,000,000), `FANOUT_QUOTA` (10,000), `FANOUT_WORKERS`
//! (10), `FANOUT_CONCURRENCY` (64), `FANOUT_RUNS` (3, the median is
//! reported) and `FANOUT_ROWS` (`quota,default`; add `over`) change the run.

#[path = "common/proc.rs"]
mod proc;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lawcket_runtime::test_util::{
    fanout_dispatch, FanoutBatch, FanoutPost, FanoutWorker, Item, Memory, PostOutcome, Registry,
};
use serde_json::{json, Value};

/// One SendMessageBatch (10 messages) as the dispatcher sees it.
const SQS_SEND: Duration = Duration::from_millis(10);
/// From messages received by Lambda's poller to the worker's invocation.
const INVOKE: Duration = Duration::from_millis(10);
/// Messages per invocation (the event source mapping's batch size).
const RECORDS: usize = 10;
/// Connections per message (lawcket's default `LAWCKET_FANOUT_BATCH`).
const BATCH: usize = 100;
/// A post's simulated latency: `LATENCY_MIN` plus 0–`LATENCY_SPREAD` ms.
const LATENCY_MIN: u64 = 20;
const LATENCY_SPREAD: u64 = 20;
/// The worker's lease on a batch (lawcket's default).
const LEASE: Duration = Duration::from_secs(30);
/// One gone connection in this many.
const GONE_EVERY: usize = 1_000;
/// The timeline's resolution, for the percentiles of deliveries.
const BUCKET: Duration = Duration::from_millis(10);
const ENDPOINT: &str = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod";
const MESSAGE: &str = "maintenance at noon";

/// Set in a child process: the budget (posts a second) its workers share.
const CHILD: &str = "FANOUT_CHILD_BUDGET";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy, Debug)]
struct Params {
    n: usize,
    quota: f64,
    workers: usize,
    concurrency: usize,
}

impl Params {
    fn from_env() -> Params {
        Params {
            n: env_or("FANOUT_N", 1_000_000),
            quota: env_or("FANOUT_QUOTA", 10_000.0),
            workers: env_or("FANOUT_WORKERS", lawcket_runtime::DEFAULT_FANOUT_WORKERS),
            // lawcket's default LAWCKET_FANOUT_CONCURRENCY.
            concurrency: env_or("FANOUT_CONCURRENCY", 64),
        }
    }
}

fn main() {
    let params = Params::from_env();
    if let Ok(budget) = std::env::var(CHILD) {
        let budget: f64 = budget.parse().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let measured = runtime.block_on(child(params, budget));
        println!("{measured}");
        return;
    }
    parent(params);
}

// ------------------------------------------------------------------ ids

/// API Gateway's ids are 16 characters ending in `=`.
fn id(i: usize) -> String {
    format!("c{i:014}=")
}

fn index(id: &str) -> usize {
    id[1..15].parse().expect("one of the bench's ids")
}

fn is_gone(i: usize) -> bool {
    i % GONE_EVERY == GONE_EVERY - 1
}

/// 20–40 ms, from a cheap hash of the id (FNV-1a).
fn latency(id: &str) -> Duration {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    Duration::from_millis(LATENCY_MIN + hash % (LATENCY_SPREAD + 1))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ------------------------------------------------------- API Gateway

/// The simulated `@connections` API of one account: a token bucket for every
/// post, and what each connection received.
struct Gateway {
    /// GCRA: when the bucket is next empty of debt ("theoretical arrival").
    tat: Mutex<Instant>,
    interval: Duration,
    /// How far ahead of now `tat` may be: the burst, in time.
    tolerance: Duration,
    start: Instant,
    /// Deliveries per connection.
    delivered: Vec<AtomicU8>,
    posts: AtomicU64,
    throttled: AtomicU64,
    gone: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    held_us: AtomicU64,
    /// Deliveries per `BUCKET` since `start`.
    timeline: Vec<AtomicU32>,
}

impl Gateway {
    fn new(n: usize, quota: f64, burst: f64) -> Gateway {
        let start = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / quota);
        Gateway {
            tat: Mutex::new(start),
            interval,
            tolerance: interval.mul_f64(burst),
            start,
            delivered: (0..n).map(|_| AtomicU8::new(0)).collect(),
            posts: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            gone: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            held_us: AtomicU64::new(0),
            timeline: (0..(3_600_000 / BUCKET.as_millis() as usize))
                .map(|_| AtomicU32::new(0))
                .collect(),
        }
    }

    /// Whether the account's bucket lets one more request through now.
    fn admit(&self) -> bool {
        let now = Instant::now();
        let mut tat = self.tat.lock().unwrap();
        let at = (*tat).max(now);
        if at - now > self.tolerance {
            return false;
        }
        *tat = at + self.interval;
        true
    }

    /// The worker's post, answered as API Gateway would.
    fn post(self: &Arc<Self>) -> FanoutPost {
        let gateway = Arc::clone(self);
        Arc::new(move |id: String, _payload: Arc<[u8]>| {
            let gateway = Arc::clone(&gateway);
            Box::pin(async move { gateway.answer(id).await })
        })
    }

    async fn answer(&self, id: String) -> PostOutcome {
        self.posts.fetch_add(1, Ordering::Relaxed);
        let admitted = self.admit();
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        let sent = Instant::now();
        // The answer comes back after a round trip, 429 or not.
        tokio::time::sleep(latency(&id)).await;
        self.held_us
            .fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let i = index(&id);
        if !admitted {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return PostOutcome::Throttled(lawcket_runtime::Error::Post {
                connection_id: id,
                endpoint: ENDPOINT.into(),
                message: "429 TooManyRequestsException".into(),
                source: None,
            });
        }
        if is_gone(i) {
            self.gone.fetch_add(1, Ordering::Relaxed);
            return PostOutcome::Gone;
        }
        self.delivered[i].fetch_add(1, Ordering::Relaxed);
        let bucket = (self.start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        if let Some(count) = self.timeline.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        PostOutcome::Delivered
    }

    /// When `share` of the deliveries had been made, since `start`.
    fn time_of(&self, share: f64) -> Duration {
        let total: u64 = self
            .timeline
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        let wanted = (total as f64 * share).ceil() as u64;
        let mut sum = 0;
        for (i, count) in self.timeline.iter().enumerate() {
            sum += u64::from(count.load(Ordering::Relaxed));
            if sum >= wanted {
                return BUCKET * (i as u32 + 1);
            }
        }
        BUCKET * self.timeline.len() as u32
    }
}

// ------------------------------------------------------------- SQS

/// The queue: unbounded, as SQS is; a batch the worker did not finish goes
/// back in.
#[derive(Clone)]
struct Queue {
    send: tokio::sync::mpsc::UnboundedSender<String>,
    receive: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl Queue {
    fn new() -> Queue {
        let (send, receive) = tokio::sync::mpsc::unbounded_channel();
        Queue {
            send,
            receive: Arc::new(tokio::sync::Mutex::new(receive)),
        }
    }

    fn put(&self, body: String) {
        self.send
            .send(body)
            .expect("the queue outlives its senders");
    }

    /// Up to `RECORDS` messages, waiting for the first (the poller's long
    /// poll, with no batching window).
    async fn take(&self) -> Vec<String> {
        let mut receive = self.receive.lock().await;
        let first = receive.recv().await.expect("the queue is never closed");
        let mut bodies = vec![first];
        while bodies.len() < RECORDS {
            match receive.try_recv() {
                Ok(body) => bodies.push(body),
                Err(_) => break,
            }
        }
        bodies
    }
}

// ------------------------------------------------------------ the child

/// What each worker did.
#[derive(Default)]
struct Tally {
    finished: AtomicU64,
    redelivered: AtomicU64,
    errors: AtomicU64,
    invocations: AtomicU64,
    /// When each worker last finished a batch, µs since the start.
    last_finish_us: Vec<AtomicU64>,
}

/// One broadcast of `params.n` connections, the workers sharing `budget`
/// posts a second against a gateway at `params.quota`. Answers what it
/// measured, as JSON.
async fn child(params: Params, budget: f64) -> Value {
    let Params {
        n,
        quota,
        workers,
        concurrency,
    } = params;
    let memory = Arc::new(Memory::new());
    let registry = Registry::Memory(Arc::clone(&memory));
    let now = now_ms();
    for i in 0..n {
        let item = Item {
            connection_id: id(i),
            domain_name: "abc123defg.execute-api.us-east-1.amazonaws.com".into(),
            stage: "prod".into(),
            fields: Vec::new(),
            connected_at: now - 3_600_000,
            ttl: now / 1000 + 7_200,
        };
        registry.store(&item).await.unwrap();
    }
    let gone_ids = (0..n).filter(|&i| is_gone(i)).count();

    let gateway = Arc::new(Gateway::new(n, quota, quota / 2.0));
    let post = gateway.post();
    let queue = Queue::new();
    let tally = Arc::new(Tally {
        last_finish_us: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        ..Tally::default()
    });
    let (cpu, start) = (proc::cpu_ms(), Instant::now());

    // The workers, one Lambda instance each.
    let mut handles = Vec::new();
    for w in 0..workers {
        let worker = Arc::new(FanoutWorker::new(
            budget / workers as f64,
            concurrency,
            LEASE,
        ));
        let (registry, queue, post, tally) = (
            registry.clone(),
            queue.clone(),
            post.clone(),
            Arc::clone(&tally),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let bodies = queue.take().await;
                tokio::time::sleep(INVOKE).await;
                tally.invocations.fetch_add(1, Ordering::Relaxed);
                // As `Fanout::work`: every record of the invocation at once.
                let runs = bodies.into_iter().map(|body| {
                    let (worker, registry, post) = (&worker, &registry, post.clone());
                    async move {
                        let outcome = match FanoutBatch::from_body(&body) {
                            Ok(batch) => worker.run(registry, batch, None, post).await,
                            Err(error) => Err(error),
                        };
                        (body, outcome)
                    }
                });
                for (body, outcome) in futures_util::future::join_all(runs).await {
                    match outcome {
                        Ok(true) => {
                            tally.finished.fetch_add(1, Ordering::Relaxed);
                            tally.last_finish_us[w]
                                .store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                        }
                        Ok(false) => {
                            tally.redelivered.fetch_add(1, Ordering::Relaxed);
                            queue.put(body);
                        }
                        Err(error) => {
                            eprintln!("worker {w}: {error}");
                            tally.errors.fetch_add(1, Ordering::Relaxed);
                            queue.put(body);
                        }
                    }
                }
            }
        }));
    }

    // The dispatcher, lawcket's own, into the queue.
    let dispatched = {
        let (registry, queue) = (registry.clone(), queue.clone());
        tokio::spawn(async move {
            let data = serde_json::to_vec(MESSAGE).unwrap();
            let result = fanout_dispatch(&registry, ENDPOINT, &data, BATCH, |bodies| {
                let queue = queue.clone();
                async move {
                    tokio::time::sleep(SQS_SEND).await;
                    for body in bodies {
                        queue.put(body);
                    }
                    Ok(())
                }
            })
            .await;
            (result.unwrap(), start.elapsed())
        })
    };
    let ((_broadcast, connections, batches), dispatch_time) = dispatched.await.unwrap();
    assert_eq!(
        connections, n as u64,
        "the dispatcher read every connection"
    );
    while tally.finished.load(Ordering::Relaxed) < batches {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let finishes: Vec<u64> = tally
        .last_finish_us
        .iter()
        .map(|t| t.load(Ordering::Relaxed))
        .collect();
    let elapsed = Duration::from_micros(*finishes.iter().max().unwrap());
    let first_idle = Duration::from_micros(*finishes.iter().min().unwrap());
    let cpu = proc::cpu_ms() - cpu;
    for handle in &handles {
        handle.abort();
    }

    // Exactly once, and the gone released.
    let (mut missing, mut duplicated, mut posted_to_gone) = (0u64, 0u64, 0u64);
    let (mut released, mut kept) = (0u64, 0u64);
    for i in 0..n {
        let count = gateway.delivered[i].load(Ordering::Relaxed);
        if is_gone(i) {
            posted_to_gone += u64::from(count);
            match memory.get(&id(i)) {
                None => released += 1,
                Some(_) => kept += 1,
            }
        } else {
            match count {
                0 => missing += 1,
                1 => {}
                _ => duplicated += u64::from(count) - 1,
            }
        }
    }
    assert_eq!(memory.len(), n - gone_ids, "only the gone were released");

    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let posts = gateway.posts.load(Ordering::Relaxed);
    let secs = |d: Duration| d.as_secs_f64();
    json!({
        "budget": budget,
        "elapsed_s": secs(elapsed),
        "first_worker_idle_s": secs(first_idle),
        "dispatch_s": secs(dispatch_time),
        "t1_s": secs(gateway.time_of(0.01)),
        "t50_s": secs(gateway.time_of(0.50)),
        "t99_s": secs(gateway.time_of(0.99)),
        "batches": batches,
        "invocations": tally.invocations.load(Ordering::Relaxed),
        "posts": posts,
        "throttled": gateway.throttled.load(Ordering::Relaxed),
        "gone_answered": gateway.gone.load(Ordering::Relaxed),
        "live": (n - gone_ids) as u64,
        "missing": missing,
        "duplicated": duplicated,
        "posted_to_gone": posted_to_gone,
        "gone": gone_ids as u64,
        "released": released,
        "kept": kept,
        "redelivered": tally.redelivered.load(Ordering::Relaxed),
        "errors": tally.errors.load(Ordering::Relaxed),
        "max_in_flight": gateway.max_in_flight.load(Ordering::Relaxed),
        "mean_post_ms": gateway.held_us.load(Ordering::Relaxed) as f64 / 1000.0 / posts.max(1) as f64,
        "cpu_s": cpu / 1000.0,
        "peak_rss_mb": proc::status_kb(&status, "VmHWM:") as f64 / 1024.0,
    })
}

// ----------------------------------------------------------- the parent

#[derive(Clone, Copy, PartialEq, Debug)]
enum Row {
    /// The workers' budget is the whole quota.
    Quota,
    /// lawcket's default budget, 9,000 of the 10,000 default quota.
    Default,
    /// A budget over the quota: the pacers meet 429s.
    Over,
}

impl Row {
    fn parse(name: &str) -> Row {
        match name.trim() {
            "quota" => Row::Quota,
            "default" => Row::Default,
            "over" => Row::Over,
            other => panic!("FANOUT_ROWS: no row {other:?} (quota, default, over)"),
        }
    }

    fn budget(self, quota: f64) -> f64 {
        match self {
            Row::Quota => quota,
            Row::Default => quota * f64::from(lawcket_runtime::DEFAULT_FANOUT_RATE) / 10_000.0,
            Row::Over => quota * 1.5,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Row::Quota => "budget = quota",
            Row::Default => "lawcket's default budget (9,000 of 10,000)",
            Row::Over => "budget 1.5× the quota",
        }
    }
}

fn run_child(budget: f64) -> Value {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, budget.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the broadcast at {budget}/s failed ({}):\n{stdout}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("unexpected output of a broadcast ({e}): {stdout}"))
}

fn parent(params: Params) {
    let Params {
        n,
        quota,
        workers,
        concurrency,
    } = params;
    let runs: usize = env_or("FANOUT_RUNS", 3).max(1);
    let rows: Vec<Row> = env_or("FANOUT_ROWS", "quota,default".to_owned())
        .split(',')
        .map(Row::parse)
        .collect();
    let bound = n as f64 / quota;
    eprintln!(
        "fanout: {n} connections, quota {quota}/s (burst {}), {workers} workers × {concurrency} \
         in flight, posts {LATENCY_MIN}–{} ms, {runs} runs of {rows:?}",
        quota / 2.0,
        LATENCY_MIN + LATENCY_SPREAD
    );
    let load = loadavg();
    let mut measured: Vec<Vec<Value>> = vec![Vec::new(); rows.len()];
    for run in 0..runs {
        // Alternate the order, so drift favours no row.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for r in order {
            let budget = rows[r].budget(quota);
            let m = run_child(budget);
            let f = |key: &str| m[key].as_f64().unwrap();
            eprintln!(
                "  run {run} {:42} elapsed {:7.2} s  ratio {:.3}  dispatch {:5.2} s  \
                 1%/50%/99% at {:.2}/{:.2}/{:.2} s  first worker idle {:.2} s  429s {}  \
                 redelivered {}  max in flight {}  mean post {:.2} ms  cpu {:.1} s  peak {:.0} MB",
                rows[r].name(),
                f("elapsed_s"),
                f("elapsed_s") / bound,
                f("dispatch_s"),
                f("t1_s"),
                f("t50_s"),
                f("t99_s"),
                f("first_worker_idle_s"),
                m["throttled"],
                m["redelivered"],
                m["max_in_flight"],
                f("mean_post_ms"),
                f("cpu_s"),
                f("peak_rss_mb"),
            );
            assert_eq!(m["missing"], 0, "every live connection delivered: {m}");
            assert_eq!(m["duplicated"], 0, "no connection delivered twice: {m}");
            assert_eq!(m["posted_to_gone"], 0, "{m}");
            assert_eq!(m["released"], m["gone"], "every gone released: {m}");
            assert_eq!(m["errors"], 0, "{m}");
            measured[r].push(m);
        }
    }

    println!(
        "\nFan-out: {n} connections ({} gone), API Gateway quota {quota}/s with a burst of {}, \
         posts answered in {LATENCY_MIN}–{} ms, {workers} workers × {concurrency} in flight, \
         {BATCH} connections a message, {RECORDS} messages an invocation; median of {runs} runs\n",
        n / GONE_EVERY,
        quota / 2.0,
        LATENCY_MIN + LATENCY_SPREAD
    );
    println!(
        "Load average (1, 5, 15 min) at the start: {load}; at the end: {}\n",
        loadavg()
    );
    println!("| row | elapsed | bound N / quota | ratio | target | 429s | delivered exactly once | released | CPU | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (r, row) in rows.iter().enumerate() {
        let med = |key: &str| {
            median(
                measured[r]
                    .iter()
                    .map(|m| m[key].as_f64().unwrap())
                    .collect(),
            )
        };
        let each: Vec<String> = measured[r]
            .iter()
            .map(|m| format!("{:.2}", m["elapsed_s"].as_f64().unwrap() / bound))
            .collect();
        let budget = row.budget(quota);
        let target = match row {
            Row::Quota => "≤ 1.10".to_owned(),
            Row::Default => format!("≈ {:.2} (quota / budget)", quota / budget),
            Row::Over => String::new(),
        };
        let m = &measured[r][0];
        println!(
            "| {} ({budget}/s) | {:.2} s | {bound:.2} s | {:.3} (runs: {}) | {target} | {} | {} of {} | {} of {} | {:.1} s | {:.0} MB |",
            row.name(),
            med("elapsed_s"),
            med("elapsed_s") / bound,
            each.join(", "),
            med("throttled"),
            m["live"].as_u64().unwrap() - m["missing"].as_u64().unwrap(),
            m["live"],
            m["released"],
            m["gone"],
            med("cpu_s"),
            med("peak_rss_mb"),
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(", ")
}
