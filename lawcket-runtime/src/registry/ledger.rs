//! The fan-out's ledger, kept beside the connections: a record per dispatched
//! broadcast (its counts, and its payload when that is too big to travel in
//! every message) and a record per batch (which attempt holds it, which of its
//! connections are done, whether it is finished). Conditional writes on these
//! records are what keep a batch SQS delivers twice from posting twice.
//!
//! In DynamoDB the records are items of the connections table whose
//! `connectionId` starts with [`PREFIX`]: they have no `stage`, so no publish
//! selects them, and a `ttl`, so DynamoDB reaps them (`dynamo_ledger`).
//! This file holds the records' names and the memory registry's ledger.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// The key prefix of every ledger record.
pub(super) const PREFIX: &str = "lawcket#fanout#";

// Every attribute the ledger writes (but the table's `ttl`) starts with
// `lawcket_`, so none meets a sync field or an index of the user's.
pub(super) const OWNER: &str = "lawcket_owner";
pub(super) const LEASE: &str = "lawcket_leaseUntil";
pub(super) const FINISHED: &str = "lawcket_finishedAt";
pub(super) const DELIVERED: &str = "lawcket_delivered";
pub(super) const RELEASED: &str = "lawcket_released";
pub(super) const FAILED: &str = "lawcket_failed";
pub(super) const BATCHES_DONE: &str = "lawcket_batchesDone";
pub(super) const BATCHES: &str = "lawcket_batches";
pub(super) const CONNECTIONS: &str = "lawcket_connections";
pub(super) const PAYLOAD: &str = "lawcket_payload";
pub(super) const CREATED: &str = "lawcket_createdAt";
/// The numbers of the batches a tally shard counts.
pub(super) const COUNTED: &str = "lawcket_countedBatches";

/// Items a broadcast's tally is spread over (batch `seq` counts in shard
/// `seq % TALLY_SHARDS`): one item takes at most 1,000 writes a second, each
/// costing its size, and holds 400 KB of counted batch numbers.
pub(super) const TALLY_SHARDS: u64 = 16;

pub(super) fn broadcast_key(broadcast: &str) -> String {
    format!("{PREFIX}{broadcast}")
}

pub(super) fn batch_key(broadcast: &str, seq: u64) -> String {
    format!("{PREFIX}{broadcast}#{seq}")
}

pub(super) fn payload_key(broadcast: &str) -> String {
    format!("{PREFIX}{broadcast}#payload")
}

pub(super) fn tally_key(broadcast: &str, shard: u64) -> String {
    format!("{PREFIX}{broadcast}#tally#{shard}")
}

/// What a broadcast has done so far, as its record holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) delivered: u64,
    pub(crate) released: u64,
    pub(crate) failed: u64,
    pub(crate) batches_done: u64,
    /// Set once the dispatcher has enqueued every batch.
    pub(crate) batches: Option<u64>,
    pub(crate) connections: Option<u64>,
}

/// The connections of one batch that are done, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Done {
    pub(crate) delivered: BTreeSet<String>,
    pub(crate) released: BTreeSet<String>,
    pub(crate) failed: BTreeSet<String>,
}

impl Done {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.delivered.contains(id) || self.released.contains(id) || self.failed.contains(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.delivered.len() + self.released.len() + self.failed.len()
    }

    pub(crate) fn extend(&mut self, other: &Done) {
        self.delivered.extend(other.delivered.iter().cloned());
        self.released.extend(other.released.iter().cloned());
        self.failed.extend(other.failed.iter().cloned());
    }

    pub(super) fn sets(&self) -> [(&'static str, &BTreeSet<String>); 3] {
        [
            (DELIVERED, &self.delivered),
            (RELEASED, &self.released),
            (FAILED, &self.failed),
        ]
    }
}

/// What claiming a batch came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This attempt holds the batch; what earlier attempts finished.
    Mine(Done),
    /// An attempt finished it (this is what it did); it is counted or about
    /// to be.
    Finished(Done),
    /// Another attempt holds it and its lease has not run out.
    Busy,
}

/// The memory registry's ledger.
#[derive(Debug, Default)]
pub(crate) struct MemoryLedger(Mutex<HashMap<String, Record>>);

#[derive(Debug)]
enum Record {
    Broadcast {
        tally: Tally,
        payload: Option<Vec<u8>>,
        counted: BTreeSet<u64>,
    },
    Batch {
        owner: String,
        lease_until: i64,
        finished: bool,
        done: Done,
    },
}

impl MemoryLedger {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // Every update below is whole before the lock is released.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryLedger {
    pub(super) fn open(&self, broadcast: &str, payload: Option<&[u8]>) {
        let record = Record::Broadcast {
            tally: Tally::default(),
            payload: payload.map(<[u8]>::to_vec),
            counted: BTreeSet::new(),
        };
        self.lock().insert(broadcast_key(broadcast), record);
    }

    pub(super) fn close(&self, broadcast: &str, batches: u64, connections: u64) {
        if let Some(Record::Broadcast { tally, .. }) =
            self.lock().get_mut(&broadcast_key(broadcast))
        {
            tally.batches = Some(batches);
            tally.connections = Some(connections);
        }
    }

    pub(super) fn payload(&self, broadcast: &str) -> Option<Vec<u8>> {
        match self.lock().get(&broadcast_key(broadcast)) {
            Some(Record::Broadcast { payload, .. }) => payload.clone(),
            _ => None,
        }
    }

    pub(super) fn tally(&self, broadcast: &str) -> Option<Tally> {
        match self.lock().get(&broadcast_key(broadcast)) {
            Some(Record::Broadcast { tally, .. }) => Some(tally.clone()),
            _ => None,
        }
    }

    pub(super) fn claim(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Claim {
        let mut ledger = self.lock();
        let record = ledger
            .entry(batch_key(broadcast, seq))
            .or_insert_with(|| Record::Batch {
                owner: String::new(),
                lease_until: 0,
                finished: false,
                done: Done::default(),
            });
        match record {
            Record::Batch {
                finished: true,
                done,
                ..
            } => Claim::Finished(done.clone()),
            Record::Batch { lease_until: l, .. } if *l >= now_ms => Claim::Busy,
            Record::Batch {
                owner: o,
                lease_until: l,
                done,
                ..
            } => {
                *o = owner.to_owned();
                *l = lease_until;
                Claim::Mine(done.clone())
            }
            Record::Broadcast { .. } => Claim::Busy,
        }
    }

    pub(super) fn progress(
        &self,
        broadcast: &str,
        seq: u64,
        owner: &str,
        lease_until: i64,
        done: &Done,
    ) -> bool {
        match self.lock().get_mut(&batch_key(broadcast, seq)) {
            Some(Record::Batch {
                owner: o,
                lease_until: l,
                finished: false,
                done: recorded,
            }) if o == owner => {
                recorded.extend(done);
                *l = lease_until;
                true
            }
            _ => false,
        }
    }

    pub(super) fn finish(&self, broadcast: &str, seq: u64, owner: &str, done: &Done) -> bool {
        match self.lock().get_mut(&batch_key(broadcast, seq)) {
            Some(Record::Batch {
                owner: o,
                finished: finished @ false,
                done: recorded,
                ..
            }) if o == owner => {
                recorded.extend(done);
                *finished = true;
                true
            }
            _ => false,
        }
    }

    pub(super) fn count(&self, broadcast: &str, seq: u64, counts: [u64; 3]) -> bool {
        match self.lock().get_mut(&broadcast_key(broadcast)) {
            Some(Record::Broadcast { tally, counted, .. }) => {
                if !counted.insert(seq) {
                    return false;
                }
                tally.delivered += counts[0];
                tally.released += counts[1];
                tally.failed += counts[2];
                tally.batches_done += 1;
                true
            }
            _ => false,
        }
    }
}
