//! An API Gateway management endpoint (`@connections`) served by the test: it
//! records every post, answers 410 Gone (as API Gateway does, with
//! `x-amzn-ErrorType: GoneException`) for ids marked gone, can add latency
//! (fixed or varying), throttle a share of the posts (429) and counts requests
//! in flight and deliveries per connection.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Latency varying per post within (min, max), instead of `latency`.
    latency_range: Mutex<Option<(Duration, Duration)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Every `throttle_every`th post (over all posts) is answered 429; 0: none.
    throttle_every: AtomicUsize,
    /// Posts received, whatever they were answered.
    requests: AtomicUsize,
    /// Posts answered 429 by `throttle_every`.
    throttled: AtomicUsize,
    /// Posts answered 410 Gone.
    gone_answered: AtomicUsize,
    /// When each connection id was sent an accepted post.
    deliveries: Mutex<HashMap<String, Vec<Instant>>>,
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

    /// Each post waits a latency between `min` and `max` (spread
    /// pseudo-randomly over the posts), instead of [`Connections::set_latency`]'s.
    pub fn set_latency_range(&self, min: Duration, max: Duration) {
        *self.inner.latency_range.lock().unwrap() = Some((min, max.max(min)));
    }

    /// Answers every `n`th post (counted over all posts, whatever their
    /// connection) as API Gateway answers a throttled one: 429,
    /// `x-amzn-ErrorType: LimitExceededException`, `{"message":"Too Many
    /// Requests"}`. The post is not accepted. 0 turns it off.
    pub fn throttle_every(&self, n: usize) {
        self.inner.throttle_every.store(n, Ordering::SeqCst);
    }

    /// Posts answered 429 by [`Connections::throttle_every`].
    pub fn throttled(&self) -> usize {
        self.inner.throttled.load(Ordering::SeqCst)
    }

    /// Posts answered 410 Gone.
    pub fn gone_answered(&self) -> usize {
        self.inner.gone_answered.load(Ordering::SeqCst)
    }

    /// Posts received, whatever they were answered.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Posts accepted, to any connection.
    pub fn delivered(&self) -> usize {
        self.inner
            .deliveries
            .lock()
            .unwrap()
            .values()
            .map(Vec::len)
            .sum()
    }

    /// How many posts each connection id was sent (accepted posts only).
    pub fn deliveries(&self) -> HashMap<String, usize> {
        let deliveries = self.inner.deliveries.lock().unwrap();
        deliveries
            .iter()
            .map(|(id, times)| (id.clone(), times.len()))
            .collect()
    }

    /// When each connection id was sent an accepted post.
    pub fn delivery_times(&self) -> HashMap<String, Vec<Instant>> {
        self.inner.deliveries.lock().unwrap().clone()
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
    let request = inner.requests.fetch_add(1, Ordering::SeqCst);
    let range = *inner.latency_range.lock().unwrap();
    let latency = match range {
        Some((min, max)) => {
            let spread = (max - min).as_micros() as u64 + 1;
            min + Duration::from_micros(mix(request as u64) % spread)
        }
        None => *inner.latency.lock().unwrap(),
    };
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
    let every = inner.throttle_every.load(Ordering::SeqCst);
    let throttled = flaky.is_none() && every > 0 && request % every == every - 1;
    let response = if throttled {
        inner.throttled.fetch_add(1, Ordering::SeqCst);
        (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("x-amzn-ErrorType", "LimitExceededException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"Too Many Requests"}"#,
        )
            .into_response()
    } else if let Some(status) = flaky {
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
        inner.gone_answered.fetch_add(1, Ordering::SeqCst);
        gone_response()
    } else {
        let mut deliveries = inner.deliveries.lock().unwrap();
        deliveries
            .entry(id.clone())
            .or_default()
            .push(Instant::now());
        drop(deliveries);
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

/// splitmix64: spreads consecutive numbers over all of u64.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
