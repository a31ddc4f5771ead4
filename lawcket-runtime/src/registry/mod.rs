//! The registry of live connections: DynamoDB in production, memory for the
//! local gateway. Both behave the same from the pipeline's point of view.

mod dynamo;
mod memory;

pub use dynamo::Dynamo;
pub use memory::Memory;

use std::sync::Arc;

use crate::config::SyncValue;
use crate::Error;

/// One stored connection, as written on `$connect`.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The API Gateway connection id (the table's hash key).
    pub connection_id: String,
    /// `requestContext.domainName` of the `$connect` event.
    pub domain_name: String,
    /// `requestContext.stage` of the `$connect` event.
    pub stage: String,
    /// The sync fields, in declaration order.
    pub fields: Vec<(String, SyncValue)>,
    /// When the connection opened, epoch milliseconds.
    pub connected_at: i64,
    /// When DynamoDB may reap the item, epoch seconds.
    pub ttl: i64,
}

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

    /// Removes a connection; removing one that is not there is not an error.
    pub async fn release(&self, connection_id: &str) -> Result<(), Error> {
        match self {
            Registry::Dynamo(d) => d.release(connection_id).await,
            Registry::Memory(m) => m.release(connection_id),
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
