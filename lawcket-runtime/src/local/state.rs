//! What the gateway's HTTP side and its sockets share: the settings, the
//! pipeline, the slots for invocations, and the live connections the
//! management API reaches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::events::Peer;
use super::settings::Settings;
use super::slots::Slots;
use crate::pipeline::Pipeline;

/// What the socket task is asked to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Data(Vec<u8>),
    Close,
}

/// The way to one client's socket task, with the bytes queued and not yet
/// written: a client that reads slower than it is posted to fills it, and
/// posts then answer 429 instead of growing the queue without bound.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// Why a post was not queued.
pub(crate) enum Refused {
    /// The socket task has ended: the connection is gone.
    Gone,
    /// The client's queue is over the limit.
    Full,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> (Outbox, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Outbox {
            tx,
            queued: Arc::default(),
            limit,
        };
        (outbox, rx)
    }

    /// Queues a post from the management API.
    pub(crate) fn post(&self, data: Vec<u8>) -> Result<(), Refused> {
        let len = data.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.send(Outgoing::Data(data)).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            Refused::Gone
        })
    }

    /// Queues the gateway's own answer (an error or timeout frame): small,
    /// and never refused for a full queue.
    pub(crate) fn notice(&self, data: Vec<u8>) {
        self.queued.fetch_add(data.len(), Ordering::AcqRel);
        // Refused only when the socket is gone, and the count with it.
        let _ = self.tx.send(Outgoing::Data(data));
    }

    /// Asks the socket task to close; false when it has already ended.
    pub(crate) fn close(&self) -> bool {
        self.tx.send(Outgoing::Close).is_ok()
    }

    /// Called by the socket task once `len` bytes are written.
    pub(crate) fn written(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::AcqRel);
    }
}

/// A connection whose `$connect` was accepted.
pub(crate) struct Live {
    pub(crate) outbox: Outbox,
    pub(crate) peer: Peer,
    pub(crate) last_active: i64,
}

pub(crate) struct Gateway {
    pub(crate) settings: Settings,
    pub(crate) pipeline: Arc<Pipeline>,
    /// One slot per invocation in flight (`settings.concurrency`).
    pub(crate) slots: Arc<Slots>,
    pub(crate) live: Mutex<HashMap<String, Live>>,
}

impl Gateway {
    pub(crate) fn new(settings: Settings, pipeline: Arc<Pipeline>) -> Gateway {
        Gateway {
            slots: Slots::new(settings.concurrency),
            settings,
            pipeline,
            live: Mutex::default(),
        }
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        // A panic while holding the lock cannot leave the map half-written.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
