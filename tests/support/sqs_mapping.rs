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

/// What a poller has done.
#[derive(Debug, Default)]
pub struct Stats {
    /// Invocations of the function.
    pub invocations: AtomicUsize,
    /// Messages delivered to it (with redeliveries).
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
}

impl Stats {
    pub fn summary(&self) -> String {
        let n = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        let problems = self.problems.lock().unwrap();
        format!(
            "{} invocations, {} records, {} item failures, {} deleted, {} function errors, \
             {} without answer, {} invalid answers; problems: {:?}",
            n(&self.invocations),
            n(&self.records),
            n(&self.item_failures),
            n(&self.deleted),
            n(&self.function_errors),
            n(&self.no_answer),
            n(&self.invalid_answers),
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
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(poll(queue, runtime, patience, Arc::clone(&stats)));
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

async fn poll(queue: Queue, runtime: Arc<RuntimeApi>, patience: Duration, stats: Arc<Stats>) {
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
        stats.invocations.fetch_add(1, Ordering::SeqCst);
        stats.records.fetch_add(messages.len(), Ordering::SeqCst);
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
            });
            log.len() - 1
        };
        let outcome = runtime
            .invoke_within(event(&messages, &queue.arn), patience)
            .await;
        *stats.in_flight.lock().unwrap() = None;
        let took = started.elapsed();
        let finished: Vec<&Message> = match outcome {
            Some(Outcome::Response(answer)) => match failures(&answer, &messages) {
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
                        .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
                        .collect()
                }
                Err(why) => {
                    stats.log.lock().unwrap()[index].outcome = "invalid";
                    stats.invalid_answers.fetch_add(1, Ordering::SeqCst);
                    stats.problem(format!("invalid answer ({why}): {answer}"));
                    Vec::new()
                }
            },
            Some(Outcome::Error(_)) => {
                stats.log.lock().unwrap()[index].outcome = "error";
                stats.function_errors.fetch_add(1, Ordering::SeqCst);
                Vec::new()
            }
            None => {
                stats.log.lock().unwrap()[index].outcome = "no answer";
                stats.no_answer.fetch_add(1, Ordering::SeqCst);
                Vec::new()
            }
        };
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
