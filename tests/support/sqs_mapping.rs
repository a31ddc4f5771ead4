//! An SQS event source mapping, emulated: what Lambda runs between a queue and
//! a function ("Using Lambda with Amazon SQS"). A poller per function
//! instance receives up to 10 messages (long polling), delivers them as one
//! SQS event through the instance's Runtime API, and deletes the messages the
//! function finished: every one not listed in the answer's
//! `batchItemFailures` ("Reporting batch item failures"). On a function
//! error, an answer Lambda could not read, or no answer in time it deletes
//! nothing, and SQS delivers the messages again once their visibility
//! timeout runs out.
//!
//! With [`Duplicates`] it also delivers some messages twice, as a standard
//! queue's at-least-once delivery may: to another instance at the same time,
//! or again after the first delivery was answered as done and before the
//! message is deleted. A message is deleted once a delivery answered it as
//! done (unless a later one answered it as failed); one no delivery answered
//! as done stays in the queue.
//!
//! It needs aws-sdk-sqs, which only the root crate's tests have, so it is
//! not in `support/mod.rs` (the benchmarks include that too): a test takes
//! it with `#[path = "support/sqs_mapping.rs"] mod sqs_mapping;` beside
//! `mod support;`.

#![allow(dead_code)] // not every test uses every part

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::support::runtime_api::{Outcome, RuntimeApi};

const REGION: &str = "us-east-1";

/// A queue the pollers read.
#[derive(Clone)]
pub struct Queue {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub arn: String,
}

impl Queue {
    /// Creates the standard queue `name` with this visibility timeout (seconds).
    pub async fn create(sqs: aws_sdk_sqs::Client, name: &str, visibility_timeout: u32) -> Queue {
        use aws_sdk_sqs::types::QueueAttributeName;
        let url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.to_string(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"))
            .queue_url
            .expect("a queue URL");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("queue attributes of {name}: {e:?}"));
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_else(|| format!("arn:aws:sqs:{REGION}:123456789012:{name}"));
        Queue { sqs, url, arn }
    }

    /// Messages in the queue, visible or not (SQS's approximate counts; moto's
    /// are exact).
    pub async fn messages(&self) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap_or_else(|e| panic!("queue attributes: {e:?}"));
        let attributes = out.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| {
            attributes
                .get(name)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
    }
}

/// SQS's at-least-once delivery, emulated: a standard queue may hand a
/// message to two consumers at once, or again after it was processed and
/// before it was deleted ("Amazon SQS at-least-once delivery"). Lambda then
/// invokes another instance with it. The poller hands these second
/// deliveries to an instance of their own, so one is never queued behind the
/// poller's own invocation: the two attempts really run at once.
#[derive(Clone)]
pub struct Duplicates {
    /// The instance that receives the second deliveries.
    pub runtime: Arc<RuntimeApi>,
    /// Every `concurrent_every`th message the poller receives (counted over
    /// its life) is also delivered to `runtime`, at the same time as to the
    /// poller's own instance. 0: never.
    pub concurrent_every: usize,
    /// Every `after_every`th message received, once answered as done and
    /// before it is deleted, is delivered to `runtime` again. 0: never.
    pub after_every: usize,
}

/// What a poller has done.
#[derive(Debug, Default)]
pub struct Stats {
    /// Invocations of the function (a second delivery's too).
    pub invocations: AtomicUsize,
    /// Messages received from the queue (with SQS's redeliveries after the
    /// visibility timeout; not counting the duplicates below).
    pub records: AtomicUsize,
    /// Entries of `batchItemFailures` it answered.
    pub item_failures: AtomicUsize,
    /// Messages deleted after an answer.
    pub deleted: AtomicUsize,
    /// Invocations answered with an error.
    pub function_errors: AtomicUsize,
    /// Invocations with no answer in time.
    pub no_answer: AtomicUsize,
    /// Answers Lambda would read as the whole batch failed (not a batch
    /// response, or an item identifier that is no message of the batch).
    pub invalid_answers: AtomicUsize,
    /// Messages delivered twice at once ([`Duplicates::concurrent_every`]).
    pub concurrent_duplicates: AtomicUsize,
    /// Of those, the ones one of the two deliveries (or both) answered as
    /// failed: the other attempt held the batch.
    pub concurrent_refused: AtomicUsize,
    /// Messages delivered again after they were answered as done
    /// ([`Duplicates::after_every`]).
    pub late_duplicates: AtomicUsize,
    /// Of those, the ones not answered as done the second time (a finished
    /// batch must be: these are kept in the queue, as SQS would).
    pub late_refused: AtomicUsize,
    /// The bodies of the messages of the invocation in flight, if any.
    pub in_flight: Mutex<Option<Vec<String>>>,
    /// Every message delivered, by message id: its body.
    pub bodies: Mutex<HashMap<String, String>>,
    /// What went wrong talking to SQS, and invalid answers.
    pub problems: Mutex<Vec<String>>,
    /// Every invocation, in order.
    pub log: Mutex<Vec<Invocation>>,
}

/// One invocation of the function.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub started: Instant,
    /// How long until the answer; `None` while awaited or without answer.
    pub took: Option<Duration>,
    pub message_ids: Vec<String>,
    /// `ok` (answered), `error`, `invalid`, `no answer`, or `in flight`.
    pub outcome: &'static str,
    /// The message ids answered as failed.
    pub failed: Vec<String>,
    /// `received` (the poller's own invocation), `duplicate` (a second
    /// delivery at the same time) or `late duplicate` (a second delivery
    /// after the first was answered as done).
    pub delivery: &'static str,
}

impl Stats {
    pub fn summary(&self) -> String {
        let n = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        let problems = self.problems.lock().unwrap();
        format!(
            "{} invocations, {} records, {} item failures, {} deleted, {} function errors, \
             {} without answer, {} invalid answers, {} delivered twice at once ({} of them \
             refused by one), {} delivered again when done ({} of them refused); problems: {:?}",
            n(&self.invocations),
            n(&self.records),
            n(&self.item_failures),
            n(&self.deleted),
            n(&self.function_errors),
            n(&self.no_answer),
            n(&self.invalid_answers),
            n(&self.concurrent_duplicates),
            n(&self.concurrent_refused),
            n(&self.late_duplicates),
            n(&self.late_refused),
            &problems[..problems.len().min(5)],
        )
    }

    fn problem(&self, problem: String) {
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 100 {
            problems.push(problem);
        }
    }
}

/// One instance's poller: receives, invokes, deletes, until stopped.
pub struct Poller {
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Poller {
    /// Starts polling `queue` for the function behind `runtime`, waiting at
    /// most `patience` for each answer (the function's timeout).
    pub fn start(queue: Queue, runtime: Arc<RuntimeApi>, patience: Duration) -> Poller {
        Poller::start_with(queue, runtime, patience, None)
    }

    /// [`Poller::start`], delivering some messages twice as `duplicates`
    /// says.
    pub fn start_with(
        queue: Queue,
        runtime: Arc<RuntimeApi>,
        patience: Duration,
        duplicates: Option<Duplicates>,
    ) -> Poller {
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(poll(
            queue,
            runtime,
            patience,
            duplicates,
            Arc::clone(&stats),
        ));
        Poller { stats, task }
    }

    /// Stops polling at once (an invocation in flight is abandoned and its
    /// messages are left to come back after their visibility timeout).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the `n`th thing (counted from 1) is one of every `every`th.
fn every(n: usize, every: usize) -> bool {
    every > 0 && n.is_multiple_of(every)
}

async fn poll(
    queue: Queue,
    runtime: Arc<RuntimeApi>,
    patience: Duration,
    duplicates: Option<Duplicates>,
    stats: Arc<Stats>,
) {
    loop {
        let received = queue
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(error) => {
                stats.problem(format!("ReceiveMessage: {error:?}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // The number of each message among all this poller received, from 1.
        let first = stats.records.fetch_add(messages.len(), Ordering::SeqCst) + 1;
        let numbered = || (first..).zip(messages.iter());
        stats
            .bodies
            .lock()
            .unwrap()
            .extend(messages.iter().map(|m| {
                (
                    m.message_id().unwrap_or_default().to_owned(),
                    m.body().unwrap_or_default().to_owned(),
                )
            }));
        *stats.in_flight.lock().unwrap() = Some(
            messages
                .iter()
                .map(|m| m.body().unwrap_or_default().to_owned())
                .collect(),
        );
        // The messages SQS also hands to a second consumer at once.
        let twice: Vec<Message> = match &duplicates {
            Some(d) => numbered()
                .filter(|(n, _)| every(*n, d.concurrent_every))
                .map(|(_, m)| m.clone())
                .collect(),
            None => Vec::new(),
        };
        let own = deliver(
            &runtime, &messages, &queue.arn, patience, &stats, "received",
        );
        let second = async {
            match (&duplicates, twice.is_empty()) {
                (Some(d), false) => {
                    deliver(
                        &d.runtime,
                        &twice,
                        &queue.arn,
                        patience,
                        &stats,
                        "duplicate",
                    )
                    .await
                }
                _ => HashSet::new(),
            }
        };
        let (own, second) = tokio::join!(own, second);
        *stats.in_flight.lock().unwrap() = None;
        // A message either delivery answered as done is done: the attempt
        // that finished it recorded it in the ledger.
        let mut done: HashSet<String> = own.union(&second).cloned().collect();
        for m in &twice {
            let id = m.message_id().unwrap_or_default();
            stats.concurrent_duplicates.fetch_add(1, Ordering::SeqCst);
            if !(own.contains(id) && second.contains(id)) {
                stats.concurrent_refused.fetch_add(1, Ordering::SeqCst);
            }
        }
        // The messages answered as done that SQS delivers again before the
        // poller deletes them.
        if let Some(d) = &duplicates {
            let again: Vec<Message> = numbered()
                .filter(|(n, m)| {
                    every(*n, d.after_every) && done.contains(m.message_id().unwrap_or_default())
                })
                .map(|(_, m)| m.clone())
                .collect();
            if !again.is_empty() {
                stats
                    .late_duplicates
                    .fetch_add(again.len(), Ordering::SeqCst);
                let answered = deliver(
                    &d.runtime,
                    &again,
                    &queue.arn,
                    patience,
                    &stats,
                    "late duplicate",
                )
                .await;
                for m in &again {
                    let id = m.message_id().unwrap_or_default();
                    if !answered.contains(id) {
                        // The latest delivery asks SQS to deliver it again.
                        stats.late_refused.fetch_add(1, Ordering::SeqCst);
                        stats.problem(format!(
                            "message {id}, answered as done, was not when delivered again"
                        ));
                        done.remove(id);
                    }
                }
            }
        }
        let finished: Vec<&Message> = messages
            .iter()
            .filter(|m| done.contains(m.message_id().unwrap_or_default()))
            .collect();
        if finished.is_empty() {
            continue;
        }
        let entries = finished
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        match queue
            .sqs
            .delete_message_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                stats
                    .deleted
                    .fetch_add(out.successful().len(), Ordering::SeqCst);
                for failed in out.failed() {
                    stats.problem(format!("DeleteMessageBatch entry failed: {failed:?}"));
                }
            }
            Err(error) => stats.problem(format!("DeleteMessageBatch: {error:?}")),
        }
    }
}

/// Invokes the function behind `runtime` with `messages` as one SQS event,
/// logs the invocation as `delivery`, and answers the ids of the messages
/// it answered as done: none on a function error, an answer Lambda could
/// not read, or no answer in time.
async fn deliver(
    runtime: &RuntimeApi,
    messages: &[Message],
    arn: &str,
    patience: Duration,
    stats: &Stats,
    delivery: &'static str,
) -> HashSet<String> {
    stats.invocations.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let index = {
        let mut log = stats.log.lock().unwrap();
        log.push(Invocation {
            started,
            took: None,
            message_ids: messages
                .iter()
                .map(|m| m.message_id().unwrap_or_default().to_owned())
                .collect(),
            outcome: "in flight",
            failed: Vec::new(),
            delivery,
        });
        log.len() - 1
    };
    let outcome = runtime.invoke_within(event(messages, arn), patience).await;
    let took = started.elapsed();
    match outcome {
        Some(Outcome::Response(answer)) => match failures(&answer, messages) {
            Ok(failed) => {
                stats
                    .item_failures
                    .fetch_add(failed.len(), Ordering::SeqCst);
                let mut log = stats.log.lock().unwrap();
                log[index].took = Some(took);
                log[index].outcome = "ok";
                log[index].failed = failed.iter().cloned().collect();
                drop(log);
                messages
                    .iter()
                    .map(|m| m.message_id().unwrap_or_default().to_owned())
                    .filter(|id| !failed.contains(id))
                    .collect()
            }
            Err(why) => {
                stats.log.lock().unwrap()[index].outcome = "invalid";
                stats.invalid_answers.fetch_add(1, Ordering::SeqCst);
                stats.problem(format!("invalid answer ({why}): {answer}"));
                HashSet::new()
            }
        },
        Some(Outcome::Error(_)) => {
            stats.log.lock().unwrap()[index].outcome = "error";
            stats.function_errors.fetch_add(1, Ordering::SeqCst);
            HashSet::new()
        }
        None => {
            stats.log.lock().unwrap()[index].outcome = "no answer";
            stats.no_answer.fetch_add(1, Ordering::SeqCst);
            HashSet::new()
        }
    }
}

/// The SQS event Lambda delivers for `messages` of the queue `arn`.
pub fn event(messages: &[Message], arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The message ids an answer lists as failed, as Lambda reads a partial
/// batch response: no answer, no list or an empty one is complete success;
/// an entry without a string `itemIdentifier` naming a message of the batch
/// fails the whole batch (`Err`).
fn failures(answer: &Value, messages: &[Message]) -> Result<HashSet<String>, String> {
    let ids: HashSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
    let list = match answer {
        Value::Null => return Ok(HashSet::new()),
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(HashSet::new()),
            Some(Value::Array(list)) => list,
            Some(other) => return Err(format!("batchItemFailures is {other}")),
        },
        other => return Err(format!("the answer is {other}")),
    };
    list.iter()
        .map(|entry| match entry["itemIdentifier"].as_str() {
            Some(id) if ids.contains(id) => Ok(id.to_owned()),
            _ => Err(format!("entry {entry} names no message of the batch")),
        })
        .collect()
}
