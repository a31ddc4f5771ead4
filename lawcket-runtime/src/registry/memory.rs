//! The in-memory registry: a map behind a lock, for the local gateway.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue;
use lawcket_rules::attributes::CONNECTION_ID;

use super::item::{Cursor, Entry, Item, Page, Selector};
use crate::clock::now_secs;
use crate::error::Error;
use crate::limits::DEFAULT_PAGE_SIZE;
use crate::sync::SyncValue;

/// An in-memory registry, used by the local gateway unless DynamoDB is configured.
#[derive(Debug)]
pub struct Memory {
    /// Ordered by id, so a page resumes after the last id of the one before.
    items: Mutex<BTreeMap<String, Item>>,
    /// Items read per page, as DynamoDB's `Limit`.
    page_size: usize,
    /// The fan-out's ledger.
    #[cfg(feature = "fanout")]
    ledger: super::ledger::MemoryLedger,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            items: Mutex::default(),
            page_size: DEFAULT_PAGE_SIZE as usize,
            #[cfg(feature = "fanout")]
            ledger: Default::default(),
        }
    }
}

impl Memory {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Items read per page during a mass publish (default 1,000).
    #[cfg(any(test, feature = "test-util"))]
    pub fn with_page_size(mut self, items: usize) -> Self {
        self.page_size = items.max(1);
        self
    }

    pub(super) fn store(&self, item: &Item) -> Result<(), Error> {
        self.lock().insert(item.connection_id.clone(), item.clone());
        Ok(())
    }

    pub(super) fn release(&self, connection_id: &str) -> Result<(), Error> {
        self.lock().remove(connection_id);
        Ok(())
    }

    /// Pages as DynamoDB does: the page size counts items read, matching or
    /// not, and the cursor is the last id read.
    pub(super) fn page(&self, selector: &Selector, cursor: Option<Cursor>) -> Page {
        // Everything is in segment 0: a map read needs no splitting.
        if selector.segment.is_some_and(|(segment, _)| segment > 0) {
            return (Vec::new(), None);
        }
        let now = now_secs();
        let after = match cursor.and_then(|Cursor(mut key)| key.remove(CONNECTION_ID)) {
            Some(AttributeValue::S(id)) => Bound::Excluded(id),
            _ => Bound::Unbounded,
        };
        let items = self.lock();
        let read: Vec<&Item> = items
            .range((after, Bound::Unbounded))
            .map(|(_, item)| item)
            .take(self.page_size)
            .collect();
        let next = match read.last() {
            Some(last) if read.len() == self.page_size => Some(Cursor(HashMap::from([(
                CONNECTION_ID.to_owned(),
                AttributeValue::S(last.connection_id.clone()),
            )]))),
            _ => None,
        };
        let entries = read
            .into_iter()
            .filter(|item| item.ttl > now)
            .filter(|item| selector.stage.as_ref().is_none_or(|s| *s == item.stage))
            .filter(|item| match &selector.field {
                None => true,
                Some((name, value)) => item.fields.iter().any(|(n, v)| n == name && v == value),
            })
            .map(|item| Entry {
                connection_id: item.connection_id.clone(),
                connected_at: Some(item.connected_at),
            })
            .collect();
        (entries, next)
    }

    pub(super) fn release_if_older(&self, connection_id: &str, cutoff_ms: i64) -> bool {
        let mut items = self.lock();
        match items.get(connection_id) {
            Some(item) if item.connected_at >= cutoff_ms => false,
            _ => {
                items.remove(connection_id);
                true
            }
        }
    }

    pub(super) fn update(&self, connection_id: &str, field: &str, value: &SyncValue) -> bool {
        let mut items = self.lock();
        let Some(item) = items.get_mut(connection_id) else {
            return false;
        };
        match item.fields.iter_mut().find(|(n, _)| n == field) {
            Some((_, v)) => *v = value.clone(),
            None => item.fields.push((field.to_owned(), value.clone())),
        }
        true
    }

    /// The stored item for `connection_id`, if any.
    #[cfg(any(test, feature = "test-util"))]
    pub fn get(&self, connection_id: &str) -> Option<Item> {
        self.lock().get(connection_id).cloned()
    }

    /// How many connections are stored.
    #[cfg(any(test, feature = "test-util"))]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is stored.
    #[cfg(any(test, feature = "test-util"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(feature = "fanout")]
    pub(super) fn ledger(&self) -> &super::ledger::MemoryLedger {
        &self.ledger
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Item>> {
        // A panic while holding the lock cannot leave a map half-written, so a
        // poisoned lock is still safe to use.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}
