//! The registry of live connections: DynamoDB in production, memory for the
//! local gateway. Both behave the same from the pipeline's point of view.
//!
//! `item` holds what is stored and read, `dynamo` and `memory` the two stores,
//! and this file the [`Registry`] the rest of lawcket calls.

mod dynamo;
#[cfg(feature = "fanout")]
mod dynamo_ledger;
mod item;
#[cfg(feature = "fanout")]
mod ledger;
mod memory;

pub use dynamo::Dynamo;
pub use item::{Cursor, Entry, Item, Page, Selector};
#[cfg(feature = "fanout")]
pub(crate) use ledger::{Claim, Done, Tally};
pub use memory::Memory;

use std::sync::Arc;

use crate::error::Error;
use crate::limits::CONNECTING_GRACE_MS;
use crate::sync::SyncValue;

/// Where connections are kept. Cloning shares the same store.
#[derive(Clone, Debug)]
pub enum Registry {
    /// A DynamoDB table.
    Dynamo(Arc<Dynamo>),
    /// An in-memory map (the local gateway's default).
    Memory(Arc<Memory>),
}

impl Registry {
    /// Stores a connection. Must succeed before a `$connect` is accepted.
    pub async fn store(&self, item: &Item) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.store(item).await,
            Registry::Memory(m) => m.store(item),
        }
    }

    /// Marks a connection refused after a store that failed and may still land
    /// (DynamoDB: a marker no later store overwrites, TTL-bound at `ttl`, epoch
    /// seconds; memory: removed, as nothing there lands late).
    pub async fn refuse(&self, connection_id: &str, ttl: i64) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.refuse(connection_id, ttl).await,
            Registry::Memory(m) => m.release(connection_id),
        }
    }

    /// Removes a connection; removing one that is not there is not an error.
    pub async fn release(&self, connection_id: &str) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.release(connection_id).await,
            Registry::Memory(m) => m.release(connection_id),
        }
    }

    /// One page of the ids `selector` matches, starting at `cursor`. Items whose
    /// TTL has passed (but that DynamoDB has not reaped yet) are left out.
    pub async fn page(&self, selector: &Selector, cursor: Option<Cursor>) -> Result<Page, Error> {
        match self {
            Registry::Dynamo(d) => d.page(selector, cursor).await,
            Registry::Memory(m) => Ok(m.page(selector, cursor)),
        }
    }

    /// Removes a connection that answered 410, unless it opened less than
    /// API Gateway's 29 s integration timeout before `now_ms` (its `$connect`
    /// may still be running).
    /// Answers whether it was removed (or was not there).
    pub async fn release_gone(&self, connection_id: &str, now_ms: i64) -> Result<bool, Error> {
        let cutoff = now_ms - CONNECTING_GRACE_MS;
        match self {
            Registry::Dynamo(d) => d.release_if_older(connection_id, cutoff).await,
            Registry::Memory(m) => Ok(m.release_if_older(connection_id, cutoff)),
        }
    }

    /// Removes many connections (DynamoDB: BatchWriteItem in batches of 25,
    /// unprocessed items retried).
    pub async fn release_many(&self, connection_ids: &[String]) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.release_many(connection_ids).await,
            Registry::Memory(m) => {
                for id in connection_ids {
                    m.release(id)?;
                }
                Ok(())
            }
        }
    }

    /// Sets a sync field of a stored connection, only if it is still stored: a
    /// released connection is never written back. Answers whether it was stored.
    pub async fn update(
        &self,
        connection_id: &str,
        field: &str,
        value: &SyncValue,
    ) -> Result<bool, Error> {
        match self {
            Registry::Dynamo(d) => d.update(connection_id, field, value).await,
            Registry::Memory(m) => Ok(m.update(connection_id, field, value)),
        }
    }

    /// How many parallel Scan segments reading `selector` may use: one where
    /// there is nothing to split (an index Query, the memory registry).
    #[cfg(feature = "fanout")]
    pub(crate) fn segments(&self, selector: &Selector, wanted: i32) -> i32 {
        match (self, &selector.field) {
            (Registry::Dynamo(d), Some((field, _))) if d.has_index(field) => 1,
            (Registry::Dynamo(_), _) => wanted.max(1),
            (Registry::Memory(_), _) => 1,
        }
    }

    /// Records a new broadcast in the fan-out's ledger, with its payload when
    /// it travels by pointer.
    #[cfg(feature = "fanout")]
    pub(crate) async fn open_broadcast(
        &self,
        broadcast: &str,
        payload: Option<&[u8]>,
        now_ms: i64,
        ttl: i64,
    ) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.open_broadcast(broadcast, payload, now_ms, ttl).await,
            Registry::Memory(m) => {
                m.ledger().open(broadcast, payload);
                Ok(())
            }
        }
    }

    /// Records that the dispatcher enqueued all `batches` of the broadcast,
    /// for `connections` connections.
    #[cfg(feature = "fanout")]
    pub(crate) async fn close_broadcast(
        &self,
        broadcast: &str,
        batches: u64,
        connections: u64,
    ) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.close_broadcast(broadcast, batches, connections).await,
            Registry::Memory(m) => {
                m.ledger().close(broadcast, batches, connections);
                Ok(())
            }
        }
    }

    /// A broadcast's payload, stored when it was too big for its messages.
    #[cfg(feature = "fanout")]
    pub(crate) async fn broadcast_payload(&self, broadcast: &str) -> Result<Vec<u8>, Error> {
        let payload = match self {
            Registry::Dynamo(d) => d.broadcast_payload(broadcast).await?,
            Registry::Memory(m) => m.ledger().payload(broadcast),
        };
        payload.ok_or_else(|| {
            Error::Config(format!(
                "the payload of broadcast {broadcast} is not in {} (reaped by its TTL, or not \
                 the dispatcher's table)",
                self.describe()
            ))
        })
    }

    /// What a broadcast has done so far; `None` if there is no such broadcast.
    #[cfg(feature = "fanout")]
    pub(crate) async fn tally(&self, broadcast: &str) -> Result<Option<Tally>, Error> {
        match self {
            Registry::Dynamo(d) => d.tally(broadcast).await,
            Registry::Memory(m) => Ok(m.ledger().tally(broadcast)),
        }
    }

    /// Takes batch `seq` of `broadcast` for the attempt `owner` until
    /// `lease_until` (epoch ms), unless it is finished or another attempt's
    /// lease still runs at `now_ms`.
    #[cfg(feature = "fanout")]
    pub(crate) async fn claim_batch(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
        ttl: i64,
    ) -> Result<Claim, Error> {
        match self {
            Registry::Dynamo(d) => {
                d.claim_batch(broadcast, seq, owner, now_ms, lease_until, ttl)
                    .await
            }
            Registry::Memory(m) => Ok(m.ledger().claim(broadcast, seq, owner, now_ms, lease_until)),
        }
    }

    /// Adds `done` to the batch's record and extends the lease, if `owner`
    /// still holds it. Answers whether it did.
    #[cfg(feature = "fanout")]
    pub(crate) async fn record_progress(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        lease_until: i64,
        done: &Done,
    ) -> Result<bool, Error> {
        match self {
            Registry::Dynamo(d) => {
                d.record_progress(broadcast, seq, owner, lease_until, done)
                    .await
            }
            Registry::Memory(m) => {
                Ok(m.ledger()
                    .progress(broadcast, seq, owner, lease_until, done))
            }
        }
    }

    /// Adds the last `done` to batch `seq`'s record and marks it finished,
    /// if `owner` still holds it. Answers whether it did.
    #[cfg(feature = "fanout")]
    pub(crate) async fn finish_batch(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        done: &Done,
        now_ms: i64,
    ) -> Result<bool, Error> {
        match self {
            Registry::Dynamo(d) => d.finish_batch(broadcast, seq, owner, done, now_ms).await,
            Registry::Memory(m) => Ok(m.ledger().finish(broadcast, seq, owner, done)),
        }
    }

    /// Adds a finished batch's `counts` (delivered, released, failed) and
    /// one finished batch to the broadcast's tally, unless batch `seq` is
    /// already counted: however often it is asked, a batch counts once.
    /// Answers whether it added them.
    #[cfg(feature = "fanout")]
    pub(crate) async fn count_batch(
        &self,
        broadcast: &str,
        seq: u64,
        counts: [u64; 3],
        ttl: i64,
    ) -> Result<bool, Error> {
        match self {
            Registry::Dynamo(d) => d.count_batch(broadcast, seq, counts, ttl).await,
            Registry::Memory(m) => Ok(m.ledger().count(broadcast, seq, counts)),
        }
    }

    /// Where the registry lives, for logs and error messages.
    pub fn describe(&self) -> String {
        match self {
            Registry::Dynamo(d) => format!("DynamoDB table `{}`", d.table()),
            Registry::Memory(_) => "in-memory registry".to_owned(),
        }
    }
}
