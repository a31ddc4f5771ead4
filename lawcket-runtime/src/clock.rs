//! The one clock: wall time since the Unix epoch, as DynamoDB items and API
//! Gateway events count it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the epoch (zero if the system clock is set before 1970).
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the epoch (`connectedAt`, `requestTimeEpoch`).
pub(crate) fn now_ms() -> i64 {
    now().as_millis() as i64
}

/// Seconds since the epoch (DynamoDB TTL).
pub(crate) fn now_secs() -> i64 {
    now().as_secs() as i64
}
