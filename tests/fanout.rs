//! The fan-out (feature `fanout`) end to end, with real components: 10,000
//! connections in moto's DynamoDB, the queue in moto's SQS, three instances
//! of the `announce` example as Lambda functions (child processes served by
//! Runtime APIs here), an event source mapping emulated here
//! (support/sqs_mapping.rs; in the first test it delivers some messages
//! twice, as SQS may), and a `@connections` endpoint here with latency, gone
//! connections and throttled posts.
//!
//! One handler invocation dispatches the broadcast; the workers post it. The
//! endpoint counts what each connection received, the table shows what was
//! released, and `Publisher::report` what the ledger counted.
//!
//! moto runs with each DynamoDB request applied alone (support/moto_server.py):
//! the workers write the same ledger records at once, and moto's threads
//! would otherwise interleave inside a conditional write.

#[path = "support/sqs_mapping.rs"]
mod sqs_mapping;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures_util::StreamExt;
use lawcket::Publisher;
use lawcket_runtime::BroadcastReport;
use serde_json::{json, Value};
use sqs_mapping::{Duplicates, Poller, Queue};
use support::connections::Connections;
use support::fixture;
use support::function::Function;
use support::moto::{self, Moto};
use support::runtime_api::{Outcome, RuntimeApi};
use tokio::time::Instant;

/// The table the example was built for (`env!` in examples/announce.rs).
const TABLE: &str = env!("CONNECTIONS_TABLE");
const STAGE: &str = "prod";
const DOMAIN: &str = "abc123defg.execute-api.us-east-1.amazonaws.com";
const CONNECTIONS: usize = 10_000;
/// Every 50th connection is gone (answers 410): 200 of them.
const GONE_EVERY: usize = 50;
/// Connections per SQS message at most (lawcket's default batch).
const BATCH: usize = 100;
/// The Scan segments the dispatcher reads the table in (lawcket's default):
/// each segment cuts its own batches, so up to SEGMENTS - 1 batches more
/// than CONNECTIONS / BATCH are partial.
const SEGMENTS: usize = 4;
const WORKERS: usize = 3;
/// Posts in flight per worker (LAWCKET_FANOUT_CONCURRENCY).
const CONCURRENCY: usize = 8;
/// worker.rs's UNRECORDED_MAX: at most 50 of a batch's posts are ever started
/// and not yet recorded in its ledger record (docs/fanout.md).
const UNRECORDED_MAX: usize = 50;
/// Every 500th post is answered 429 (0.2%, about 20 a broadcast): enough to
/// prove a throttled post is posted again, not dropped. A worker halves its
/// pace at each 429 and wins it back over seconds, so a higher share slows
/// the broadcast down a lot (2%: 45 s instead of 15-20 here).
const THROTTLE_EVERY: usize = 500;
/// The queue's visibility timeout, seconds; the workers' lease is shorter,
/// so an attempt that dies has lost its batch before SQS delivers it again.
const VISIBILITY_TIMEOUT: u32 = 3;
const LEASE_SECS: &str = "2";
/// How long the emulated mapping waits for an invocation (the function's
/// timeout).
const PATIENCE: Duration = Duration::from_secs(20);
/// How long a broadcast may take before the test gives up (a failure bound,
/// not a measurement: it takes a fraction of it).
const DEADLINE: Duration = Duration::from_secs(60);
const LEDGER_PREFIX: &str = "lawcket#fanout#";
/// The items a broadcast's tally is spread over (ledger.rs's TALLY_SHARDS):
/// batch `n` counts in `{LEDGER_PREFIX}{broadcast}#tally#{n % TALLY_SHARDS}`.
const TALLY_SHARDS: usize = 16;
/// With duplicates on, every 7th message a poller receives is also delivered
/// to a second instance at the same time (two attempts race for its batch),
/// and every 11th is delivered again once answered as done, before it is
/// deleted (its batch is finished): SQS's at-least-once delivery.
const DUPLICATE_EVERY: usize = 7;
const LATE_DUPLICATE_EVERY: usize = 11;
/// Kills tried at most, until one finds its victim holding a batch with
/// connections still to post.
const KILLS: usize = 3;

/// Both tests run three workers and a moto each: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One Lambda instance: its Runtime API, its process, and the mapping's
/// poller for it.
struct Worker {
    runtime: Arc<RuntimeApi>,
    function: Function,
    poller: Poller,
    /// Processes this instance ran before (killed), for their logs.
    retired: Vec<Function>,
    /// Pollers it had before, for their counts.
    retired_pollers: Vec<Poller>,
    /// The messages its poller delivers twice, and where to.
    duplicates: Option<Duplicates>,
}

struct Rig {
    moto: Moto,
    dynamo: aws_sdk_dynamodb::Client,
    queue: Queue,
    endpoint: Connections,
    publisher: Publisher,
    ids: Vec<String>,
    live: HashSet<String>,
    gone: HashSet<String>,
    workers: Vec<Worker>,
    /// The instances that receive the second deliveries of a message, one
    /// per worker (with duplicates on).
    spares: Vec<Function>,
}

impl Rig {
    /// moto of its own (so the example's compile-time table name is this
    /// test's alone) with the table, the queue and the connections; the
    /// endpoint; the workers, polled; with `duplicates`, each poller delivers
    /// some messages twice (DUPLICATE_EVERY, LATE_DUPLICATE_EVERY), to an
    /// instance of its own.
    async fn start(duplicates: bool) -> Rig {
        // Several processes write the same ledger records at once: moto with
        // each DynamoDB request applied alone, so its conditional writes are
        // as atomic as DynamoDB's.
        let moto = moto::start_serialized();
        let sdk = moto.sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        moto::create_table(&dynamo, TABLE).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = Queue::create(sqs, "lawcket-fanout", VISIBILITY_TIMEOUT).await;

        let started = std::time::Instant::now();
        let ids: Vec<String> = (0..CONNECTIONS)
            .map(|i| format!("{i:05}Fanoutxyh3b="))
            .collect();
        let gone: HashSet<String> = ids.iter().step_by(GONE_EVERY).cloned().collect();
        let live: HashSet<String> = ids
            .iter()
            .filter(|id| !gone.contains(*id))
            .cloned()
            .collect();
        seed(&dynamo, &ids).await;
        eprintln!(
            "seeded {CONNECTIONS} connections in {:?}",
            started.elapsed()
        );

        let endpoint = Connections::start().await;
        endpoint.set_latency_range(Duration::from_millis(2), Duration::from_millis(10));
        endpoint.throttle_every(THROTTLE_EVERY);
        for id in &gone {
            endpoint.mark_gone(id);
        }
        let publisher = Publisher::builder()
            .table(TABLE)
            .endpoint(&endpoint.url)
            .sdk_config(&sdk)
            .build()
            .await
            .unwrap_or_else(|e| panic!("{}", support::chain(&e)));
        let mut rig = Rig {
            moto,
            dynamo,
            queue,
            endpoint,
            publisher,
            ids,
            live,
            gone,
            workers: Vec::new(),
            spares: Vec::new(),
        };
        for _ in 0..WORKERS {
            let duplicates = if duplicates {
                let spare = Arc::new(RuntimeApi::start().await);
                rig.spares
                    .push(Function::spawn("announce", rig.worker_env(&spare)));
                Some(Duplicates {
                    runtime: spare,
                    concurrent_every: DUPLICATE_EVERY,
                    after_every: LATE_DUPLICATE_EVERY,
                })
            } else {
                None
            };
            let runtime = Arc::new(RuntimeApi::start().await);
            let function = Function::spawn("announce", rig.worker_env(&runtime));
            let poller = Poller::start_with(
                rig.queue.clone(),
                Arc::clone(&runtime),
                PATIENCE,
                duplicates.clone(),
            );
            rig.workers.push(Worker {
                runtime,
                function,
                poller,
                retired: Vec::new(),
                retired_pollers: Vec::new(),
                duplicates,
            });
        }
        rig
    }

    fn worker_env(&self, runtime: &RuntimeApi) -> Vec<(&'static str, String)> {
        let mut env = runtime.env();
        env.extend(self.moto.env());
        env.extend([
            ("LAWCKET_MANAGEMENT_ENDPOINT", self.endpoint.url.clone()),
            ("LAWCKET_FANOUT_QUEUE", self.queue.url.clone()),
            ("LAWCKET_FANOUT_RATE", "3000".into()),
            ("LAWCKET_FANOUT_WORKERS", WORKERS.to_string()),
            ("LAWCKET_FANOUT_CONCURRENCY", CONCURRENCY.to_string()),
            ("LAWCKET_FANOUT_LEASE", LEASE_SECS.into()),
            // moto applies DynamoDB requests one at a time, and a page of the
            // dispatcher's Scan holds it for 0.3-0.5 s: with four segments
            // read at once and the workers writing the ledger, a request can
            // wait there longer than lawcket's 2 s attempt timeout, and the
            // default 3 attempts in 5 s failed the dispatch (2 runs in 10).
            // DynamoDB makes no request wait for another; more attempts in
            // more time keep this test about the fan-out.
            ("LAWCKET_DYNAMODB_TIMEOUT", "20".into()),
            ("AWS_MAX_ATTEMPTS", "10".into()),
        ]);
        env
    }

    /// Sends `{"action":"announce"}` from a registered connection to worker
    /// 0, as API Gateway would; answers the broadcast's id and its number of
    /// batches.
    async fn announce(&self, text: &str) -> (String, usize) {
        let sender = self.ids[1].clone();
        assert!(self.live.contains(&sender));
        let mut message = fixture("message-json.json");
        assert_eq!(message["requestContext"]["stage"], STAGE);
        message["requestContext"]["connectionId"] = json!(sender);
        message["body"] = json!(json!({ "action": "announce", "text": text }).to_string());
        let outcome = self.workers[0].runtime.invoke(message).await;
        let Outcome::Response(response) = outcome else {
            panic!("the dispatch failed: {outcome:?}\n{}", self.diagnosis(None))
        };
        assert_eq!(response["statusCode"], 200, "{}", self.diagnosis(None));
        let reply: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(reply["type"], "dispatched", "{reply}");
        // Everyone of the stage, the sender included.
        assert_eq!(reply["connections"], CONNECTIONS, "{reply}");
        let batches = reply["batches"].as_u64().expect("a number of batches") as usize;
        let least = CONNECTIONS.div_ceil(BATCH);
        assert!(
            (least..least + SEGMENTS).contains(&batches),
            "{CONNECTIONS} connections in {SEGMENTS} segments cut in {batches} batches: {reply}"
        );
        let id = reply["broadcast"].as_str().expect("a broadcast id");
        (id.to_owned(), batches)
    }

    async fn report(&self, broadcast: &str) -> BroadcastReport {
        self.publisher
            .report(broadcast)
            .await
            .unwrap_or_else(|e| panic!("{}", support::chain(&e)))
            .expect("the broadcast's record")
    }

    /// The report once every batch is finished, and the queue once empty
    /// (a batch finished by one attempt is deleted after the attempts that
    /// found it busy).
    async fn finish(&self, broadcast: &str) -> BroadcastReport {
        let deadline = Instant::now() + DEADLINE;
        let report = loop {
            let report = self.report(broadcast).await;
            if report.is_finished() {
                break report;
            }
            assert!(
                Instant::now() < deadline,
                "broadcast {broadcast} not finished after {DEADLINE:?}: {report:?}\n{}",
                self.diagnosis(Some(&report))
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        loop {
            let left = self.queue.messages().await;
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline + Duration::from_secs(20),
                "every batch is finished but {left} messages are still in the queue\n{}",
                self.diagnosis(Some(&report))
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for worker in &self.workers {
            worker.poller.stop();
        }
        report
    }

    /// Waits until the endpoint has accepted more than `posts` posts.
    async fn wait_delivered(&self, posts: usize) {
        let deadline = Instant::now() + DEADLINE;
        while self.endpoint.delivered() <= posts {
            assert!(
                Instant::now() < deadline,
                "the endpoint accepted only {} posts after {DEADLINE:?}\n{}",
                self.endpoint.delivered(),
                self.diagnosis(None)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILLs the process of a worker that has an invocation in flight, as
    /// a crashed Lambda instance ends: its poller is stopped without an
    /// answer (so it deletes nothing), and a fresh process and poller take
    /// the instance's place, as Lambda starts a new instance. Answers the
    /// worker, the bodies of the messages the killed invocation held, those
    /// of its batches no other invocation held, and when it was killed.
    ///
    /// The victim is a worker with a batch of its own (no other invocation in
    /// flight holds it, so no other attempt can) that has live connections
    /// not posted to yet. A batch another invocation also holds may be that
    /// one's in the ledger: SQS delivers a message again once its visibility
    /// timeout runs out, and an invocation can outlast it (worker 0's poller
    /// receives while its instance dispatches, and its invocation waits).
    async fn kill_a_busy_worker(
        &mut self,
    ) -> (usize, Vec<String>, BTreeSet<u64>, std::time::Instant) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let busy = (0..self.workers.len()).find(|&w| {
                let worker = &self.workers[w];
                worker.runtime.outstanding() > 0
                    && worker.poller.stats.in_flight.lock().unwrap().is_some()
                    && !self.unfinished(&self.own_batches(w)).is_empty()
            });
            let Some(victim) = busy else {
                assert!(
                    Instant::now() < deadline,
                    "no worker had an invocation in flight with a batch of its own still to \
                     post\n{}",
                    self.diagnosis(None)
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let own = self.own_batches(victim);
            self.workers[victim].function.kill();
            let killed_at = std::time::Instant::now();
            // What its poller still awaits is what the dead process was
            // working on (unless it had just answered: then try another).
            let held = self.workers[victim]
                .poller
                .stats
                .in_flight
                .lock()
                .unwrap()
                .clone();
            self.workers[victim].poller.stop();
            let env = self.worker_env(&self.workers[victim].runtime);
            let worker = &mut self.workers[victim];
            let fresh = Function::spawn("announce", env);
            worker
                .retired
                .push(std::mem::replace(&mut worker.function, fresh));
            let poller = Poller::start_with(
                self.queue.clone(),
                Arc::clone(&worker.runtime),
                PATIENCE,
                worker.duplicates.clone(),
            );
            worker
                .retired_pollers
                .push(std::mem::replace(&mut worker.poller, poller));
            if let Some(held) = held {
                return (victim, held, own, killed_at);
            }
        }
    }

    /// Every poller that fed a worker (stopped ones too), with the worker's
    /// number.
    fn pollers(&self) -> impl Iterator<Item = (usize, &Poller)> {
        self.workers.iter().enumerate().flat_map(|(i, worker)| {
            worker
                .retired_pollers
                .iter()
                .chain([&worker.poller])
                .map(move |poller| (i, poller))
        })
    }

    /// The batch number of every message received, by message id.
    fn seq_of_messages(&self) -> HashMap<String, u64> {
        let mut seq_of = HashMap::new();
        for (_, poller) in self.pollers() {
            for (id, body) in poller.stats.bodies.lock().unwrap().iter() {
                let batch: Value = serde_json::from_str(body).unwrap();
                seq_of.insert(id.clone(), batch["seq"].as_u64().unwrap());
            }
        }
        seq_of
    }

    /// The batches of worker `w`'s invocation in flight that no other
    /// invocation in flight holds: no poller awaits another delivery of
    /// them, and no stopped poller abandoned one (its attempt may have died
    /// holding the batch).
    fn own_batches(&self, w: usize) -> BTreeSet<u64> {
        let mut holders: HashMap<String, usize> = HashMap::new();
        let seq_of = self.seq_of_messages();
        let mut mine: Vec<String> = Vec::new();
        for (i, poller) in self.pollers() {
            for invocation in poller.stats.log.lock().unwrap().iter() {
                if invocation.outcome != "in flight" {
                    continue;
                }
                for id in &invocation.message_ids {
                    *holders.entry(id.clone()).or_default() += 1;
                }
                if i == w && std::ptr::eq(poller, &self.workers[w].poller) {
                    mine.extend(invocation.message_ids.iter().cloned());
                }
            }
        }
        mine.iter()
            .filter(|id| holders[*id] == 1)
            .map(|id| seq_of[id])
            .collect()
    }

    /// Of the batches `seqs` (of this broadcast), those with a live
    /// connection the endpoint has accepted no post to: unfinished (every
    /// post of a batch is accepted before it is recorded finished; a gone
    /// connection's post never is).
    fn unfinished(&self, seqs: &BTreeSet<u64>) -> BTreeSet<u64> {
        if seqs.is_empty() {
            return BTreeSet::new();
        }
        let deliveries = self.endpoint.deliveries();
        let mut unfinished = BTreeSet::new();
        for (_, poller) in self.pollers() {
            for body in poller.stats.bodies.lock().unwrap().values() {
                let batch: Value = serde_json::from_str(body).unwrap();
                let seq = batch["seq"].as_u64().unwrap();
                if !seqs.contains(&seq) {
                    continue;
                }
                let pending = batch["connections"].as_array().unwrap().iter().any(|pair| {
                    let id = pair[0].as_str().unwrap();
                    self.live.contains(id) && !deliveries.contains_key(id)
                });
                if pending {
                    unfinished.insert(seq);
                }
            }
        }
        unfinished
    }

    /// The invocations that held any of the batches `seqs`, in order, with
    /// their times from `t0`, how long they took, and which of those batches
    /// they answered as failed: for a failure message.
    fn timeline(&self, seqs: &BTreeSet<u64>, t0: std::time::Instant) -> String {
        let seq_of = self.seq_of_messages();
        let mut invocations = Vec::new();
        for (i, poller) in self.pollers() {
            for invocation in poller.stats.log.lock().unwrap().iter() {
                invocations.push((i, invocation.clone()));
            }
        }
        invocations.sort_by_key(|(_, invocation)| invocation.started);
        let ms = |at: std::time::Instant| match at.checked_duration_since(t0) {
            Some(after) => after.as_millis() as i128,
            None => -(t0.duration_since(at).as_millis() as i128),
        };
        let mut text = String::new();
        for (i, invocation) in invocations {
            let held: Vec<String> = invocation
                .message_ids
                .iter()
                .filter(|id| seq_of.get(*id).is_some_and(|seq| seqs.contains(seq)))
                .map(|id| {
                    let failed = invocation.failed.contains(id);
                    format!("{}{}", seq_of[id], if failed { "(failed)" } else { "" })
                })
                .collect();
            if !held.is_empty() {
                text.push_str(&format!(
                    "  worker {i} ({}) at {} ms for {:?}: {} {held:?}\n",
                    invocation.delivery,
                    ms(invocation.started),
                    invocation.took,
                    invocation.outcome
                ));
            }
        }
        text
    }

    /// For each batch the killed attempt held: how many of its connections
    /// the endpoint had accepted a post to, and what its ledger record said
    /// was done (read just after the kill, while the dead attempt's lease
    /// still keeps others off it): what the next attempt will post again.
    /// Answers that text and the batches of its `own` (no other invocation
    /// held them) still unfinished at the kill: with a live connection the
    /// endpoint had accepted no post to (every post of a batch is accepted
    /// before it is recorded finished; a gone connection's post never is).
    async fn ledger_at_kill(
        &self,
        broadcast: &str,
        held: &[String],
        own: &BTreeSet<u64>,
    ) -> (String, BTreeSet<u64>) {
        // Posts the endpoint was answering when the process died.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let deliveries = self.endpoint.deliveries();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut text = String::new();
        let mut unfinished = BTreeSet::new();
        for body in held {
            let batch: Value = serde_json::from_str(body).unwrap();
            let seq = batch["seq"].as_u64().unwrap();
            let ids: Vec<&str> = batch["connections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| pair[0].as_str().unwrap())
                .collect();
            let live = ids.iter().filter(|id| self.live.contains(**id)).count();
            let posted = ids
                .iter()
                .filter(|id| deliveries.contains_key(**id))
                .count();
            if posted < live && own.contains(&seq) {
                unfinished.insert(seq);
            }
            let key = format!("{LEDGER_PREFIX}{broadcast}#{seq}");
            let record = moto::item(&self.dynamo, TABLE, &key)
                .await
                .unwrap_or_default();
            // The ledger's attribute names (ledger.rs): for this text only.
            let set = |name: &str| {
                record
                    .get(name)
                    .and_then(|v| v.as_ss().ok())
                    .map_or(0, Vec::len)
            };
            let number = |name: &str| {
                record
                    .get(name)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
            };
            text.push_str(&format!(
                "  batch {seq}{}: {} connections ({live} live), {posted} accepted ({}); ledger: \
                 {} delivered, {} released, {} failed recorded, lease {}, {}\n",
                if own.contains(&seq) {
                    ""
                } else {
                    " (another invocation held it too)"
                },
                ids.len(),
                if posted < live {
                    "unfinished"
                } else {
                    "all posted"
                },
                set("lawcket_delivered"),
                set("lawcket_released"),
                set("lawcket_failed"),
                number("lawcket_leaseUntil").map_or("none".into(), |l| format!("{:+} ms", l - now)),
                if record.contains_key("lawcket_finishedAt") {
                    "finished"
                } else {
                    "unfinished"
                },
            ));
        }
        (text, unfinished)
    }

    /// The connections in the table, and the ledger's records.
    async fn table(&self) -> (HashSet<String>, HashSet<String>) {
        moto::stored_ids(&self.dynamo, TABLE)
            .await
            .into_iter()
            .partition(|id| !id.starts_with(LEDGER_PREFIX))
    }

    /// What the endpoint and the mapping saw, and the tail of each worker's
    /// log, for a failure message.
    fn diagnosis(&self, report: Option<&BroadcastReport>) -> String {
        let e = &self.endpoint;
        let mut text = format!(
            "report: {report:?}\nendpoint: {} posts received, {} accepted ({} connections), {} \
             answered 429, {} answered 410, at most {} in flight\n",
            e.requests(),
            e.delivered(),
            e.deliveries().len(),
            e.throttled(),
            e.gone_answered(),
            e.max_in_flight(),
        );
        for (i, worker) in self.workers.iter().enumerate() {
            text.push_str(&format!(
                "worker {i}: {} outstanding; poller: {}\n",
                worker.runtime.outstanding(),
                worker.poller.stats.summary()
            ));
            for old in &worker.retired_pollers {
                text.push_str(&format!("  earlier poller: {}\n", old.stats.summary()));
            }
            for (label, function) in worker
                .retired
                .iter()
                .map(|f| ("killed process", f))
                .chain([("process", &worker.function)])
            {
                text.push_str(&log_tail(&format!("worker {i} {label}"), function));
            }
        }
        for (i, spare) in self.spares.iter().enumerate() {
            text.push_str(&log_tail(
                &format!("the instance of worker {i}'s duplicates"),
                spare,
            ));
        }
        text
    }

    /// Every poller's count of one kind of duplicate delivery, summed.
    fn duplicates(&self, count: impl Fn(&sqs_mapping::Stats) -> &AtomicUsize) -> usize {
        self.workers
            .iter()
            .flat_map(|w| w.retired_pollers.iter().chain([&w.poller]))
            .map(|p| count(&p.stats).load(Ordering::SeqCst))
            .sum()
    }
}

/// The last 40 lines of `function`'s log, headed by `label`.
fn log_tail(label: &str, function: &Function) -> String {
    let log = function.log();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(40)..];
    format!(
        "--- {label}: last {} of {} log lines ---\n{}\n",
        tail.len(),
        lines.len(),
        tail.join("\n")
    )
}

/// Writes a connection item for each id (BatchWriteItem, 25 a request, 4
/// requests at once), as `$connect` stores them: opened two hours ago (far
/// past the grace in which a 410 means "still connecting"), live for hours.
async fn seed(dynamo: &aws_sdk_dynamodb::Client, ids: &[String]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let connected_at = now.as_millis() as i64 - 2 * 3_600_000;
    let ttl = now.as_secs() as i64 + 3 * 3_600;
    let writes = ids.chunks(25).map(|chunk| {
        let requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|id| {
                let put = PutRequest::builder()
                    .item("connectionId", AttributeValue::S(id.clone()))
                    .item("domainName", AttributeValue::S(DOMAIN.into()))
                    .item("stage", AttributeValue::S(STAGE.into()))
                    .item("connectedAt", AttributeValue::N(connected_at.to_string()))
                    .item("ttl", AttributeValue::N(ttl.to_string()))
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        async move {
            let mut requests = requests;
            for _ in 0..10 {
                let out = dynamo
                    .batch_write_item()
                    .request_items(TABLE, requests)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("seeding the table: {e:?}"));
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(TABLE))
                    .unwrap_or_default();
                if requests.is_empty() {
                    return;
                }
            }
            panic!("seeding the table: items still unprocessed after 10 attempts");
        }
    });
    futures_util::stream::iter(writes)
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// The announcement every connection is to receive.
fn announcement(text: &str) -> Value {
    json!({ "type": "announcement", "text": text })
}

/// The endpoint received nothing but `text`'s announcement, and no post to
/// an id that is no live connection (a gone id is answered 410, never
/// accepted; a ledger record is no connection).
/// How many times each connection received the broadcast; fails if a live
/// connection never did.
fn received_by_every_live_connection(rig: &Rig) -> HashMap<String, usize> {
    let deliveries = rig.endpoint.deliveries();
    let missing: Vec<&String> = rig
        .live
        .iter()
        .filter(|id| !deliveries.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} live connections never received it: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    deliveries
}

fn check_posts(rig: &Rig, text: &str) {
    let expected = announcement(text);
    for post in rig.endpoint.posts() {
        let body: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(body, expected, "posted to {}", post.connection_id);
    }
    let strangers: Vec<String> = rig
        .endpoint
        .deliveries()
        .into_keys()
        .filter(|id| !rig.live.contains(id))
        .collect();
    assert!(
        strangers.is_empty(),
        "accepted posts to ids that are no live connection: {strangers:?}"
    );
}

/// The gone connections were released; the live ones stay; beside them the
/// table holds the ledger: the broadcast's record, one per batch and its
/// tally's, none of them a connection (no stage, so no publish selects it).
async fn check_table(rig: &Rig, broadcast: &str, batches: usize) {
    let (connections, ledger) = rig.table().await;
    let kept_gone: BTreeSet<&String> = connections.intersection(&rig.gone).collect();
    assert!(
        kept_gone.is_empty(),
        "{} gone connections were not released: {:?}",
        kept_gone.len(),
        kept_gone.iter().take(10).collect::<Vec<_>>()
    );
    let lost: BTreeSet<&String> = rig.live.difference(&connections).collect();
    assert!(
        lost.is_empty(),
        "{} live connections were released: {:?}",
        lost.len(),
        lost.iter().take(10).collect::<Vec<_>>()
    );
    assert_eq!(
        connections, rig.live,
        "the table holds the live connections"
    );
    // The payload travels in the messages (it is small): no record of it.
    let expected: HashSet<String> = std::iter::once(format!("{LEDGER_PREFIX}{broadcast}"))
        .chain((0..batches).map(|seq| format!("{LEDGER_PREFIX}{broadcast}#{seq}")))
        .chain(
            (0..batches.min(TALLY_SHARDS))
                .map(|shard| format!("{LEDGER_PREFIX}{broadcast}#tally#{shard}")),
        )
        .collect();
    assert_eq!(ledger, expected, "the ledger's records");
    for key in [
        format!("{LEDGER_PREFIX}{broadcast}"),
        format!("{LEDGER_PREFIX}{broadcast}#0"),
        format!("{LEDGER_PREFIX}{broadcast}#tally#0"),
    ] {
        let record = moto::item(&rig.dynamo, TABLE, &key).await.unwrap();
        assert!(!record.contains_key("stage"), "{key}: {record:?}");
        assert!(record.contains_key("ttl"), "{key} is reaped: {record:?}");
    }
}

/// What the dispatcher enqueued, as the workers received it: one message per
/// batch, numbered from 0, of at most BATCH connections, each connection of
/// the table in exactly one batch.
fn check_batches(rig: &Rig, broadcast: &str, batches: usize) {
    let mut bodies: HashMap<String, String> = HashMap::new();
    for worker in &rig.workers {
        for poller in worker.retired_pollers.iter().chain([&worker.poller]) {
            bodies.extend(poller.stats.bodies.lock().unwrap().clone());
        }
    }
    assert_eq!(bodies.len(), batches, "one message per batch");
    let mut seqs = BTreeSet::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    for body in bodies.values() {
        let batch: Value = serde_json::from_str(body).unwrap();
        assert_eq!(batch["broadcast"], broadcast);
        assert_eq!(batch["endpoint"], rig.endpoint.url.as_str());
        let seq = batch["seq"].as_u64().unwrap();
        assert!(seqs.insert(seq), "batch {seq} enqueued twice");
        let connections = batch["connections"].as_array().unwrap();
        assert!(
            (1..=BATCH).contains(&connections.len()),
            "batch {seq} holds {} connections",
            connections.len()
        );
        for pair in connections {
            let id = pair[0].as_str().unwrap().to_owned();
            if let Some(other) = ids.insert(id.clone(), seq) {
                panic!("{id} is in batches {other} and {seq}");
            }
        }
    }
    assert_eq!(seqs, (0..batches as u64).collect(), "batch numbers");
    let all: HashSet<String> = rig.ids.iter().cloned().collect();
    assert_eq!(
        ids.into_keys().collect::<HashSet<_>>(),
        all,
        "every connection batched"
    );
}

/// The batch each connection was enqueued in, from the messages the workers
/// received.
fn batch_of(rig: &Rig) -> HashMap<String, u64> {
    let mut batch_of = HashMap::new();
    for worker in &rig.workers {
        for poller in worker.retired_pollers.iter().chain([&worker.poller]) {
            for body in poller.stats.bodies.lock().unwrap().values() {
                let batch: Value = serde_json::from_str(body).unwrap();
                let seq = batch["seq"].as_u64().unwrap();
                for pair in batch["connections"].as_array().unwrap() {
                    batch_of.insert(pair[0].as_str().unwrap().to_owned(), seq);
                }
            }
        }
    }
    batch_of
}

/// Each live connection once, each gone one released, in one count.
fn check_report(rig: &Rig, report: &BroadcastReport, batches: usize) {
    let counts = (
        report.delivered,
        report.released,
        report.failed,
        report.batches_done,
        report.batches,
        report.connections,
    );
    assert_eq!(
        counts,
        (
            rig.live.len() as u64,
            rig.gone.len() as u64,
            0,
            batches as u64,
            Some(batches as u64),
            Some(CONNECTIONS as u64),
        ),
        "(delivered, released, failed, batches_done, batches, connections): {}",
        rig.diagnosis(Some(report))
    );
}

/// Every invocation was answered with a partial batch response Lambda reads.
fn check_mapping(rig: &Rig) {
    for (i, worker) in rig.workers.iter().enumerate() {
        let stats = &worker.poller.stats;
        let n = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        assert_eq!(
            (n(&stats.invalid_answers), n(&stats.function_errors)),
            (0, 0),
            "worker {i} answered what Lambda could not read, or failed: {}",
            stats.summary()
        );
    }
}

/// Ten thousand connections, three workers, throttled and gone posts, and
/// SQS delivering some messages twice (at once to another instance, or again
/// once done): each live connection receives the announcement exactly once,
/// each gone one is released, and the report counts each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_connection_exactly_once() {
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let rig = Rig::start(true).await;
    let setup = started.elapsed();
    let text = "maintenance at noon";
    let dispatched_at = std::time::Instant::now();
    let (broadcast, batches) = rig.announce(text).await;
    let report = rig.finish(&broadcast).await;
    let concurrent = rig.duplicates(|s| &s.concurrent_duplicates);
    let refused = rig.duplicates(|s| &s.concurrent_refused);
    let late = rig.duplicates(|s| &s.late_duplicates);
    let late_refused = rig.duplicates(|s| &s.late_refused);
    eprintln!(
        "set up in {setup:?}, broadcast in {:?}; {concurrent} messages delivered twice at once \
         ({refused} of them answered as failed by one attempt), {late} delivered again once \
         done ({late_refused} of them not answered as done)\n{}",
        started.elapsed() - setup,
        rig.diagnosis(Some(&report))
    );

    check_report(&rig, &report, batches);
    check_batches(&rig, &broadcast, batches);
    check_posts(&rig, text);
    let deliveries = received_by_every_live_connection(&rig);
    let twice: HashMap<&String, &usize> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        let batch_of = batch_of(&rig);
        let seqs: BTreeSet<u64> = twice.keys().map(|id| batch_of[*id]).collect();
        panic!(
            "{} connections received it more than once: {:?}\nthe invocations holding their \
             batches (ms from the dispatch):\n{}",
            twice.len(),
            twice.iter().take(10).collect::<Vec<_>>(),
            rig.timeline(&seqs, dispatched_at)
        );
    }
    // Exactly once although SQS delivered batches twice: some were, at once
    // (and the ledger's lease had one attempt leave the batch to the other),
    // and some again once finished (and were answered as done, posting
    // nothing).
    assert!(
        concurrent > 0 && late > 0,
        "no message was delivered twice ({concurrent} at once, {late} once done): the test \
         proves nothing of the dedup\n{}",
        rig.diagnosis(Some(&report))
    );
    assert!(
        refused > 0,
        "of {concurrent} messages delivered to two attempts at once, none was answered as \
         failed by either: the attempts never met in the ledger\n{}",
        rig.diagnosis(Some(&report))
    );
    assert_eq!(
        late_refused,
        0,
        "a finished batch delivered again was not answered as done\n{}",
        rig.diagnosis(Some(&report))
    );
    // The throttle was met, and nothing it answered was dropped.
    assert!(rig.endpoint.throttled() > 0, "no post was throttled");
    check_table(&rig, &broadcast, batches).await;
    check_mapping(&rig);
}

/// A worker SIGKILLed mid-invocation, while a batch it held still had
/// connections to post, loses nothing: SQS delivers its batches again, the
/// ledger hands them to another attempt with what the dead one recorded,
/// and only what it had not recorded yet is posted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let mut rig = Rig::start(false).await;
    let setup = started.elapsed();
    let text = "all hands at three";
    let (broadcast, batches) = rig.announce(text).await;
    rig.wait_delivered(1_000).await;
    // A kill proves something only if its victim was still working: it held
    // a batch of its own (no other invocation held it) with live connections
    // not yet posted to. If, once it is dead, the endpoint shows all of
    // those posted (it was answering), another busy worker is killed, KILLS
    // times at most.
    let mut held = Vec::new();
    let mut at_kill = String::new();
    let mut kills = Vec::new();
    let mut unfinished = BTreeSet::new();
    while unfinished.is_empty() {
        assert!(
            kills.len() < KILLS,
            "{KILLS} workers were killed, none while it held a batch of its own with \
             connections still to post; the batches they held, just after each kill:\n\
             {at_kill}{}",
            rig.diagnosis(None)
        );
        let (victim, victim_held, own, killed_at) = rig.kill_a_busy_worker().await;
        let (text, victim_unfinished) = rig.ledger_at_kill(&broadcast, &victim_held, &own).await;
        let delivered_at_kill = rig.endpoint.delivered();
        at_kill.push_str(&format!(
            "worker {victim} killed after {delivered_at_kill} accepted posts, holding {} batches \
             ({} of its own, {} of them unfinished):\n{text}",
            victim_held.len(),
            own.len(),
            victim_unfinished.len(),
        ));
        assert!(!victim_held.is_empty());
        held.extend(victim_held);
        unfinished = victim_unfinished;
        kills.push(killed_at);
    }
    let killed_at = kills[0];
    let report = rig.finish(&broadcast).await;
    eprintln!(
        "set up in {setup:?}, broadcast in {:?}; {} kill(s):\n{at_kill}{}",
        started.elapsed() - setup,
        kills.len(),
        rig.diagnosis(Some(&report))
    );

    // Counted once each, however often posted.
    check_report(&rig, &report, batches);
    check_batches(&rig, &broadcast, batches);
    check_posts(&rig, text);
    let deliveries = received_by_every_live_connection(&rig);
    // Posted twice: only connections of the batches the killed attempts held.
    let mut held_batches: HashMap<String, u64> = HashMap::new();
    // How many killed attempts held each batch (one, but for a batch SQS
    // delivered to two victims).
    let mut holders: BTreeMap<u64, usize> = BTreeMap::new();
    for body in &held {
        let batch: Value = serde_json::from_str(body).unwrap();
        assert_eq!(batch["broadcast"], broadcast.as_str());
        let seq = batch["seq"].as_u64().unwrap();
        *holders.entry(seq).or_default() += 1;
        for pair in batch["connections"].as_array().unwrap() {
            held_batches.insert(pair[0].as_str().unwrap().to_owned(), seq);
        }
    }
    let twice: HashMap<&String, usize> = deliveries
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| (id, *n))
        .collect();
    let elsewhere: Vec<(&&String, &usize)> = twice
        .iter()
        .filter(|(id, _)| !held_batches.contains_key(**id))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "connections of batches no killed attempt held received it more than once: \
         {elsewhere:?}"
    );
    assert!(
        twice.values().all(|n| *n == 2),
        "a connection received it more than twice: {twice:?}"
    );
    assert!(rig.endpoint.throttled() > 0, "no post was throttled");
    check_table(&rig, &broadcast, batches).await;
    check_mapping(&rig);

    // Exactly once but for what the dead attempt had posted and not yet
    // recorded in the ledger (docs/fanout.md, "What is guaranteed"): a post
    // holds one of its batch's UNRECORDED_MAX places from before it starts
    // until its outcome is recorded, so at most that many a batch. Its
    // invocation held up to 10 batches (one SQS event).
    let mut per_batch: BTreeMap<u64, usize> = BTreeMap::new();
    for id in twice.keys() {
        *per_batch.entry(held_batches[*id]).or_default() += 1;
    }
    let per_batch_bound = UNRECORDED_MAX;
    let bound = held.len() * UNRECORDED_MAX;
    let over: BTreeMap<&u64, &usize> = per_batch
        .iter()
        .filter(|(seq, n)| **n > holders[*seq] * per_batch_bound)
        .collect();
    eprintln!(
        "{} connections received it twice (at most {bound} allowed; {per_batch_bound} a batch), \
         by batch: {per_batch:?}",
        twice.len(),
    );
    let times = rig.endpoint.delivery_times();
    let before_kill = twice.keys().filter(|id| times[**id][0] < killed_at).count();
    let explain = || {
        let seqs: BTreeSet<u64> = per_batch.keys().copied().collect();
        format!(
            "{before_kill} of them first received it before the (first) kill, {} after.\nThe \
             batches the killed attempts held, just after each kill:\n{at_kill}The invocations \
             holding the batches posted twice (ms from the first kill):\n{}",
            twice.len() - before_kill,
            rig.timeline(&seqs, killed_at)
        )
    };
    assert!(
        over.is_empty(),
        "more connections of a batch received it twice than the {per_batch_bound} each killed \
         attempt holding it can have had in flight or unrecorded: {over:?} (by batch: \
         {per_batch:?})\n{}",
        explain()
    );
    assert!(
        twice.len() <= bound,
        "{} connections received it twice, more than the {bound} the killed attempts can have \
         had in flight or unrecorded\n{}",
        twice.len(),
        explain()
    );
}
