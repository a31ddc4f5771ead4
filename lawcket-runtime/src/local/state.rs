//! What the gateway's HTTP side and its sockets share: the settings, the
//! pipeline, and the live connections the management API reaches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::events::Peer;
use super::settings::Settings;
use crate::pipeline::Pipeline;

/// What the management API asks of a live connection.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Data(Vec<u8>),
    Close,
}

/// A connection whose `$connect` was accepted.
pub(crate) struct Live {
    pub(crate) tx: mpsc::UnboundedSender<Outgoing>,
    pub(crate) peer: Peer,
    pub(crate) last_active: i64,
}

pub(crate) struct Gateway {
    pub(crate) settings: Settings,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) live: Mutex<HashMap<String, Live>>,
}

impl Gateway {
    pub(crate) fn live(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        // A panic while holding the lock cannot leave the map half-written.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
