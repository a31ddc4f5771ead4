//! [`Publisher`]: one connection, or a mass publish paged through the
//! registry with bounded concurrency; and its [`PublisherBuilder`] for use
//! outside a handler.

use std::sync::Arc;

use aws_sdk_apigatewaymanagement as management;
use futures_util::StreamExt;
use serde::Serialize;

use crate::clock::now_ms;
use crate::connection::{is_domain_name, is_stage};
use crate::endpoint::{override_from_env, ENDPOINT_ENV};
use crate::error::Error;
use crate::host::{Host, Sdk, Store};
use crate::limits::{CONNECTING_GRACE_MS, DEFAULT_CONCURRENCY, MAX_MESSAGE_BYTES};
use crate::management::{post, Outcome};
use crate::registry::{Entry, Registry, Selector};
use crate::report::{Failure, Report};
use crate::sync::SyncValue;

/// Sends messages to connections of one API stage: one connection, every
/// connection, or those whose sync field matches. Cloning is cheap and shares
/// the SDK clients.
///
/// Inside a handler, use [`Publish`](crate::Publish), which has the same
/// methods. Outside one (a scheduled Lambda, a queue consumer, a CLI), build a
/// `Publisher` once and keep it:
///
/// ```no_run
/// # async fn demo() -> Result<(), lawcket::Error> {
/// let publisher = lawcket::Publisher::builder()
///     .table("lawcket-connections")
///     .endpoint("https://abc123defg.execute-api.us-east-1.amazonaws.com/prod")
///     .index("channel", "channel-index")
///     .build()
///     .await?;
/// let report = publisher.matching("channel", "#general").send(&"maintenance at noon").await?;
/// assert!(report.is_complete());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    endpoint: String,
    client: management::Client,
    registry: Registry,
    stage: Option<String>,
    concurrency: usize,
    #[cfg(feature = "fanout")]
    fanout: Option<Arc<crate::fanout::Fanout>>,
}

impl Publisher {
    /// Starts building a publisher.
    pub fn builder() -> PublisherBuilder {
        PublisherBuilder::default()
    }

    pub(crate) fn from_parts(
        client: management::Client,
        endpoint: String,
        registry: Registry,
        stage: Option<String>,
        concurrency: usize,
    ) -> Self {
        Publisher {
            inner: Arc::new(Inner {
                endpoint,
                client,
                registry,
                stage,
                concurrency,
                #[cfg(feature = "fanout")]
                fanout: None,
            }),
        }
    }

    /// The same publisher, dispatching through `fanout`.
    #[cfg(feature = "fanout")]
    pub(crate) fn with_fanout(self, fanout: Arc<crate::fanout::Fanout>) -> Self {
        let inner = Inner {
            fanout: Some(fanout),
            ..Inner::clone(&self.inner)
        };
        Publisher {
            inner: Arc::new(inner),
        }
    }

    /// The fan-out this publisher dispatches through.
    #[cfg(feature = "fanout")]
    pub(crate) fn fanout(&self) -> Result<&crate::fanout::Fanout, Error> {
        self.inner.fanout.as_deref().ok_or_else(|| {
            Error::Config("this publisher was built without lawcket's fan-out".into())
        })
    }

    /// The registry connections are read from.
    #[cfg(feature = "fanout")]
    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The API stage this publisher reaches, if known.
    #[cfg(feature = "fanout")]
    pub(crate) fn stage(&self) -> Option<&str> {
        self.inner.stage.as_deref()
    }

    /// The management endpoint posts go to.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The management client posts go through.
    pub(crate) fn client(&self) -> &management::Client {
        &self.inner.client
    }

    /// Sends `value` as JSON to one connection. On 410 Gone the connection is
    /// released and [`Error::Gone`] returned.
    pub async fn to<T: Serialize + ?Sized>(
        &self,
        connection_id: &str,
        value: &T,
    ) -> Result<(), Error> {
        let data = serde_json::to_vec(value).map_err(Error::Serialize)?;
        self.to_bytes(connection_id, data).await
    }

    /// Sends bytes to one connection. On 410 Gone the connection is released and
    /// [`Error::Gone`] returned, unless it opened so recently that its
    /// `$connect` may still be running (then it is kept and the post fails).
    pub async fn to_bytes(
        &self,
        connection_id: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.post_one(connection_id, data.into(), Opened::MaybeStillConnecting)
            .await
    }

    /// Sends bytes to the sender of the message being handled: its `$connect`
    /// has completed, so a 410 proves it gone and it is released at once.
    pub(crate) async fn to_sender(&self, connection_id: &str, data: Vec<u8>) -> Result<(), Error> {
        self.post_one(connection_id, data, Opened::Connected).await
    }

    async fn post_one(
        &self,
        connection_id: &str,
        data: Vec<u8>,
        opened: Opened,
    ) -> Result<(), Error> {
        check_size(&data)?;
        let registry = &self.inner.registry;
        match self.post(connection_id, data).await {
            Outcome::Delivered => Ok(()),
            Outcome::Gone => {
                let released = match opened {
                    Opened::Connected => registry.release(connection_id).await.map(|()| true)?,
                    Opened::MaybeStillConnecting => {
                        registry.release_gone(connection_id, now_ms()).await?
                    }
                };
                if !released {
                    return Err(self.still_connecting(connection_id));
                }
                tracing::info!(connection_id, "connection is gone (410); released it");
                Err(Error::Gone {
                    connection_id: connection_id.to_owned(),
                })
            }
            Outcome::Failed(error) | Outcome::Throttled(error) => Err(error),
        }
    }

    /// Every connection of this stage.
    pub fn everyone(&self) -> Broadcast<'_> {
        Broadcast {
            publisher: self,
            field: None,
            except: None,
        }
    }

    /// The connections whose sync field `field` equals `value`.
    pub fn matching(&self, field: &str, value: impl Into<SyncValue>) -> Broadcast<'_> {
        Broadcast {
            publisher: self,
            field: Some((field.to_owned(), value.into())),
            except: None,
        }
    }

    async fn post(&self, connection_id: &str, data: Vec<u8>) -> Outcome {
        post(
            &self.inner.client,
            &self.inner.endpoint,
            connection_id,
            data,
        )
        .await
    }

    /// Posts to every selected connection, then releases the gone in batches.
    ///
    /// The posts are one stream across pages, `concurrency` of them in flight
    /// until the last: the next page is read while the current one is
    /// posted, so posting never waits for a page to drain. One page waits in
    /// a channel of one slot, read only once that slot is free, so at most
    /// two pages of ids are held, however large the table.
    async fn broadcast(
        &self,
        selector: Selector,
        except: Option<&str>,
        data: Vec<u8>,
    ) -> Result<Report, Error> {
        check_size(&data)?;
        let registry = &self.inner.registry;
        let (pages, mut next_page) = tokio::sync::mpsc::channel::<Vec<Entry>>(1);
        let read = async move {
            let mut cursor = None;
            // A page is read only once the slot is free. (`Err`: the posts
            // stopped taking pages, which they do only after the last.)
            while let Ok(slot) = pages.reserve().await {
                let (mut entries, next) = registry.page(&selector, cursor).await?;
                entries.retain(|e| Some(e.connection_id.as_str()) != except);
                slot.send(entries);
                if next.is_none() {
                    break;
                }
                cursor = next;
            }
            // Dropping `pages` ends the posts' stream once they took every page.
            Ok::<(), Error>(())
        };
        let entries = futures_util::stream::poll_fn(|cx| next_page.poll_recv(cx))
            .flat_map(futures_util::stream::iter);
        let mut report = Report::default();
        // On a failed read, the pages already read are still posted.
        let ((), read) = tokio::join!(self.post_all(entries, &data, &mut report), read);
        // The gone found so far are released even when a later page failed.
        if !report.released.is_empty() {
            tracing::info!(count = report.released.len(), "releasing gone connections");
            registry.release_many(&report.released).await?;
        }
        read.map(|()| report)
    }

    fn still_connecting(&self, connection_id: &str) -> Error {
        Error::Post {
            connection_id: connection_id.to_owned(),
            endpoint: self.inner.endpoint.clone(),
            message: format!(
                "410 Gone, but the connection opened less than {} s ago and may still be \
                 connecting; it was kept",
                CONNECTING_GRACE_MS / 1000
            ),
            source: None,
        }
    }

    /// Posts to every entry, at most `concurrency` at a time, tallying the outcomes.
    async fn post_all(
        &self,
        entries: impl futures_util::Stream<Item = Entry>,
        data: &[u8],
        report: &mut Report,
    ) {
        // Each post future owns what it uses (a cheap clone of the publisher),
        // which keeps the handler's future `Send` without lifetime puzzles.
        let posts = entries.map(|entry| {
            let publisher = self.clone();
            let data = data.to_vec();
            async move {
                let outcome = publisher.post(&entry.connection_id, data).await;
                (entry, outcome)
            }
        });
        let mut outcomes = std::pin::pin!(posts.buffer_unordered(self.inner.concurrency));
        while let Some((entry, outcome)) = outcomes.next().await {
            let id = entry.connection_id;
            match outcome {
                Outcome::Delivered => report.delivered += 1,
                // The grace is counted to the answer: a publish can outlast it.
                Outcome::Gone
                    if entry
                        .connected_at
                        .is_some_and(|at| at >= now_ms() - CONNECTING_GRACE_MS) =>
                {
                    report.failed.push(Failure {
                        error: self.still_connecting(&id),
                        connection_id: id,
                    })
                }
                Outcome::Gone => report.released.push(id),
                Outcome::Failed(error) | Outcome::Throttled(error) => report.failed.push(Failure {
                    connection_id: id,
                    error,
                }),
            }
        }
    }
}

/// What is known of a connection a post answered 410 for.
enum Opened {
    /// It sent the message being handled: its `$connect` has completed.
    Connected,
    /// Any other id: it may have opened moments ago, with its `$connect`
    /// still running (posts to it answer 410 until that completes).
    MaybeStillConnecting,
}

/// A mass publish being set up: [`Publisher::everyone`] or
/// [`Publisher::matching`], optionally [`except`](Broadcast::except) one
/// connection, then [`send`](Broadcast::send).
#[derive(Debug)]
#[must_use = "a broadcast does nothing until `send` or `send_bytes` is awaited"]
pub struct Broadcast<'a> {
    pub(crate) publisher: &'a Publisher,
    pub(crate) field: Option<(String, SyncValue)>,
    pub(crate) except: Option<String>,
}

impl Broadcast<'_> {
    /// Leaves one connection out (typically the sender).
    pub fn except(mut self, connection_id: &str) -> Self {
        self.except = Some(connection_id.to_owned());
        self
    }

    /// Sends `value` as JSON to every selected connection.
    pub async fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<Report, Error> {
        let data = serde_json::to_vec(value).map_err(Error::Serialize)?;
        self.send_bytes(data).await
    }

    /// Sends bytes to every selected connection.
    pub async fn send_bytes(self, data: impl Into<Vec<u8>>) -> Result<Report, Error> {
        let selector = Selector {
            field: self.field,
            stage: self.publisher.inner.stage.clone(),
            segment: None,
        };
        self.publisher
            .broadcast(selector, self.except.as_deref(), data.into())
            .await
    }
}

/// API Gateway refuses payloads over 128 KiB: say so once, not once per connection.
pub(crate) fn check_size(data: &[u8]) -> Result<(), Error> {
    match data.len() {
        size if size > MAX_MESSAGE_BYTES => Err(Error::TooLarge {
            size,
            limit: MAX_MESSAGE_BYTES,
        }),
        _ => Ok(()),
    }
}

/// Builds a [`Publisher`]. A table and an endpoint (or a domain and stage) are
/// required.
#[derive(Debug, Default)]
pub struct PublisherBuilder {
    table: Option<String>,
    endpoint: Option<String>,
    domain: Option<(String, String)>,
    stage: Option<String>,
    indexes: Vec<(String, String)>,
    concurrency: Option<usize>,
    page_size: Option<i32>,
    sdk: Option<aws_config::SdkConfig>,
    #[cfg(feature = "fanout")]
    queue: Option<String>,
}

impl PublisherBuilder {
    /// The connections table.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// The management endpoint, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
    /// Its last path segment is taken as the stage. [`ENDPOINT_ENV`] wins over it.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into().trim_end_matches('/').to_owned();
        if let Some((_, stage)) = endpoint
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
        {
            self.stage = Some(stage.rsplit('/').next().unwrap_or(stage).to_owned());
        }
        self.endpoint = Some(endpoint);
        self
    }

    /// The endpoint from the API's domain name and stage, as in a connection's
    /// `domainName` and `stage`.
    /// Both are checked as lawcket checks them in events (a host name, one
    /// path segment) when the publisher is built.
    pub fn domain(mut self, domain_name: &str, stage: &str) -> Self {
        self.domain = Some((domain_name.to_owned(), stage.to_owned()));
        self.endpoint = Some(format!("https://{domain_name}/{stage}"));
        self.stage = Some(stage.to_owned());
        self
    }

    /// A global secondary index whose hash key is the sync field `field`, so
    /// [`Publisher::matching`] on it Queries instead of scanning. The index must
    /// project `stage`, `ttl` and `connectedAt` (or ALL).
    pub fn index(mut self, field: impl Into<String>, index: impl Into<String>) -> Self {
        self.indexes.push((field.into(), index.into()));
        self
    }

    /// Posts in flight at once during a mass publish (default
    /// [`DEFAULT_CONCURRENCY`]).
    pub fn concurrency(mut self, posts: usize) -> Self {
        self.concurrency = Some(posts.max(1));
        self
    }

    /// Items read from the table per page during a mass publish (default
    /// 1,000: about 50 KB of ids).
    pub fn page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    /// The fan-out's SQS queue URL, for [`Broadcast::dispatch`] (default:
    /// `LAWCKET_FANOUT_QUEUE`). Feature `fanout`.
    #[cfg(feature = "fanout")]
    pub fn queue(mut self, url: impl Into<String>) -> Self {
        self.queue = Some(url.into());
        self
    }

    /// SDK settings to build the clients from (default: loaded from the
    /// environment, as the AWS SDK does).
    pub fn sdk_config(mut self, sdk: &aws_config::SdkConfig) -> Self {
        self.sdk = Some(sdk.clone());
        self
    }

    /// Builds the publisher, loading the SDK settings if none were given.
    pub async fn build(self) -> Result<Publisher, Error> {
        let table = self
            .table
            .ok_or_else(|| Error::Config("Publisher::builder() needs .table(...)".into()))?;
        if let Some((domain, stage)) = &self.domain {
            if !is_domain_name(domain) || !is_stage(stage) {
                return Err(Error::Config(format!(
                    "Publisher::builder().domain({domain:?}, {stage:?}): expected a host name \
                     and a stage name (letters, digits, - and _)"
                )));
            }
        }
        let endpoint = override_from_env().or(self.endpoint).ok_or_else(|| {
            Error::Config(format!(
                "Publisher::builder() needs .endpoint(...) or .domain(...), or {ENDPOINT_ENV} set"
            ))
        })?;
        let store = Store::Dynamo {
            table,
            indexes: &self.indexes,
            page_size: self.page_size,
        };
        let sdk = self
            .sdk
            .map_or(Sdk::Environment, |sdk| Sdk::Given(Box::new(sdk)));
        let host = Host::build(store, sdk).await?;
        let publisher = Publisher::from_parts(
            crate::management::client(&host.sdk, &endpoint, &host.timeouts.post),
            endpoint,
            host.registry.clone(),
            self.stage,
            self.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        );
        #[cfg(feature = "fanout")]
        let publisher = {
            let fanout = host.fanout()?;
            let fanout = match self.queue {
                Some(queue) => fanout.with_queue(queue),
                None => fanout,
            };
            publisher.with_fanout(Arc::new(fanout))
        };
        Ok(publisher)
    }
}

#[cfg(all(test, feature = "local"))] // the endpoint is served with axum
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use tokio::sync::oneshot;

    use super::*;
    use crate::host::{load, Timeouts};
    use crate::registry::{Item, Memory};

    const PAGE: usize = 10;
    const CONCURRENCY: usize = 4;

    /// A `@connections` endpoint that answers the first post of each page only
    /// once a post of the next page has arrived (ids are `c000`, `c001`, ...,
    /// read in that order). A publisher that finishes a page before starting
    /// the next would wait on it until lawcket's post timeout failed it.
    #[derive(Default)]
    struct Endpoint {
        pages: usize,
        state: Mutex<Seen>,
    }

    #[derive(Default)]
    struct Seen {
        posts: Vec<String>,
        in_flight: usize,
        max_in_flight: usize,
        /// The latest page a post has arrived from.
        latest: usize,
        /// A page's held first post, answered when its sender is dropped.
        held: Vec<(usize, oneshot::Sender<()>)>,
    }

    async fn receive(
        State(endpoint): State<Arc<Endpoint>>,
        Path((_stage, id)): Path<(String, String)>,
    ) -> StatusCode {
        let index: usize = id[1..].parse().unwrap();
        let page = index / PAGE;
        let hold = {
            let mut seen = endpoint.state.lock().unwrap();
            seen.posts.push(id);
            seen.in_flight += 1;
            seen.max_in_flight = seen.max_in_flight.max(seen.in_flight);
            seen.latest = seen.latest.max(page);
            let latest = seen.latest;
            seen.held.retain(|(p, _)| *p == latest);
            (index.is_multiple_of(PAGE) && page == latest && page + 1 < endpoint.pages).then(|| {
                let (release, held) = oneshot::channel();
                seen.held.push((page, release));
                held
            })
        };
        if let Some(held) = hold {
            let _ = held.await;
        }
        endpoint.state.lock().unwrap().in_flight -= 1;
        StatusCode::OK
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn posts_run_on_across_page_boundaries_within_the_bound() {
        let count = 3 * PAGE + PAGE / 2;
        let endpoint = Arc::new(Endpoint {
            pages: count.div_ceil(PAGE),
            state: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/{stage}/@connections/{id}", axum::routing::post(receive))
            .with_state(Arc::clone(&endpoint));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/prod", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let memory = Memory::new().with_page_size(PAGE);
        let registry = Registry::Memory(Arc::new(memory));
        for i in 0..count {
            let item = Item {
                connection_id: format!("c{i:03}"),
                domain_name: "example.com".into(),
                stage: "prod".into(),
                fields: Vec::new(),
                connected_at: 0,
                ttl: crate::clock::now_secs() + 3600,
            };
            registry.store(&item).await.unwrap();
        }
        let sdk = load(Sdk::Offline).await;
        let timeouts = Timeouts::from_env().unwrap();
        let client = crate::management::client(&sdk, &url, &timeouts.post);
        let publisher = Publisher::from_parts(client, url, registry, None, CONCURRENCY);

        let report = publisher.everyone().send("hi").await.unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(report.delivered, count);
        let seen = endpoint.state.lock().unwrap();
        let mut posts = seen.posts.clone();
        posts.sort();
        posts.dedup();
        assert_eq!(posts.len(), count, "each connection posted to once");
        assert!(seen.max_in_flight <= CONCURRENCY, "{}", seen.max_in_flight);
    }
}
