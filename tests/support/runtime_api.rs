//! A Lambda Runtime API (the 2018-06-01 interface lambda_runtime speaks), served
//! by the test: it hands out queued events and records what the function answers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// What the function posted to `/response`.
    Response(serde_json::Value),
    /// What the function posted to `/error` (errorType, errorMessage).
    Error(serde_json::Value),
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<(String, Vec<u8>)>>,
    queued: Notify,
    outcomes: Mutex<HashMap<String, Outcome>>,
    answered: Notify,
    init_error: Mutex<Option<String>>,
    next_id: Mutex<u64>,
    /// Invocations a function has taken (`/next`) and not answered yet.
    taken: Mutex<HashSet<String>>,
    /// Invocations nobody waits for any more: their answers are dropped.
    abandoned: Mutex<HashSet<String>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        RuntimeApi { addr, inner }
    }

    /// Environment that makes a child process a Lambda function of this API.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", "lawcket-test".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ]
    }

    /// Queues `event`, waits for the function's answer (at most 30 s).
    pub async fn invoke(&self, event: serde_json::Value) -> Outcome {
        self.invoke_raw(event.to_string().into_bytes()).await
    }

    /// Queues a payload of any bytes (Lambda's are JSON; hostile ones need
    /// not be), waits for the function's answer (at most 30 s).
    pub async fn invoke_raw(&self, event: Vec<u8>) -> Outcome {
        let patience = Duration::from_secs(30);
        match self.invoke_raw_within(event, patience).await {
            Some(outcome) => outcome,
            None => panic!(
                "the function did not answer an invocation within 30 s (init error: {:?})",
                self.init_error()
            ),
        }
    }

    /// Queues `event`, waits at most `patience` for the function's answer;
    /// `None` if none came (the function died, hangs, or is slower). The
    /// invocation is then abandoned: taken off the queue if no function took
    /// it yet, its answer dropped if one comes later.
    pub async fn invoke_within(
        &self,
        event: serde_json::Value,
        patience: Duration,
    ) -> Option<Outcome> {
        self.invoke_raw_within(event.to_string().into_bytes(), patience)
            .await
    }

    async fn invoke_raw_within(&self, event: Vec<u8>, patience: Duration) -> Option<Outcome> {
        let id = {
            let mut next = self.inner.next_id.lock().unwrap();
            *next += 1;
            format!("req-{next}")
        };
        // Abandons the invocation unless it was answered, also when this
        // future is dropped before that.
        let mut pending = Pending {
            inner: &self.inner,
            id: &id,
            answered: false,
        };
        self.inner
            .queue
            .lock()
            .unwrap()
            .push_back((id.clone(), event));
        self.inner.queued.notify_waiters();
        self.inner.queued.notify_one();
        let wait = async {
            loop {
                let answered = self.inner.answered.notified();
                if let Some(outcome) = self.inner.outcomes.lock().unwrap().remove(&id) {
                    return outcome;
                }
                answered.await;
            }
        };
        let outcome = tokio::time::timeout(patience, wait).await.ok();
        pending.answered = outcome.is_some();
        outcome
    }

    /// Invocations a function has taken and not answered yet.
    pub fn outstanding(&self) -> usize {
        self.inner.taken.lock().unwrap().len()
    }

    pub fn init_error(&self) -> Option<String> {
        self.inner.init_error.lock().unwrap().clone()
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> impl IntoResponse {
    loop {
        let queued = inner.queued.notified();
        let taken = inner.queue.lock().unwrap().pop_front();
        if let Some((id, event)) = taken {
            inner.taken.lock().unwrap().insert(id.clone());
            let mut headers = HeaderMap::new();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap(),
            );
            headers.insert(
                "lambda-runtime-deadline-ms",
                HeaderValue::from(deadline as u64),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static(
                    "arn:aws:lambda:us-east-1:123456789012:function:lawcket-test",
                ),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
            );
            return (headers, event);
        }
        queued.await;
    }
}

async fn response(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&inner, id, Outcome::Response(parse(&body)))
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    record(&inner, id, Outcome::Error(parse(&body)))
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *inner.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

fn record(inner: &Inner, id: String, outcome: Outcome) -> StatusCode {
    inner.taken.lock().unwrap().remove(&id);
    if inner.abandoned.lock().unwrap().remove(&id) {
        return StatusCode::ACCEPTED;
    }
    inner.outcomes.lock().unwrap().insert(id, outcome);
    inner.answered.notify_waiters();
    StatusCode::ACCEPTED
}

/// An invocation being waited for; abandoned when dropped unanswered.
struct Pending<'a> {
    inner: &'a Inner,
    id: &'a str,
    answered: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let inner = self.inner;
        inner.queue.lock().unwrap().retain(|(id, _)| id != self.id);
        // Taken by a function that may still answer (or has died): its
        // answer, if any, is dropped.
        if inner.taken.lock().unwrap().remove(self.id) {
            inner.abandoned.lock().unwrap().insert(self.id.to_owned());
        }
        inner.outcomes.lock().unwrap().remove(self.id);
    }
}

fn parse(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}
