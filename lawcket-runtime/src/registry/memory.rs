//! The in-memory registry: a map behind a lock, for the local gateway.

use std::collections::HashMap;
use std::sync::Mutex;

use super::item::{Cursor, Entry, Item, Page, Selector};
use crate::clock::now_secs;
use crate::error::Error;
use crate::sync::SyncValue;

/// An in-memory registry, used by the local gateway unless DynamoDB is configured.
#[derive(Debug, Default)]
pub struct Memory {
    items: Mutex<HashMap<String, Item>>,
}

impl Memory {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn store(&self, item: &Item) -> Result<(), Error> {
        self.lock().insert(item.connection_id.clone(), item.clone());
        Ok(())
    }

    pub(super) fn release(&self, connection_id: &str) -> Result<(), Error> {
        self.lock().remove(connection_id);
        Ok(())
    }

    pub(super) fn page(&self, selector: &Selector, _cursor: Option<Cursor>) -> Page {
        let now = now_secs();
        // Local registries are small: one page holds every match.
        let mut entries: Vec<Entry> = self
            .lock()
            .values()
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
        entries.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        (entries, None)
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        // A panic while holding the lock cannot leave a map half-written, so a
        // poisoned lock is still safe to use.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}
