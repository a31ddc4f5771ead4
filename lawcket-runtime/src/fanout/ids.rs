//! Ids of broadcasts and of attempts at a batch, and how long ledger
//! records live.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::{now_ms, now_secs};

/// How long ledger records are kept: past SQS's longest retention (14 days),
/// so a batch redriven from the dead-letter queue still finds its record.
pub(crate) const LEDGER_DAYS: i64 = 15;

/// An id unique across processes: the time, and 64 random bits from the
/// standard library's per-process random hasher keys and a counter.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:x}-{:016x}", now_ms(), hasher.finish())
}

/// When ledger records may be reaped (epoch seconds).
pub(crate) fn ledger_ttl() -> i64 {
    now_secs() + LEDGER_DAYS * 86_400
}
