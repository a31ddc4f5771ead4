//! The bound on invocations in flight (`LAWCKET_LOCAL_CONCURRENCY`), as a
//! function's concurrency bounds Lambda. Events beyond it wait their turn,
//! and a waiting `$connect` or `$disconnect` goes before waiting messages: on
//! AWS a function scales out instead of queueing, so a flood of messages
//! never keeps a client from connecting, and here it must not either. A
//! socket waits for a slot before it reads its next message, so waiting
//! messages stay in the client's socket, not in the gateway's memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Which queue an event waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// `$connect` and `$disconnect`: served first.
    Lifecycle,
    Message,
}

#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    lifecycle: VecDeque<oneshot::Sender<Slot>>,
    messages: VecDeque<oneshot::Sender<Slot>>,
}

/// One invocation's place; dropping it lets the next event in.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Option<Arc<Slots>>,
}

impl Slots {
    pub(crate) fn new(limit: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(State {
                free: limit,
                lifecycle: VecDeque::new(),
                messages: VecDeque::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot, at once or when one is freed (lifecycle events first). A
    /// caller dropped while waiting gives up its place.
    pub(crate) async fn acquire(self: Arc<Self>, lane: Lane) -> Slot {
        let waiting = {
            let mut state = self.state();
            if state.free > 0 {
                state.free -= 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                match lane {
                    Lane::Lifecycle => state.lifecycle.push_back(tx),
                    Lane::Message => state.messages.push_back(tx),
                }
                Some(rx)
            }
        };
        match waiting {
            None => Slot { slots: Some(self) },
            // The sender is in our queue, which lives as long as `self`, and
            // is only ever dropped after sending.
            Some(rx) => rx.await.expect("a queued waiter is always sent a slot"),
        }
    }

    /// Hands a freed slot to the first waiter still waiting, or keeps it.
    fn release(self: &Arc<Self>) {
        let mut state = self.state();
        loop {
            let Some(waiter) = state
                .lifecycle
                .pop_front()
                .or_else(|| state.messages.pop_front())
            else {
                state.free += 1;
                return;
            };
            let slot = Slot {
                slots: Some(Arc::clone(self)),
            };
            match waiter.send(slot) {
                Ok(()) => return,
                // That waiter gave up: disarm the slot and try the next.
                Err(mut slot) => slot.slots = None,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lifecycle_events_go_first_and_no_slot_is_lost() {
        let slots = Slots::new(1);
        let held = Arc::clone(&slots).acquire(Lane::Message).await;
        let message = tokio::spawn(Arc::clone(&slots).acquire(Lane::Message));
        tokio::task::yield_now().await;
        // A waiter that gives up keeps no slot.
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            Arc::clone(&slots).acquire(Lane::Lifecycle),
        )
        .await;
        assert!(gave_up.is_err());
        let connect = tokio::spawn(Arc::clone(&slots).acquire(Lane::Lifecycle));
        tokio::task::yield_now().await;
        drop(held);
        // The lifecycle waiter came later but gets the slot first.
        let connect = connect.await.unwrap();
        assert!(!message.is_finished());
        drop(connect);
        drop(message.await.unwrap());
        assert_eq!(slots.state().free, 1);
    }
}
