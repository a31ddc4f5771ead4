//! The DynamoDB registry: one item per connection, keyed by `connectionId`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use lawcket_rules::attributes::{
    CONNECTED_AT, CONNECTION_ID, DOMAIN_NAME, REFUSED_AT, STAGE, TTL, UPDATED_AT,
};

use super::item::{Cursor, Entry, Item, Page, Selector};
use crate::clock::{now_ms, now_secs};
use crate::error::Error;
use crate::limits::DEFAULT_PAGE_SIZE;
use crate::sync::SyncValue;

/// A DynamoDB connections table (hash key `connectionId`, a string).
#[derive(Clone, Debug)]
pub struct Dynamo {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// (sync field, index name) pairs: selections on these fields Query the index.
    indexes: Vec<(String, String)>,
    /// Items read per page (DynamoDB `Limit`), so memory stays flat.
    page_size: i32,
}

impl Dynamo {
    /// A registry on `table`, using `client` (built once per process).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Dynamo {
            client,
            table: table.into(),
            indexes: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Items read per page during a mass publish (DynamoDB `Limit`).
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = items.max(1);
        self
    }

    /// Declares a global secondary index whose hash key is the sync field
    /// `field`: selections on that field Query the index instead of scanning.
    /// The index must project `stage`, `ttl` and `connectedAt` (or ALL).
    pub fn with_index(mut self, field: impl Into<String>, index: impl Into<String>) -> Self {
        self.indexes.push((field.into(), index.into()));
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client (the fan-out's ledger shares it).
    #[cfg(feature = "fanout")]
    pub(super) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// Whether a selection on `field` Queries an index (else it Scans).
    #[cfg(feature = "fanout")]
    pub(super) fn has_index(&self, field: &str) -> bool {
        self.indexes.iter().any(|(f, _)| f == field)
    }

    /// Stores the item, unless the connection was already marked refused: a
    /// store that timed out and reaches DynamoDB after its refusal must not
    /// bring the connection back.
    pub(super) async fn store(&self, item: &Item) -> Result<(), Error> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(item)))
            .condition_expression("attribute_not_exists(#refused)")
            .expression_attribute_names("#refused", REFUSED_AT)
            .send()
            .await;
        match self.conditional("PutItem", result)? {
            true => Ok(()),
            false => Err(Error::Registry {
                table: self.table.clone(),
                operation: "PutItem",
                message: "the connection had already been refused; it stays refused".into(),
                source: None,
            }),
        }
    }

    /// Replaces whatever is stored for the connection with a marker that it
    /// was refused (no stage, so no publish reaches it; TTL-bound). Written in
    /// place of a delete: a store still in flight cannot land over it.
    pub(super) async fn refuse(&self, connection_id: &str, ttl: i64) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(CONNECTION_ID, AttributeValue::S(connection_id.to_owned()))
            .item(REFUSED_AT, AttributeValue::N(now_ms().to_string()))
            // So a 410 within the connecting grace does not remove the marker.
            .item(CONNECTED_AT, AttributeValue::N(now_ms().to_string()))
            .item(TTL, AttributeValue::N(ttl.to_string()))
            .send()
            .await
            .map_err(|e| self.error("PutItem", e))?;
        Ok(())
    }

    /// Deletes the connection's item. A refusal marker stays (its TTL reaps
    /// it): deleting it would let a store still in flight land.
    pub(super) async fn release(&self, connection_id: &str) -> Result<(), Error> {
        self.delete(connection_id, None).await.map(drop)
    }

    /// Deletes the item, only if it opened before `cutoff_ms` when one is
    /// given; answers whether it was deleted (or was not there).
    async fn delete(&self, connection_id: &str, cutoff_ms: Option<i64>) -> Result<bool, Error> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(CONNECTION_ID, AttributeValue::S(connection_id.to_owned()));
        let request = match cutoff_ms {
            Some(cutoff) => request
                .condition_expression("attribute_not_exists(#at) OR #at < :cutoff")
                .expression_attribute_names("#at", CONNECTED_AT)
                .expression_attribute_values(":cutoff", AttributeValue::N(cutoff.to_string())),
            None => request
                .condition_expression("attribute_not_exists(#refused)")
                .expression_attribute_names("#refused", REFUSED_AT),
        };
        self.conditional("DeleteItem", request.send().await)
    }

    /// A conditional write's outcome: done (`true`) or condition not met (`false`).
    pub(super) fn conditional<T, E, R>(
        &self,
        operation: &'static str,
        result: Result<T, SdkError<E, R>>,
    ) -> Result<bool, Error>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
        aws_sdk_dynamodb::Error: From<SdkError<E, R>>,
    {
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.error(operation, e)),
        }
    }

    /// The SDK's error with a hint for the usual causes; the error itself is
    /// kept as the source, as `aws_sdk_dynamodb::Error`.
    pub(super) fn error<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
        aws_sdk_dynamodb::Error: From<SdkError<E, R>>,
    {
        // The hint only: the SDK's own account of it is the source.
        let message = match error.code() {
            Some("ResourceNotFoundException") => "the table does not exist in this account and \
                 region; create it (hash key `connectionId`, type S) or fix the table name, \
                 AWS_REGION or AWS_ENDPOINT_URL"
                .to_owned(),
            Some("AccessDeniedException") => {
                format!(
                    "access denied; the function's role needs dynamodb:{operation} on this table"
                )
            }
            Some(code) => format!("DynamoDB answered {code}"),
            None => match &error {
                SdkError::TimeoutError(_) => {
                    "DynamoDB did not answer in time (LAWCKET_DYNAMODB_TIMEOUT)".to_owned()
                }
                SdkError::DispatchFailure(_) => "DynamoDB could not be reached".to_owned(),
                _ => "the request failed".to_owned(),
            },
        };
        Error::Registry {
            table: self.table.clone(),
            operation,
            message,
            source: Some(Box::new(aws_sdk_dynamodb::Error::from(error))),
        }
    }
}

fn to_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    let mut map = HashMap::with_capacity(5 + item.fields.len());
    // A reserved name is never written from a sync field (configurations
    // refuse them; this does not rely on that).
    for (name, value) in &item.fields {
        if !lawcket_rules::is_reserved(name) {
            map.insert(name.clone(), sync_value(value));
        }
    }
    let own = [
        (CONNECTION_ID, AttributeValue::S(item.connection_id.clone())),
        (DOMAIN_NAME, AttributeValue::S(item.domain_name.clone())),
        (STAGE, AttributeValue::S(item.stage.clone())),
        (
            CONNECTED_AT,
            AttributeValue::N(item.connected_at.to_string()),
        ),
        (TTL, AttributeValue::N(item.ttl.to_string())),
    ];
    for (name, value) in own {
        map.insert(name.to_owned(), value);
    }
    map
}

pub(crate) fn sync_value(value: &SyncValue) -> AttributeValue {
    match value {
        SyncValue::Str(s) => AttributeValue::S(s.clone()),
        SyncValue::Int(i) => AttributeValue::N(i.to_string()),
        SyncValue::Bool(b) => AttributeValue::Bool(*b),
    }
}

/// Attempts at a batch whose items DynamoDB left unprocessed (throttling).
const BATCH_ATTEMPTS: u32 = 8;

impl Dynamo {
    pub(super) async fn page(
        &self,
        selector: &Selector,
        cursor: Option<Cursor>,
    ) -> Result<Page, Error> {
        let start = cursor.map(|Cursor(key)| key);
        let now = now_secs();
        let mut names = HashMap::from([
            ("#ttl".to_owned(), TTL.to_owned()),
            ("#id".to_owned(), CONNECTION_ID.to_owned()),
            ("#at".to_owned(), CONNECTED_AT.to_owned()),
        ]);
        let mut values = HashMap::from([(":now".to_owned(), AttributeValue::N(now.to_string()))]);
        // An item past its TTL is a connection API Gateway has already closed.
        let mut filter = vec!["(attribute_not_exists(#ttl) OR #ttl > :now)"];
        names.insert("#stage".into(), STAGE.into());
        match &selector.stage {
            Some(stage) => {
                values.insert(":stage".into(), AttributeValue::S(stage.clone()));
                filter.push("#stage = :stage");
            }
            // Every connection has a stage; the fan-out's ledger records
            // kept in the same table have none.
            None => filter.push("attribute_exists(#stage)"),
        }
        let index = selector.field.as_ref().and_then(|(name, _)| {
            self.indexes
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, index)| index.clone())
        });
        if let Some((name, value)) = &selector.field {
            names.insert("#field".into(), name.clone());
            values.insert(":field".into(), sync_value(value));
            if index.is_none() {
                filter.push("#field = :field");
            }
        }
        if index.is_none() {
            // A refused connection's marker is no connection. (It has no sync
            // field, so no index holds it.)
            names.insert("#refused".into(), REFUSED_AT.into());
            filter.push("attribute_not_exists(#refused)");
        }
        let filter = filter.join(" AND ");
        // Query and Scan builders are distinct types with the same setters.
        macro_rules! read_page {
            ($builder:expr, $operation:literal) => {{
                let out = $builder
                    .table_name(&self.table)
                    .filter_expression(filter)
                    .projection_expression("#id, #at")
                    .limit(self.page_size)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| self.error($operation, e))?;
                (out.items, out.last_evaluated_key)
            }};
        }
        let (items, next) = match index {
            Some(index) => read_page!(
                self.client
                    .query()
                    .index_name(&index)
                    .key_condition_expression("#field = :field"),
                "Query"
            ),
            None => {
                let (segment, total) = selector.segment.unzip();
                read_page!(
                    self.client
                        .scan()
                        .set_segment(segment)
                        .set_total_segments(total),
                    "Scan"
                )
            }
        };
        let entries = items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut item| match item.remove(CONNECTION_ID) {
                Some(AttributeValue::S(connection_id)) => Some(Entry {
                    connection_id,
                    connected_at: match item.get(CONNECTED_AT) {
                        Some(AttributeValue::N(n)) => n.parse().ok(),
                        _ => None,
                    },
                }),
                _ => None,
            })
            .collect();
        Ok((entries, next.filter(|k| !k.is_empty()).map(Cursor)))
    }

    pub(super) async fn release_if_older(
        &self,
        connection_id: &str,
        cutoff_ms: i64,
    ) -> Result<bool, Error> {
        self.delete(connection_id, Some(cutoff_ms)).await
    }

    pub(super) async fn release_many(&self, connection_ids: &[String]) -> Result<(), Error> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        for batch in connection_ids.chunks(25) {
            let mut requests: Vec<WriteRequest> = batch
                .iter()
                .map(|id| {
                    let delete = DeleteRequest::builder()
                        .key(CONNECTION_ID, AttributeValue::S(id.clone()))
                        .build()
                        .expect("key is set");
                    WriteRequest::builder().delete_request(delete).build()
                })
                .collect();
            let mut attempt = 0;
            while !requests.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(Error::Registry {
                        table: self.table.clone(),
                        operation: "BatchWriteItem",
                        message: format!(
                            "{} deletions were still unprocessed after {BATCH_ATTEMPTS} attempts \
                             (throttled); their TTL will reap them",
                            requests.len()
                        ),
                        source: None,
                    });
                }
                if attempt > 0 {
                    // Exponential backoff: 25 ms, 50 ms, ... as AWS advises for
                    // unprocessed items.
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(6)))
                        .await;
                }
                attempt += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| self.error("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    pub(super) async fn update(
        &self,
        connection_id: &str,
        field: &str,
        value: &SyncValue,
    ) -> Result<bool, Error> {
        // Only declared fields reach here; this does not rely on it.
        if lawcket_rules::is_reserved(field) {
            return Err(Error::Config(format!(
                "`{field}` is written by lawcket itself and cannot be set"
            )));
        }
        let now = now_ms();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(CONNECTION_ID, AttributeValue::S(connection_id.to_owned()))
            .update_expression("SET #field = :value, #updatedAt = :now")
            // Never resurrect a connection that has been released or refused.
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#refused)")
            .expression_attribute_names("#refused", REFUSED_AT)
            .expression_attribute_names("#field", field)
            .expression_attribute_names("#updatedAt", UPDATED_AT)
            .expression_attribute_names("#id", CONNECTION_ID)
            .expression_attribute_values(":value", sync_value(value))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        self.conditional("UpdateItem", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_field_never_overwrites_what_lawcket_writes() {
        // Configurations refuse reserved names; the item writer does not rely
        // on that.
        let item = Item {
            connection_id: "real=".into(),
            domain_name: "example.com".into(),
            stage: "prod".into(),
            fields: lawcket_rules::RESERVED_ATTRIBUTES
                .iter()
                .map(|name| (name.to_string(), SyncValue::from("forged")))
                .collect(),
            connected_at: 1,
            ttl: 2,
        };
        let map = to_attributes(&item);
        assert_eq!(map[CONNECTION_ID], AttributeValue::S("real=".into()));
        assert_eq!(map[STAGE], AttributeValue::S("prod".into()));
        assert_eq!(map[TTL], AttributeValue::N("2".into()));
        assert_eq!(map[CONNECTED_AT], AttributeValue::N("1".into()));
        assert_eq!(map[DOMAIN_NAME], AttributeValue::S("example.com".into()));
        assert!(!map.contains_key(UPDATED_AT), "{map:?}");
        assert_eq!(map.len(), 5);
    }
}
