//! The fan-out's ledger in DynamoDB: records in the connections table
//! (see `ledger` for what they hold), written conditionally so a batch is
//! held by one attempt and counted once. Each write is to one item, so none
//! needs a transaction.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use lawcket_rules::attributes::{CONNECTION_ID, TTL};

use super::dynamo::Dynamo;
use super::ledger::*;
use crate::error::Error;

impl Dynamo {
    /// Records a new broadcast (and its payload, in an item of its own, when
    /// it travels by pointer). A retry of a write that had landed is no error.
    pub(super) async fn open_broadcast(
        &self,
        broadcast: &str,
        payload: Option<&[u8]>,
        now_ms: i64,
        ttl: i64,
    ) -> Result<(), Error> {
        if let Some(bytes) = payload {
            self.client()
                .put_item()
                .table_name(self.table())
                .item(CONNECTION_ID, s(payload_key(broadcast)))
                .item(PAYLOAD, AttributeValue::B(bytes.to_vec().into()))
                .item(TTL, n(ttl))
                .send()
                .await
                .map_err(|e| self.error("PutItem", e))?;
        }
        let request = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(CONNECTION_ID, s(broadcast_key(broadcast)))
            .item(CREATED, n(now_ms))
            .item(TTL, n(ttl))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", CONNECTION_ID);
        if self.conditional("PutItem", request.send().await)? {
            return Ok(());
        }
        // Taken: by this very write, retried by the SDK after it landed?
        match self.get(&broadcast_key(broadcast)).await?.get(CREATED) {
            Some(AttributeValue::N(at)) if *at == now_ms.to_string() => Ok(()),
            _ => Err(Error::Config(format!(
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
        self.client()
            .update_item()
            .table_name(self.table())
            .key(CONNECTION_ID, s(broadcast_key(broadcast)))
            .update_expression("SET #batches = :batches, #connections = :connections")
            .expression_attribute_names("#batches", BATCHES)
            .expression_attribute_names("#connections", CONNECTIONS)
            .expression_attribute_values(":batches", n(batches))
            .expression_attribute_values(":connections", n(connections))
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        Ok(())
    }

    /// A broadcast's payload, stored when it was too big for its messages.
    pub(super) async fn broadcast_payload(
        &self,
        broadcast: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self.get(&payload_key(broadcast)).await?.remove(PAYLOAD) {
            Some(AttributeValue::B(blob)) => Ok(Some(blob.into_inner())),
            _ => Ok(None),
        }
    }

    /// What the broadcast has done so far, summed over its tally's shards;
    /// `None` if there is no such broadcast (or its record has been reaped).
    pub(super) async fn tally(&self, broadcast: &str) -> Result<Option<Tally>, Error> {
        let key = broadcast_key(broadcast);
        let record = self.get(&key);
        let shards = (0..TALLY_SHARDS).map(|shard| self.get_shard(broadcast, shard));
        let (record, shards) = tokio::join!(record, futures_util::future::join_all(shards));
        let record = record?;
        if record.is_empty() {
            return Ok(None);
        }
        let mut tally = Tally {
            batches: number(&record, BATCHES),
            connections: number(&record, CONNECTIONS),
            ..Tally::default()
        };
        for shard in shards {
            let shard = shard?;
            tally.delivered += number(&shard, DELIVERED).unwrap_or(0);
            tally.released += number(&shard, RELEASED).unwrap_or(0);
            tally.failed += number(&shard, FAILED).unwrap_or(0);
            tally.batches_done += number(&shard, BATCHES_DONE).unwrap_or(0);
        }
        Ok(Some(tally))
    }

    async fn get_shard(
        &self,
        broadcast: &str,
        shard: u64,
    ) -> Result<HashMap<String, AttributeValue>, Error> {
        self.get(&tally_key(broadcast, shard)).await
    }

    /// An item read consistently; empty if there is none.
    async fn get(&self, key: &str) -> Result<HashMap<String, AttributeValue>, Error> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(CONNECTION_ID, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        Ok(out.item.unwrap_or_default())
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
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(CONNECTION_ID, s(key.clone()))
            .update_expression(
                "SET #owner = :owner, #lease = :lease, #ttl = if_not_exists(#ttl, :ttl)",
            )
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
            Ok(out) => Ok(Claim::Mine(done(out.attributes.unwrap_or_default()))),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                let item = self.get(&key).await?;
                let mine = matches!(item.get(OWNER), Some(AttributeValue::S(o)) if o == owner);
                match (item.contains_key(FINISHED), mine) {
                    (true, _) => Ok(Claim::Finished(done(item))),
                    // This very claim, retried by the SDK after it landed.
                    (false, true) => Ok(Claim::Mine(done(item))),
                    (false, false) => Ok(Claim::Busy),
                }
            }
            Err(e) => Err(self.error("UpdateItem", e)),
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
        let request = self
            .batch_update(broadcast, seq, owner, done, "SET #lease = :lease")
            .expression_attribute_names("#lease", LEASE)
            .expression_attribute_values(":lease", n(lease_until));
        self.conditional("UpdateItem", request.send().await)
    }

    /// Adds the last `done` to the batch's record and marks it finished, if
    /// `owner` still holds it. Answers whether it did.
    pub(super) async fn finish_batch(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        done: &Done,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let request = self
            .batch_update(broadcast, seq, owner, done, "SET #finished = :now")
            .expression_attribute_values(":now", n(now_ms));
        if self.conditional("UpdateItem", request.send().await)? {
            return Ok(true);
        }
        // Finished by this very write, retried by the SDK after it landed?
        let item = self.get(&batch_key(broadcast, seq)).await?;
        let mine = matches!(item.get(OWNER), Some(AttributeValue::S(o)) if o == owner);
        Ok(mine && item.contains_key(FINISHED))
    }

    /// Adds a finished batch's `counts` (delivered, released, failed) to the
    /// broadcast's tally, unless batch `seq` is counted already (its number
    /// is kept in the tally's set of counted batches, in the same write).
    /// Answers whether it added them.
    pub(super) async fn count_batch(
        &self,
        broadcast: &str,
        seq: u64,
        counts: [u64; 3],
        ttl: i64,
    ) -> Result<bool, Error> {
        let request = self
            .client()
            .update_item()
            .table_name(self.table())
            // One of the tally's shards: a hot item takes at most 1,000
            // writes a second, and each write costs the item's size.
            .key(CONNECTION_ID, s(tally_key(broadcast, seq % TALLY_SHARDS)))
            .update_expression(
                "SET #ttl = if_not_exists(#ttl, :ttl) \
                 ADD #d :d, #r :r, #f :f, #bd :one, #counted :seqs",
            )
            .condition_expression("NOT contains(#counted, :seq)")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#d", DELIVERED)
            .expression_attribute_names("#r", RELEASED)
            .expression_attribute_names("#f", FAILED)
            .expression_attribute_names("#bd", BATCHES_DONE)
            .expression_attribute_names("#counted", COUNTED)
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":d", n(counts[0]))
            .expression_attribute_values(":r", n(counts[1]))
            .expression_attribute_values(":f", n(counts[2]))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":seqs", AttributeValue::Ns(vec![seq.to_string()]))
            .expression_attribute_values(":seq", n(seq));
        self.conditional("UpdateItem", request.send().await)
    }

    /// An update of batch `seq`'s record, conditional on `owner` holding it
    /// and it being unfinished: `set`, then an ADD of `done`'s ids.
    fn batch_update(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        done: &Done,
        set: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(CONNECTION_ID, s(batch_key(broadcast, seq)))
            .condition_expression("#owner = :owner AND attribute_not_exists(#finished)")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#finished", FINISHED)
            .expression_attribute_values(":owner", s(owner));
        // DynamoDB refuses an empty set: only the outcomes with ids.
        let mut additions = Vec::new();
        for (name, ids) in done.sets() {
            if !ids.is_empty() {
                additions.push(format!("#{name} :{name}"));
                request = request
                    .expression_attribute_names(format!("#{name}"), name)
                    .expression_attribute_values(
                        format!(":{name}"),
                        AttributeValue::Ss(ids.iter().cloned().collect()),
                    );
            }
        }
        let expression = match additions.is_empty() {
            true => set.to_owned(),
            false => format!("{set} ADD {}", additions.join(", ")),
        };
        request.update_expression(expression)
    }
}

/// A number attribute of `item`.
fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// What a batch's record says is done.
fn done(mut item: HashMap<String, AttributeValue>) -> Done {
    let mut set = |name: &str| match item.remove(name) {
        Some(AttributeValue::Ss(ids)) => ids.into_iter().collect(),
        _ => BTreeSet::new(),
    };
    Done {
        delivered: set(DELIVERED),
        released: set(RELEASED),
        failed: set(FAILED),
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
