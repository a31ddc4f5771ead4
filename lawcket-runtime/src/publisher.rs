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

#[derive(Debug)]
struct Inner {
    endpoint: String,
    client: management::Client,
    registry: Registry,
    stage: Option<String>,
    concurrency: usize,
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
            }),
        }
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
            Outcome::Failed(error) => Err(error),
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

    /// Pages through the registry (the next page is read while this one is
    /// posted, so memory holds two pages at most), posts with bounded
    /// concurrency, then releases the gone in batches.
    async fn broadcast(
        &self,
        selector: Selector,
        except: Option<&str>,
        data: Vec<u8>,
    ) -> Result<Report, Error> {
        check_size(&data)?;
        let registry = &self.inner.registry;
        let mut report = Report::default();
        let mut page = registry.page(&selector, None).await?;
        let read = loop {
            let (entries, next) = page;
            let entries = entries
                .into_iter()
                .filter(|e| Some(e.connection_id.as_str()) != except);
            let following = async {
                match next {
                    Some(cursor) => Some(registry.page(&selector, Some(cursor)).await),
                    None => None,
                }
            };
            let ((), following) =
                tokio::join!(self.post_all(entries, &data, &mut report), following);
            match following {
                Some(Ok(next_page)) => page = next_page,
                Some(Err(error)) => break Err(error),
                None => break Ok(()),
            }
        };
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

    /// Posts to every id, at most `concurrency` at a time, tallying the outcomes.
    async fn post_all(
        &self,
        entries: impl Iterator<Item = Entry>,
        data: &[u8],
        report: &mut Report,
    ) {
        // Each post future owns what it uses (a cheap clone of the publisher),
        // which keeps the handler's future `Send` without lifetime puzzles.
        let posts = futures_util::stream::iter(entries).map(|entry| {
            let publisher = self.clone();
            let data = data.to_vec();
            async move {
                let outcome = publisher.post(&entry.connection_id, data).await;
                (entry, outcome)
            }
        });
        let mut outcomes = posts.buffer_unordered(self.inner.concurrency);
        let cutoff = now_ms() - CONNECTING_GRACE_MS;
        while let Some((entry, outcome)) = outcomes.next().await {
            let id = entry.connection_id;
            match outcome {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Gone if entry.connected_at.is_some_and(|at| at >= cutoff) => {
                    report.failed.push(Failure {
                        error: self.still_connecting(&id),
                        connection_id: id,
                    })
                }
                Outcome::Gone => report.released.push(id),
                Outcome::Failed(error) => report.failed.push(Failure {
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
    publisher: &'a Publisher,
    field: Option<(String, SyncValue)>,
    except: Option<String>,
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
        };
        self.publisher
            .broadcast(selector, self.except.as_deref(), data.into())
            .await
    }
}

/// API Gateway refuses payloads over 128 KiB: say so once, not once per connection.
fn check_size(data: &[u8]) -> Result<(), Error> {
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
        Ok(Publisher::from_parts(
            crate::management::client(&host.sdk, &endpoint, &host.timeouts.post),
            endpoint,
            host.registry,
            self.stage,
            self.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        ))
    }
}
