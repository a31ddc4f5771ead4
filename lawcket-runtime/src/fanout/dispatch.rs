//! The dispatcher: reads the selection (a Query on an index, or a Scan in
//! parallel segments), cuts it into batches, and hands them to the queue ten
//! messages at a time.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::clock::now_ms;
use crate::error::Error;
use crate::registry::{Registry, Selector};

use super::ids::{ledger_ttl, new_id};
use super::message::{encode, Batch, Fanout, INLINE_LIMIT, SEND_BATCH_ENTRIES, SEND_BATCH_LIMIT};

/// How a dispatch cuts the selection: connections per message, and parallel
/// Scan segments (where the registry can split its reading).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cut {
    pub(crate) batch: usize,
    pub(crate) segments: i32,
}

/// What a dispatch enqueued.
#[derive(Debug)]
pub(crate) struct Enqueued {
    pub(crate) id: String,
    pub(crate) connections: u64,
    pub(crate) batches: u64,
}

/// Dispatches `data` to the connections `selector` matches (but `except`),
/// cut as `cut` says, through `send` (a group of at most 10 message bodies,
/// at most 256 KiB together). The broadcast's record is written
/// first, so a worker never finds a batch of an unknown broadcast, and
/// closed last with the number of batches, so a report can tell a finished
/// broadcast from one still being dispatched.
pub(crate) async fn dispatch<S, F>(
    registry: &Registry,
    selector: Selector,
    except: Option<&str>,
    endpoint: &str,
    data: &[u8],
    cut: Cut,
    send: S,
) -> Result<Enqueued, Error>
where
    S: Fn(Vec<String>) -> F,
    F: Future<Output = Result<(), Error>>,
{
    let id = new_id();
    let encoded = encode(data);
    // The connection ids take the other half of the message.
    let inline = encoded.len() <= INLINE_LIMIT / 2;
    let stored = (!inline).then_some(data);
    let at = now_ms();
    registry
        .open_broadcast(&id, stored, at, ledger_ttl())
        .await?;
    let payload = inline.then_some(encoded);
    let seq = AtomicU64::new(0);
    let (batch_size, segments) = (cut.batch, registry.segments(&selector, cut.segments));
    let readers = (0..segments).map(|segment| {
        let selector = Selector {
            segment: (segments > 1).then_some((segment, segments)),
            ..selector.clone()
        };
        let (id, payload, seq, send) = (&id, &payload, &seq, &send);
        async move {
            let mut group = Group::new();
            let mut chunk = Vec::with_capacity(batch_size);
            let mut connections = 0u64;
            let mut cursor = None;
            loop {
                let (entries, next) = group.drive(registry.page(&selector, cursor)).await??;
                for entry in entries {
                    if Some(entry.connection_id.as_str()) == except {
                        continue;
                    }
                    connections += 1;
                    chunk.push((entry.connection_id, entry.connected_at));
                    if chunk.len() == batch_size {
                        let batch =
                            batch((id, at), seq, endpoint, payload, std::mem::take(&mut chunk));
                        group.add(batch, send).await?;
                    }
                }
                if next.is_none() {
                    break;
                }
                cursor = next;
            }
            if !chunk.is_empty() {
                group
                    .add(batch((id, at), seq, endpoint, payload, chunk), send)
                    .await?;
            }
            group.finish(send).await?;
            Ok::<u64, Error>(connections)
        }
    });
    let read = async {
        let counts = futures_util::future::try_join_all(readers).await?;
        let connections = counts.iter().sum();
        let batches = seq.load(Ordering::Relaxed);
        registry.close_broadcast(&id, batches, connections).await?;
        Ok((batches, connections))
    };
    let (batches, connections) = read.await.map_err(|source: Error| {
        match seq.load(Ordering::Relaxed) {
            0 => source, // nothing was enqueued
            batches => Error::Dispatch {
                broadcast: id.clone(),
                batches,
                source: Box::new(source),
            },
        }
    })?;
    Ok(Enqueued {
        id,
        connections,
        batches,
    })
}

fn batch(
    (id, at): (&str, i64),
    seq: &AtomicU64,
    endpoint: &str,
    payload: &Option<String>,
    connections: Vec<(String, Option<i64>)>,
) -> String {
    Batch {
        lawcket: Fanout::V1,
        broadcast: id.to_owned(),
        at,
        seq: seq.fetch_add(1, Ordering::Relaxed),
        endpoint: endpoint.to_owned(),
        payload: payload.clone(),
        connections,
    }
    .to_body()
}

/// SendMessageBatch calls in flight per reader: a Query (one reader) of a
/// million connections is 1,000 calls, which one at a time would take most of
/// the 29 s a WebSocket route has.
const SENDS_IN_FLIGHT: usize = 4;

/// Message bodies waiting to go out in one SendMessageBatch, and the calls
/// sending earlier groups.
struct Group<F> {
    bodies: Vec<String>,
    bytes: usize,
    sending: FuturesUnordered<F>,
}

impl<F: Future<Output = Result<(), Error>>> Group<F> {
    fn new() -> Self {
        Group {
            bodies: Vec::new(),
            bytes: 0,
            sending: FuturesUnordered::new(),
        }
    }

    async fn add<S>(&mut self, body: String, send: &S) -> Result<(), Error>
    where
        S: Fn(Vec<String>) -> F,
    {
        if self.bytes + body.len() > SEND_BATCH_LIMIT {
            self.flush(send).await?;
        }
        self.bytes += body.len();
        self.bodies.push(body);
        if self.bodies.len() == SEND_BATCH_ENTRIES {
            self.flush(send).await?;
        }
        Ok(())
    }

    /// Starts sending the waiting bodies, once fewer than
    /// [`SENDS_IN_FLIGHT`] calls are in flight.
    async fn flush<S>(&mut self, send: &S) -> Result<(), Error>
    where
        S: Fn(Vec<String>) -> F,
    {
        self.bytes = 0;
        if self.bodies.is_empty() {
            return Ok(());
        }
        while self.sending.len() >= SENDS_IN_FLIGHT {
            if let Some(sent) = self.sending.next().await {
                sent?;
            }
        }
        self.sending.push(send(std::mem::take(&mut self.bodies)));
        Ok(())
    }

    /// Runs `work` (reading the next page) while the calls in flight go on.
    async fn drive<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Error> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                Some(sent) = self.sending.next(), if !self.sending.is_empty() => sent?,
            }
        }
    }

    /// Sends what is waiting and waits for every call.
    async fn finish<S>(mut self, send: &S) -> Result<(), Error>
    where
        S: Fn(Vec<String>) -> F,
    {
        self.flush(send).await?;
        while let Some(sent) = self.sending.next().await {
            sent?;
        }
        Ok(())
    }
}
