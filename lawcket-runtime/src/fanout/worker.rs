//! The worker: takes a batch in the ledger, posts to the connections of it
//! that no earlier attempt finished, paced and bounded, records what it did as
//! it goes, releases the gone, and finishes the batch, counting it once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::now_ms;
use crate::error::{chain, Error};
use crate::limits::CONNECTING_GRACE_MS;
use crate::management::Outcome;
use crate::registry::{Claim, Done, Registry};

use super::ids::{ledger_ttl, new_id, LEDGER_DAYS};
use super::message::Batch;
use super::pacer::Pacer;

/// One post: `(connection id, payload)` to its outcome.
pub type Post = Arc<dyn Fn(String, Arc<[u8]>) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// Outcomes recorded at once.
const FLUSH_EVERY: usize = 25;
/// A batch's posts started and not yet recorded, at most: a post holds its
/// place from before it starts until its outcome is in the ledger, so
/// however slow the ledger's writes, an attempt that dies leaves at most
/// this many connections of each batch it held to be posted again. (Twice
/// [`FLUSH_EVERY`]: posts go on while a full flush is being written.)
pub(crate) const UNRECORDED_MAX: usize = 2 * FLUSH_EVERY;
/// Attempts at a throttled post before its batch is left for SQS to deliver
/// again, where there is no deadline (the local gateway). On Lambda a
/// throttled post is tried until the deadline nears.
const POST_ATTEMPTS: u32 = 6;
/// No post starts later than this before the invocation's deadline.
const START_MARGIN: Duration = Duration::from_secs(8);
/// Posts still in flight this long before the deadline are given up (they
/// may have been delivered: they count as a crash's would), so the worker
/// has the time to record what it did and answer before Lambda stops it.
const STOP_MARGIN: Duration = Duration::from_secs(4);

/// A worker's shared state: its share of the budget, its bound on posts in
/// flight, and the payload of the broadcast it last read from the ledger.
pub struct Worker {
    pacer: Arc<Pacer>,
    permits: Arc<Semaphore>,
    lease: Duration,
    payload: Mutex<Option<(String, Arc<[u8]>)>>,
}

impl Worker {
    /// A worker posting at most `rate` a second, `concurrency` at a time,
    /// holding a batch for `lease` past its last recorded progress.
    pub fn new(rate: f64, concurrency: usize, lease: Duration) -> Self {
        Worker {
            pacer: Arc::new(Pacer::new(rate)),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            lease,
            payload: Mutex::new(None),
        }
    }

    /// Works one batch. Answers whether it is finished (by this attempt or
    /// an earlier one); `false` leaves it for SQS to deliver again.
    pub async fn run(
        &self,
        registry: &Registry,
        batch: Batch,
        deadline: Option<Instant>,
        post: Post,
    ) -> Result<bool, Error> {
        // A message redriven from the dead-letter queue can come after the
        // ledger's records are reaped; posting it then would post twice.
        let age_days = (now_ms() - batch.at) / 86_400_000;
        if age_days >= LEDGER_DAYS - 1 {
            return Err(Error::Config(format!(
                "batch {} of broadcast {} was dispatched {age_days} days ago; its ledger \
                 records are kept {LEDGER_DAYS} days, so it is not posted (it could post twice)",
                batch.seq, batch.broadcast
            )));
        }
        let owner = new_id();
        let (broadcast, seq) = (batch.broadcast.clone(), batch.seq);
        let broadcast = broadcast.as_str();
        let lease_until = || now_ms() + self.lease.as_millis() as i64;
        let claim = registry
            .claim_batch(
                broadcast,
                seq,
                &owner,
                now_ms(),
                lease_until(),
                ledger_ttl(),
            )
            .await?;
        let recorded = match claim {
            Claim::Mine(done) => done,
            // Finished by an attempt that may have died before counting it.
            Claim::Finished(done) => return count(registry, broadcast, seq, &done).await,
            Claim::Busy => {
                tracing::info!(
                    broadcast,
                    seq,
                    "batch held by another attempt; left for later"
                );
                return Ok(false);
            }
        };
        let outcome = self
            .work(registry, batch, &owner, recorded, deadline, post)
            .await;
        if outcome.is_err() {
            // Give the lease up, so SQS's next delivery need not wait for it.
            let nothing = Done::default();
            let _ = registry
                .record_progress(broadcast, seq, &owner, 0, &nothing)
                .await;
        }
        outcome
    }

    /// Posts what `recorded` does not hold yet, records it, and finishes
    /// the batch if nothing is left.
    async fn work(
        &self,
        registry: &Registry,
        batch: Batch,
        owner: &str,
        mut recorded: Done,
        deadline: Option<Instant>,
        post: Post,
    ) -> Result<bool, Error> {
        let (broadcast, seq) = (batch.broadcast.as_str(), batch.seq);
        let lease_until = || now_ms() + self.lease.as_millis() as i64;
        let payload = self.payload(registry, &batch).await?;
        let margin = |m: Duration| deadline.map(|d| d.checked_sub(m).unwrap_or(d));
        let (start_by, stop_at) = (margin(START_MARGIN), margin(STOP_MARGIN));
        if start_by.is_some_and(|d| d <= Instant::now()) {
            tracing::warn!(
                broadcast,
                seq,
                "the invocation has less than {START_MARGIN:?} left: no post starts; give the \
                 function a longer timeout"
            );
        }
        let mut posts = JoinSet::new();
        let unrecorded = Arc::new(Semaphore::new(UNRECORDED_MAX));
        for (id, connected_at) in batch.connections {
            if recorded.contains(&id) {
                continue;
            }
            let attempt = Attempt {
                unrecorded: Arc::clone(&unrecorded),
                pacer: Arc::clone(&self.pacer),
                permits: Arc::clone(&self.permits),
                post: Arc::clone(&post),
                payload: Arc::clone(&payload),
                deadline: start_by,
            };
            // Tasks, so posts go on while progress is recorded.
            posts.spawn(attempt.run(id, connected_at));
        }
        let mut pending = Done::default();
        // The places of the posts in `pending`, given back once recorded.
        let mut places = Vec::new();
        let mut unfinished = 0usize;
        let mut renew = tokio::time::interval(self.lease / 3);
        renew.tick().await;
        let mut last_write = Instant::now();
        loop {
            tokio::select! {
                joined = posts.join_next() => {
                    let Some(joined) = joined else { break };
                    match joined {
                        Ok((id, Some(settled), place)) => {
                            match settled {
                                Settled::Delivered => pending.delivered.insert(id),
                                Settled::Released => pending.released.insert(id),
                                Settled::Failed => pending.failed.insert(id),
                            };
                            places.push(place);
                        }
                        Ok((_, None, _)) => unfinished += 1,
                        Err(panic) => {
                            tracing::error!(error = %panic, "a post task failed");
                            unfinished += 1;
                        }
                    }
                    if pending.len() < FLUSH_EVERY {
                        continue;
                    }
                }
                // The lease lapses only if nothing was written for a while.
                _ = renew.tick() => {
                    if last_write.elapsed() < self.lease / 3 {
                        continue;
                    }
                }
                // Lambda is about to stop this invocation: what is in flight
                // is given up, and the rest recorded.
                _ = tokio::time::sleep_until(stop_at.unwrap_or_else(Instant::now)), if stop_at.is_some() => {
                    unfinished += posts.len();
                    posts.abort_all();
                    break;
                }
            }
            last_write = Instant::now();
            if !registry
                .record_progress(broadcast, seq, owner, lease_until(), &pending)
                .await?
            {
                tracing::warn!(
                    broadcast,
                    seq,
                    "lost the batch to another attempt; stopping"
                );
                return Ok(false);
            }
            recorded.extend(&pending);
            pending = Done::default();
            places.clear();
        }
        if unfinished > 0 {
            tracing::info!(
                broadcast,
                seq,
                unfinished,
                "batch unfinished; left for SQS to deliver again"
            );
            // The lease ends now: SQS's next delivery may take the batch at
            // once. (Whether or not it still held, the batch is unfinished.)
            registry
                .record_progress(broadcast, seq, owner, 0, &pending)
                .await?;
            return Ok(false);
        }
        recorded.extend(&pending);
        if !recorded.released.is_empty() {
            let released: Vec<String> = recorded.released.iter().cloned().collect();
            registry.release_many(&released).await?;
        }
        if !registry
            .finish_batch(broadcast, seq, owner, &pending, now_ms())
            .await?
        {
            return Ok(false); // another attempt took it over, and will count it
        }
        count(registry, broadcast, seq, &recorded).await
    }

    /// The batch's payload: inline, or the broadcast's stored one (read once
    /// per broadcast and kept).
    async fn payload(&self, registry: &Registry, batch: &Batch) -> Result<Arc<[u8]>, Error> {
        if let Some(inline) = batch.inline_payload() {
            return inline.map(Arc::from);
        }
        let cached = self
            .payload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match cached {
            Some((id, payload)) if id == batch.broadcast => Ok(payload),
            _ => {
                let payload: Arc<[u8]> = registry.broadcast_payload(&batch.broadcast).await?.into();
                *self.payload.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((batch.broadcast.clone(), Arc::clone(&payload)));
                Ok(payload)
            }
        }
    }
}

/// Adds a finished batch to its broadcast's tally (once, however often
/// this runs for it). Answers that the batch is done.
async fn count(registry: &Registry, broadcast: &str, seq: u64, done: &Done) -> Result<bool, Error> {
    let counts = [
        done.delivered.len() as u64,
        done.released.len() as u64,
        done.failed.len() as u64,
    ];
    registry
        .count_batch(broadcast, seq, counts, ledger_ttl())
        .await?;
    Ok(true)
}

/// How a connection of the batch was settled.
enum Settled {
    Delivered,
    /// 410 Gone, and it opened long enough ago that it is truly gone.
    Released,
    /// Failed for good (or perhaps delivered: no answer in time).
    Failed,
}

/// What one post needs, owned, so it can run as a task.
struct Attempt {
    /// The batch's places for posts not yet recorded ([`UNRECORDED_MAX`]).
    unrecorded: Arc<Semaphore>,
    pacer: Arc<Pacer>,
    permits: Arc<Semaphore>,
    post: Post,
    payload: Arc<[u8]>,
    deadline: Option<Instant>,
}

impl Attempt {
    /// Posts to `id` in its turn, trying a throttled post again (the whole
    /// worker slows down); `None` if it could not be settled in time. The
    /// place it took stays held until its outcome is recorded.
    async fn run(
        self,
        id: String,
        connected_at: Option<i64>,
    ) -> (String, Option<Settled>, Option<OwnedSemaphorePermit>) {
        // Never closed: the semaphore lives as long as the batch's run.
        let place = Arc::clone(&self.unrecorded).acquire_owned().await.ok();
        let settled = self.settle(&id, connected_at).await;
        (id, settled, place)
    }

    async fn settle(&self, id: &str, connected_at: Option<i64>) -> Option<Settled> {
        let mut throttles = 0;
        // With a deadline, a throttled post is tried until it nears; without
        // one (the local gateway), a few times.
        while self.deadline.is_some() || throttles < POST_ATTEMPTS {
            // No post starts past the deadline, however long its turn takes.
            let turn = async {
                let permit = self.permits.acquire().await.ok()?;
                self.pacer.acquire().await;
                Some(permit)
            };
            let _permit = match self.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, turn).await.ok()??,
                None => turn.await?,
            };
            let sent = Instant::now();
            let settled = match (self.post)(id.to_owned(), Arc::clone(&self.payload)).await {
                Outcome::Delivered => Settled::Delivered,
                // Within the grace its $connect may still be running.
                Outcome::Gone
                    if connected_at.is_some_and(|at| at >= now_ms() - CONNECTING_GRACE_MS) =>
                {
                    Settled::Failed
                }
                Outcome::Gone => Settled::Released,
                Outcome::Failed(error) => {
                    tracing::warn!(connection_id = id, error = %chain(&error), "post failed");
                    Settled::Failed
                }
                Outcome::Throttled(_) => {
                    self.pacer.throttled(sent);
                    throttles += 1;
                    continue;
                }
            };
            return Some(settled);
        }
        None
    }
}
