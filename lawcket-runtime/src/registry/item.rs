//! What the registry stores and reads: an [`Item`] per connection, and the
//! [`Entry`] pages a mass publish walks through.

use std::collections::HashMap;

use crate::sync::SyncValue;

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

/// Which connections a mass publish reaches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    /// Only connections whose sync field has this value.
    pub field: Option<(String, SyncValue)>,
    /// Only connections of this stage (posts go to one stage's endpoint).
    pub stage: Option<String>,
    /// One segment of a parallel Scan, `(segment, total)`: the fan-out's
    /// dispatcher reads a large table in several at once. Ignored where
    /// there is nothing to split (a Query on an index, the memory registry,
    /// which answers everything in segment 0).
    pub segment: Option<(i32, i32)>,
}

/// Where the next page of a registry read starts: DynamoDB's
/// `LastEvaluatedKey` (the memory registry's is shaped alike).
#[derive(Clone, Debug)]
pub struct Cursor(pub(crate) HashMap<String, aws_sdk_dynamodb::types::AttributeValue>);

/// A connection a mass publish reaches.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The connection id.
    pub connection_id: String,
    /// When it opened (epoch ms), if the item (or the index) holds it.
    pub connected_at: Option<i64>,
}

/// One page of connections and where the next one starts.
pub type Page = (Vec<Entry>, Option<Cursor>);
