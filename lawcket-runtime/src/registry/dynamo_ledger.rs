//! The fan-out's ledger in DynamoDB: records in the connections table
//! (see `ledger` for what they hold), written conditionally so a batch is
//! held by one attempt and counted once.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use lawcket_rules::attributes::{CONNECTION_ID, TTL};

use super::dynamo::Dynamo;
use super::ledger::*;
use crate::error::Error;

impl Dynamo {
    /// Records a new broadcast, with its payload when it travels by pointer.
    pub(super) async fn open_broadcast(
        &self,
        broadcast: &str,
        payload: Option<&[u8]>,
        now_ms: i64,
        ttl: i64,
    ) -> Result<(), Error> {
        let key = broadcast_key(broadcast);
        let d = self;
        let request = d
            .client()
            .put_item()
            .table_name(d.table())
            .item(CONNECTION_ID, s(key))
            .item(CREATED, n(now_ms))
            .item(TTL, n(ttl))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", CONNECTION_ID);
        let request = match payload {
            Some(bytes) => request.item(PAYLOAD, AttributeValue::B(bytes.to_vec().into())),
            None => request,
        };
        match d.conditional("PutItem", request.send().await)? {
            true => Ok(()),
            false => Err(Error::Config(format!(
                "broadcast id {broadcast} is already taken; ids are random, so this is a bug"
            ))),
        }
    }

    /// Records that the dispatcher enqueued all `batches` of the broadcast,
    /// holding `connections` connections.
    pub(super) async fn close_broadcast(
        &self,
        broadcast: &str,
        batches: u64,
        connections: u64,
    ) -> Result<(), Error> {
        let key = broadcast_key(broadcast);
        let d = self;
        d.client()
            .update_item()
            .table_name(d.table())
            .key(CONNECTION_ID, s(key))
            .update_expression("SET #batches = :batches, #connections = :connections")
            .expression_attribute_names("#batches", BATCHES)
            .expression_attribute_names("#connections", CONNECTIONS)
            .expression_attribute_values(":batches", n(batches))
            .expression_attribute_values(":connections", n(connections))
            .send()
            .await
            .map_err(|e| d.error("UpdateItem", e))?;
        Ok(())
    }

    /// A broadcast's payload, stored when it was too big for its messages.
    pub(super) async fn broadcast_payload(
        &self,
        broadcast: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let key = broadcast_key(broadcast);
        let d = self;
        let out = d
            .client()
            .get_item()
            .table_name(d.table())
            .key(CONNECTION_ID, s(key))
            .consistent_read(true)
            .projection_expression("#payload")
            .expression_attribute_names("#payload", PAYLOAD)
            .send()
            .await
            .map_err(|e| d.error("GetItem", e))?;
        match out.item.and_then(|mut item| item.remove(PAYLOAD)) {
            Some(AttributeValue::B(blob)) => Ok(Some(blob.into_inner())),
            _ => Ok(None),
        }
    }

    /// What the broadcast has done so far; `None` if there is no such
    /// broadcast (or its record has been reaped).
    pub(super) async fn tally(&self, broadcast: &str) -> Result<Option<Tally>, Error> {
        let key = broadcast_key(broadcast);
        let d = self;
        let out = d
            .client()
            .get_item()
            .table_name(d.table())
            .key(CONNECTION_ID, s(key))
            .consistent_read(true)
            .projection_expression("#d, #r, #f, #bd, #b, #c")
            .expression_attribute_names("#d", DELIVERED)
            .expression_attribute_names("#r", RELEASED)
            .expression_attribute_names("#f", FAILED)
            .expression_attribute_names("#bd", BATCHES_DONE)
            .expression_attribute_names("#b", BATCHES)
            .expression_attribute_names("#c", CONNECTIONS)
            .send()
            .await
            .map_err(|e| d.error("GetItem", e))?;
        Ok(out.item.map(|item| {
            let number = |name: &str| match item.get(name) {
                Some(AttributeValue::N(v)) => v.parse().ok(),
                _ => None,
            };
            Tally {
                delivered: number(DELIVERED).unwrap_or(0),
                released: number(RELEASED).unwrap_or(0),
                failed: number(FAILED).unwrap_or(0),
                batches_done: number(BATCHES_DONE).unwrap_or(0),
                batches: number(BATCHES),
                connections: number(CONNECTIONS),
            }
        }))
    }

    /// Takes batch `seq` of `broadcast` for the attempt `owner` until
    /// `lease_until` (epoch ms), unless it is finished or another attempt's
    /// lease still runs at `now_ms`.
    pub(super) async fn claim_batch(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
        ttl: i64,
    ) -> Result<Claim, Error> {
        let key = batch_key(broadcast, seq);
        let d = self;
        let result = d
            .client()
            .update_item()
            .table_name(d.table())
            .key(CONNECTION_ID, s(key.clone()))
            .update_expression("SET #owner = :owner, #lease = :lease, #ttl = if_not_exists(#ttl, :ttl)")
            .condition_expression(
                "attribute_not_exists(#finished) AND (attribute_not_exists(#lease) OR #lease < :now)",
            )
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#lease", LEASE)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#finished", FINISHED)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let mut item = out.attributes.unwrap_or_default();
                let mut set = |name: &str| match item.remove(name) {
                    Some(AttributeValue::Ss(ids)) => ids.into_iter().collect(),
                    _ => BTreeSet::new(),
                };
                Ok(Claim::Mine(Done {
                    delivered: set(DELIVERED),
                    released: set(RELEASED),
                    failed: set(FAILED),
                }))
            }
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                let out = d
                    .client()
                    .get_item()
                    .table_name(d.table())
                    .key(CONNECTION_ID, s(key))
                    .consistent_read(true)
                    .projection_expression("#finished")
                    .expression_attribute_names("#finished", FINISHED)
                    .send()
                    .await
                    .map_err(|e| d.error("GetItem", e))?;
                match out.item.is_some_and(|item| item.contains_key(FINISHED)) {
                    true => Ok(Claim::Finished),
                    false => Ok(Claim::Busy),
                }
            }
            Err(e) => Err(d.error("UpdateItem", e)),
        }
    }

    /// Adds `done` to the batch's record and extends the lease, if `owner`
    /// still holds it. Answers whether it did.
    pub(super) async fn record_progress(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        lease_until: i64,
        done: &Done,
    ) -> Result<bool, Error> {
        let key = batch_key(broadcast, seq);
        let d = self;
        let update = batch_update(d, &key, owner, done)
            .update_expression(format!("SET #lease = :lease{}", additions(done)))
            .expression_attribute_names("#lease", LEASE)
            .expression_attribute_values(":lease", n(lease_until))
            .build()
            .map_err(|e| build_error(d, e))?;
        let result = d
            .client()
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await;
        d.conditional("UpdateItem", result)
    }

    /// Finishes the batch if `owner` still holds it: adds the last `done` to
    /// its record, marks it finished and adds `counts` (delivered, released,
    /// failed: the whole batch's) and one finished batch to the broadcast's
    /// tally, all in one transaction, so a batch is counted exactly once.
    /// Answers whether it did.
    pub(super) async fn finish_batch(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        done: &Done,
        counts: [u64; 3],
        now_ms: i64,
    ) -> Result<bool, Error> {
        let key = batch_key(broadcast, seq);
        let d = self;
        let batch = batch_update(d, &key, owner, done)
            .update_expression(format!("SET #finished = :now{}", additions(done)))
            .expression_attribute_names("#finished", FINISHED)
            .expression_attribute_values(":now", n(now_ms))
            .build()
            .map_err(|e| build_error(d, e))?;
        let tally = Update::builder()
            .table_name(d.table())
            .key(CONNECTION_ID, s(broadcast_key(broadcast)))
            .update_expression("ADD #d :d, #r :r, #f :f, #bd :one")
            .expression_attribute_names("#d", DELIVERED)
            .expression_attribute_names("#r", RELEASED)
            .expression_attribute_names("#f", FAILED)
            .expression_attribute_names("#bd", BATCHES_DONE)
            .expression_attribute_values(":d", n(counts[0]))
            .expression_attribute_values(":r", n(counts[1]))
            .expression_attribute_values(":f", n(counts[2]))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| build_error(d, e))?;
        let result = d
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(batch).build())
            .transact_items(TransactWriteItem::builder().update(tally).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // Cancelled by the condition on the batch: another attempt holds it.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                        if cancelled.cancellation_reasons().iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(d.error("TransactWriteItems", e)),
        }
    }
}

/// An update of a batch's record, conditional on `owner` holding it, with the
/// values `done`'s ADD clauses use; the caller adds its SET clause.
fn batch_update(
    d: &Dynamo,
    key: &str,
    owner: &str,
    done: &Done,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let mut update = Update::builder()
        .table_name(d.table())
        .key(CONNECTION_ID, s(key))
        .condition_expression("#owner = :owner AND attribute_not_exists(#finished)")
        .expression_attribute_names("#owner", OWNER)
        .expression_attribute_names("#finished", FINISHED)
        .expression_attribute_values(":owner", s(owner));
    for (name, ids) in done.sets() {
        if !ids.is_empty() {
            update = update
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(
                    format!(":{name}"),
                    AttributeValue::Ss(ids.iter().cloned().collect()),
                );
        }
    }
    update
}

/// The ADD clause putting `done`'s ids into the batch's sets (DynamoDB
/// refuses an empty set, so only those with ids).
fn additions(done: &Done) -> String {
    let clauses: Vec<String> = done
        .sets()
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(name, _)| format!("#{name} :{name}"))
        .collect();
    match clauses.is_empty() {
        true => String::new(),
        false => format!(" ADD {}", clauses.join(", ")),
    }
}

fn build_error(d: &Dynamo, error: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Registry {
        table: d.table().to_owned(),
        operation: "TransactWriteItems",
        message: "could not build the request".into(),
        source: Some(Box::new(error)),
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
