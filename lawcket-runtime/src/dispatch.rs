//! Dispatching a broadcast to the fan-out (feature `fanout`):
//! [`Broadcast::dispatch`], what it enqueued ([`Dispatched`]), and what the
//! workers have done since ([`Publisher::report`], [`BroadcastReport`]).

use serde::Serialize;

use crate::error::Error;
use crate::publisher::{check_size, Broadcast, Publisher};
use crate::registry::{Selector, Tally};

impl<'a> Broadcast<'a> {
    /// Hands the broadcast to the fan-out instead of posting it here: the
    /// selection is read and enqueued to SQS in batches, and workers (this
    /// binary, invoked by the queue) post them, paced to the budget they
    /// share. Returns once every batch is enqueued, with the broadcast's id.
    ///
    /// ```no_run
    /// # async fn demo(publish: lawcket::Publish) -> Result<(), lawcket::Error> {
    /// let dispatched = publish.everyone().dispatch().send("maintenance at noon").await?;
    /// // Later, from anywhere with the table:
    /// let report = publish.publisher().report(dispatched.id()).await?;
    /// # Ok(()) }
    /// ```
    pub fn dispatch(self) -> Dispatch<'a> {
        Dispatch { broadcast: self }
    }
}

/// A broadcast being dispatched: [`Broadcast::dispatch`], then
/// [`send`](Dispatch::send).
#[derive(Debug)]
#[must_use = "a dispatch does nothing until `send` or `send_bytes` is awaited"]
pub struct Dispatch<'a> {
    broadcast: Broadcast<'a>,
}

impl Dispatch<'_> {
    /// Enqueues `value`, as JSON, for every selected connection.
    pub async fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<Dispatched, Error> {
        let data = serde_json::to_vec(value).map_err(Error::Serialize)?;
        self.send_bytes(data).await
    }

    /// Enqueues bytes for every selected connection.
    pub async fn send_bytes(self, data: impl Into<Vec<u8>>) -> Result<Dispatched, Error> {
        let data = data.into();
        check_size(&data)?;
        let Broadcast {
            publisher,
            field,
            except,
        } = self.broadcast;
        let selector = Selector {
            field,
            stage: publisher.stage().map(str::to_owned),
            segment: None,
        };
        let enqueued = publisher
            .fanout()?
            .dispatch(
                publisher.registry(),
                selector,
                except.as_deref(),
                publisher.endpoint(),
                &data,
            )
            .await?;
        Ok(Dispatched {
            id: enqueued.id,
            connections: enqueued.connections,
            batches: enqueued.batches,
        })
    }
}

/// What [`Dispatch::send`] enqueued: the broadcast's id (for
/// [`Publisher::report`]) and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatched {
    id: String,
    connections: u64,
    batches: u64,
}

impl Dispatched {
    /// The broadcast's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many connections it was enqueued for.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// How many SQS messages carry it.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

/// What a dispatched broadcast has done so far ([`Publisher::report`]).
///
/// Each connection is counted once, when the batch holding it finishes, as
/// delivered, released (410 Gone) or failed, however often SQS delivered
/// the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BroadcastReport {
    /// Posts API Gateway accepted.
    pub delivered: u64,
    /// Connections that answered 410 Gone; they were removed from the table.
    pub released: u64,
    /// Posts that failed for good (or had no answer in time, so may have
    /// been delivered); those connections are kept.
    pub failed: u64,
    /// Batches finished.
    pub batches_done: u64,
    /// Batches enqueued; `None` while the dispatcher is still enqueuing.
    pub batches: Option<u64>,
    /// Connections the broadcast was enqueued for; `None` while the
    /// dispatcher is still enqueuing.
    pub connections: Option<u64>,
}

impl BroadcastReport {
    /// Whether every batch has finished.
    pub fn is_finished(&self) -> bool {
        self.batches == Some(self.batches_done)
    }
}

impl From<Tally> for BroadcastReport {
    fn from(tally: Tally) -> Self {
        BroadcastReport {
            delivered: tally.delivered,
            released: tally.released,
            failed: tally.failed,
            batches_done: tally.batches_done,
            batches: tally.batches,
            connections: tally.connections,
        }
    }
}

impl Publisher {
    /// What the dispatched broadcast `id` has done so far; `None` if there
    /// is no such broadcast in this table (its records are kept 15 days).
    pub async fn report(&self, id: &str) -> Result<Option<BroadcastReport>, Error> {
        Ok(self.registry().tally(id).await?.map(BroadcastReport::from))
    }
}
