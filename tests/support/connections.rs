//! An API Gateway management endpoint (`@connections`) served by the test: it
//! records every post, answers 410 Gone (as API Gateway does, with
//! `x-amzn-ErrorType: GoneException`) for ids marked gone, can add latency and
//! counts requests in flight.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub connection_id: String,
    pub body: Vec<u8>,
    /// The Authorization header (SigV4 from the SDK).
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Inner {
    posts: Mutex<Vec<Post>>,
    gone: Mutex<HashSet<String>>,
    /// id → (status to answer, how many more times)
    flaky: Mutex<std::collections::HashMap<String, (u16, usize)>>,
    latency: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub struct Connections {
    pub url: String,
    inner: Arc<Inner>,
}

impl Connections {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/@connections/{id}", post(receive))
            .route("/{stage}/@connections/{id}", post(receive_staged))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Connections { url, inner }
    }

    pub fn mark_gone(&self, connection_id: &str) {
        self.inner
            .gone
            .lock()
            .unwrap()
            .insert(connection_id.to_owned());
    }

    /// Answers `status` to the next `times` posts to `connection_id`.
    pub fn fail(&self, connection_id: &str, status: u16, times: usize) {
        self.inner
            .flaky
            .lock()
            .unwrap()
            .insert(connection_id.to_owned(), (status, times));
    }

    /// Ends every failure set up with [`Connections::fail`].
    pub fn clear_failures(&self) {
        self.inner.flaky.lock().unwrap().clear();
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.inner.latency.lock().unwrap() = latency;
    }

    pub fn posts(&self) -> Vec<Post> {
        self.inner.posts.lock().unwrap().clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn receive_staged(
    state: State<Arc<Inner>>,
    Path((_stage, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, Path(id), headers, body).await
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let latency = *inner.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let gone = inner.gone.lock().unwrap().contains(&id);
    let flaky = match inner.flaky.lock().unwrap().get_mut(&id) {
        Some((status, times)) if *times > 0 => {
            *times -= 1;
            Some(*status)
        }
        _ => None,
    };
    let response = if let Some(status) = flaky {
        let kind = if status == 429 {
            "LimitExceededException"
        } else {
            "InternalServerErrorException"
        };
        (
            StatusCode::from_u16(status).unwrap(),
            [("x-amzn-ErrorType", kind)],
            r#"{"message":"injected"}"#,
        )
            .into_response()
    } else if gone {
        gone_response()
    } else {
        inner.posts.lock().unwrap().push(Post {
            connection_id: id,
            body: body.to_vec(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        StatusCode::OK.into_response()
    };
    inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

/// What API Gateway answers a post to a closed connection: 410 with the error
/// type the SDK reads as GoneException.
pub fn gone_response() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        StatusCode::GONE,
        [
            ("x-amzn-ErrorType", "GoneException"),
            ("content-type", "application/json"),
        ],
        r#"{"message":null}"#,
    )
        .into_response()
}
