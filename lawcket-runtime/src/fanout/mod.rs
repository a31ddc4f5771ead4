//! Fan-out (feature `fanout`): a broadcast too big for one invocation is
//! dispatched to an SQS queue in batches, and workers (the same binary,
//! invoked by the queue's event source mapping) post them, paced to a budget
//! they share.
//!
//! `dispatch` reads the selection and enqueues, `queue` sends to SQS,
//! `worker` posts one batch, `pacer` paces a worker, `message` is what
//! travels; the ledger that makes a batch count once lives with the
//! registry (`registry::ledger`).

mod dispatch;
mod ids;
mod message;
mod pacer;
mod queue;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement as management;

use crate::connection::{is_domain_name, is_stage};
use crate::endpoint::{override_from_env, ENDPOINT_ENV};
use crate::env;
use crate::error::{chain, Error};
use crate::registry::{Registry, Selector};

use dispatch::Cut;
pub(crate) use dispatch::Enqueued;
pub use message::Batch;
pub(crate) use message::Record;
pub use worker::{Post, Worker};

/// The budget workers share unless `LAWCKET_FANOUT_RATE` says otherwise,
/// posts a second: API Gateway's account throttle is 10,000 requests a
/// second (burst 5,000) for every API of the account and region ("Amazon
/// API Gateway quotas"), and the handlers' own posts need some of it.
pub const DEFAULT_FANOUT_RATE: u32 = 9_000;
/// Workers sharing the budget unless `LAWCKET_FANOUT_WORKERS` says otherwise:
/// deploy/'s default maximum concurrency of the event source mapping.
pub const DEFAULT_FANOUT_WORKERS: usize = 10;
/// Posts in flight per worker: at 900 posts a second and 30–50 ms a post, a
/// worker needs about 45.
const DEFAULT_CONCURRENCY: usize = 64;
/// Connections per message.
const DEFAULT_BATCH: usize = 100;
/// Parallel Scan segments the dispatcher reads a table without an index in.
const DEFAULT_SEGMENTS: usize = 4;
/// How long a batch stays with an attempt past its last recorded progress.
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How long an unfinished batch waits to be worked again in process, as a
/// message waits for its visibility timeout.
#[cfg(feature = "local")]
const REDELIVERY: Duration = Duration::from_secs(1);
/// Deliveries of a batch in process before it is given up, as deploy/'s
/// queue moves a message to its dead-letter queue (`maxReceiveCount`).
#[cfg(feature = "local")]
const MAX_RECEIVES: u32 = 5;

/// The fan-out's settings, from the environment.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) queue: Option<String>,
    pub(crate) rate: u32,
    pub(crate) workers: usize,
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) segments: usize,
    pub(crate) lease: Duration,
    /// `LAWCKET_MANAGEMENT_ENDPOINT`, read once: the one endpoint besides
    /// API Gateway's that workers post to.
    pub(crate) endpoint_override: Option<String>,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, Error> {
        Ok(Settings {
            queue: env::var("LAWCKET_FANOUT_QUEUE"),
            rate: env::count("LAWCKET_FANOUT_RATE", 1, 1_000_000)?
                .map_or(DEFAULT_FANOUT_RATE, |r| r as u32),
            workers: env::count("LAWCKET_FANOUT_WORKERS", 1, 10_000)?
                .unwrap_or(DEFAULT_FANOUT_WORKERS),
            concurrency: env::count("LAWCKET_FANOUT_CONCURRENCY", 1, 10_000)?
                .unwrap_or(DEFAULT_CONCURRENCY),
            batch: env::count("LAWCKET_FANOUT_BATCH", 1, 1_000)?.unwrap_or(DEFAULT_BATCH),
            segments: env::count("LAWCKET_FANOUT_SEGMENTS", 1, 1_000)?.unwrap_or(DEFAULT_SEGMENTS),
            lease: match env::seconds("LAWCKET_FANOUT_LEASE")? {
                Some(lease) if lease < Duration::from_secs(1) => {
                    return Err(Error::Env {
                        var: "LAWCKET_FANOUT_LEASE".into(),
                        problem: "at least 1 second: a lease shorter than a ledger write \
                                  lets a live attempt's batch be taken over"
                            .into(),
                    })
                }
                lease => lease.unwrap_or(DEFAULT_LEASE),
            },
            endpoint_override: override_from_env(),
        })
    }
}

/// [`dispatch::dispatch`] with no except and one segment (lawcket's own
/// benchmarks dispatch into a queue of their own).
#[cfg(feature = "test-util")]
pub(crate) async fn dispatch_into<S, F>(
    registry: &Registry,
    selector: Selector,
    endpoint: &str,
    data: &[u8],
    batch: usize,
    send: S,
) -> Result<Enqueued, Error>
where
    S: Fn(Vec<String>) -> F,
    F: std::future::Future<Output = Result<(), Error>>,
{
    let cut = Cut { batch, segments: 1 };
    dispatch::dispatch(registry, selector, None, endpoint, data, cut, send).await
}

/// Whether a batch's endpoint is one lawcket's dispatcher could have put in
/// it: API Gateway's own, or the configured override. Workers sign their
/// posts, so they send them nowhere else, whatever a message says.
fn trusted_endpoint(endpoint: &str, endpoint_override: Option<&str>) -> bool {
    if endpoint_override == Some(endpoint) {
        return true;
    }
    let Some((host, stage)) = endpoint
        .strip_prefix("https://")
        .and_then(|rest| rest.split_once('/'))
    else {
        return false;
    };
    is_domain_name(host)
        && host.contains(".execute-api.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
        && is_stage(stage)
}

/// A process's fan-out: the queue, and the worker its invocations share.
pub(crate) struct Fanout {
    settings: Settings,
    sqs: aws_sdk_sqs::Client,
    sdk: aws_config::SdkConfig,
    /// Bounds on one post.
    post_timeouts: TimeoutConfig,
    worker: Worker,
    /// Single-attempt management clients, one per endpoint.
    clients: Mutex<Vec<(String, management::Client)>>,
    /// The local gateway's stand-in for SQS: message bodies, and how many
    /// times each has been delivered.
    in_process: OnceLock<mpsc::UnboundedSender<(String, u32)>>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Fanout {
    /// The fan-out of a process with these SDK settings: SQS calls are
    /// bounded as DynamoDB calls are, posts as posts.
    pub(crate) fn new(
        sdk: &aws_config::SdkConfig,
        call_timeouts: &TimeoutConfig,
        post_timeouts: &TimeoutConfig,
        settings: Settings,
    ) -> Self {
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(call_timeouts.clone())
            .build();
        let rate = f64::from(settings.rate) / settings.workers as f64;
        Fanout {
            worker: Worker::new(rate, settings.concurrency, settings.lease),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            sdk: sdk.clone(),
            post_timeouts: post_timeouts.clone(),
            settings,
            clients: Mutex::default(),
            in_process: OnceLock::new(),
        }
    }

    /// Without a queue (the local gateway, typically), batches are worked in
    /// this process as SQS and Lambda would work them: each message is one
    /// invocation's record, an unfinished one is delivered again after
    /// [`REDELIVERY`], and one still unfinished after [`MAX_RECEIVES`]
    /// deliveries is dropped with an error, where SQS would move it to the
    /// dead-letter queue. With a queue configured this does nothing: the
    /// queue's own workers do the work.
    #[cfg(feature = "local")]
    pub(crate) fn work_in_process(self: &Arc<Self>, registry: Registry) {
        if self.settings.queue.is_some() {
            return;
        }
        let (messages, mut incoming) = mpsc::unbounded_channel::<(String, u32)>();
        if self.in_process.set(messages.clone()).is_err() {
            return; // already working
        }
        let fanout = Arc::clone(self);
        tokio::spawn(async move {
            let mut next_id = 0u64;
            while let Some((body, receives)) = incoming.recv().await {
                next_id += 1;
                let (fanout, registry) = (Arc::clone(&fanout), registry.clone());
                let messages = messages.clone();
                tokio::spawn(async move {
                    let record = Record {
                        message_id: next_id.to_string(),
                        body: body.clone(),
                        event_source: None,
                    };
                    let answer = fanout.work(&registry, vec![record], None).await;
                    if answer["batchItemFailures"]
                        .as_array()
                        .is_some_and(|f| f.is_empty())
                    {
                        return;
                    }
                    if receives >= MAX_RECEIVES {
                        tracing::error!(
                            receives,
                            "a fan-out batch is still unfinished; dropped (SQS would move it \
                             to the dead-letter queue)"
                        );
                        return;
                    }
                    tokio::time::sleep(REDELIVERY).await;
                    let _ = messages.send((body, receives + 1));
                });
            }
        });
    }

    /// Works the SQS records of one invocation, all at once (their posts
    /// share the worker's bound and pace), and answers the batch item
    /// failures: the messages SQS is to deliver again.
    pub(crate) async fn work(
        &self,
        registry: &Registry,
        records: Vec<Record>,
        deadline: Option<tokio::time::Instant>,
    ) -> serde_json::Value {
        let runs = records.into_iter().map(|record| async move {
            let outcome = match record.event_source.as_deref() {
                Some("aws:sqs") | None => match Batch::from_body(&record.body) {
                    // In process, batches come from this process's own dispatcher.
                    Ok(batch)
                        if self.in_process.get().is_none()
                            && !trusted_endpoint(
                                &batch.endpoint,
                                self.settings.endpoint_override.as_deref(),
                            ) =>
                    {
                        Err(Error::MalformedEvent(format!(
                            "a batch for the endpoint {:?}, which is neither API Gateway's \
                             (https://{{api-id}}.execute-api.{{region}}.amazonaws.com/{{stage}}) \
                             nor {ENDPOINT_ENV}; not posted",
                            batch.endpoint
                        )))
                    }
                    Ok(batch) => {
                        let post = self.post(&batch.endpoint);
                        self.worker.run(registry, batch, deadline, post).await
                    }
                    Err(error) => Err(error),
                },
                Some(other) => Err(Error::MalformedEvent(format!(
                    "a record from {other}; lawcket's workers read SQS records"
                ))),
            };
            match outcome {
                Ok(true) => None,
                Ok(false) => Some(record.message_id),
                Err(error) => {
                    tracing::error!(error = %chain(&error), message_id = record.message_id, "fan-out batch failed");
                    Some(record.message_id)
                }
            }
        });
        let failures: Vec<_> = futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .map(|id| serde_json::json!({ "itemIdentifier": id }))
            .collect();
        // "Reporting batch item failures" (Lambda developer guide).
        serde_json::json!({ "batchItemFailures": failures })
    }

    /// Dispatches `data` to the connections `selector` matches (but
    /// `except`), whose posts go to `endpoint`.
    pub(crate) async fn dispatch(
        &self,
        registry: &Registry,
        selector: Selector,
        except: Option<&str>,
        endpoint: &str,
        data: &[u8],
    ) -> Result<Enqueued, Error> {
        let queue = self.settings.queue.as_deref();
        let in_process = self.in_process.get();
        if queue.is_none() && in_process.is_none() {
            return Err(Error::Config(
                "dispatch() needs the fan-out queue: set LAWCKET_FANOUT_QUEUE to its URL (deploy/ \
                 does), or PublisherBuilder::queue"
                    .into(),
            ));
        }
        let sqs = &self.sqs;
        let send = |bodies: Vec<String>| async move {
            match (queue, in_process) {
                (Some(queue), _) => queue::send(sqs, queue, bodies).await,
                (None, Some(in_process)) => {
                    for body in bodies {
                        // The receiver lives as long as the process.
                        let _ = in_process.send((body, 1));
                    }
                    Ok(())
                }
                (None, None) => unreachable!("checked above"),
            }
        };
        let enqueued = dispatch::dispatch(
            registry,
            selector,
            except,
            endpoint,
            data,
            Cut {
                batch: self.settings.batch,
                segments: self.settings.segments as i32,
            },
            send,
        )
        .await?;
        tracing::info!(
            broadcast = enqueued.id,
            connections = enqueued.connections,
            batches = enqueued.batches,
            "broadcast dispatched"
        );
        Ok(enqueued)
    }

    /// The same fan-out sending to `queue`.
    pub(crate) fn with_queue(mut self, queue: String) -> Self {
        self.settings.queue = Some(queue);
        self
    }

    /// Posts through a single-attempt client for `endpoint`.
    fn post(&self, endpoint: &str) -> Post {
        let client = {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            match clients.iter().find(|(e, _)| e == endpoint) {
                Some((_, client)) => client.clone(),
                None => {
                    let client =
                        crate::management::paced_client(&self.sdk, endpoint, &self.post_timeouts);
                    // Endpoints come from lawcket's own messages: a handful.
                    clients.push((endpoint.to_owned(), client.clone()));
                    client
                }
            }
        };
        let endpoint: Arc<str> = endpoint.into();
        Arc::new(move |id, payload| {
            let (client, endpoint) = (client.clone(), Arc::clone(&endpoint));
            Box::pin(async move {
                crate::management::post(&client, &endpoint, &id, payload.to_vec()).await
            })
        })
    }
}
