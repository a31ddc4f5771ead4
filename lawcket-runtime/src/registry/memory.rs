use std::collections::HashMap;
use std::sync::Mutex;

use super::Item;
use crate::Error;

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

    /// The stored item for `connection_id`, if any.
    pub fn get(&self, connection_id: &str) -> Option<Item> {
        self.lock().get(connection_id).cloned()
    }

    /// How many connections are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        // A panic while holding the lock cannot leave a map half-written, so a
        // poisoned lock is still safe to use.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}
