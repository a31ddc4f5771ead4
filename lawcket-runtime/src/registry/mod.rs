//! The registry of live connections: DynamoDB in production, memory for the
//! local gateway. Both behave the same from the pipeline's point of view.
//!
//! `item` holds what is stored and read, `dynamo` and `memory` the two stores,
//! and this file the [`Registry`] the rest of lawcket calls.

mod dynamo;
mod item;
mod memory;

pub use dynamo::Dynamo;
pub use item::{Cursor, Entry, Item, Page, Selector};
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

    /// Where the registry lives, for logs and error messages.
    pub fn describe(&self) -> String {
        match self {
            Registry::Dynamo(d) => format!("DynamoDB table `{}`", d.table()),
            Registry::Memory(_) => "in-memory registry".to_owned(),
        }
    }
}
