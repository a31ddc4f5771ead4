//! Every number lawcket takes from AWS, and lawcket's own defaults, in one place.
//!
//! API Gateway's figures are from "Amazon API Gateway quotas for configuring and
//! running a WebSocket API" in the API Gateway developer guide.

use std::time::Duration;

/// The largest message API Gateway delivers or posts (128 KiB); a bigger body
/// is refused.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// The longest URL API Gateway accepts for a WebSocket API, in characters: a
/// `$connect` whose query string is longer cannot have come from it.
pub(crate) const MAX_URL_CHARS: usize = 4096;

/// API Gateway's integration timeout: no `$connect` (or any invocation) runs
/// longer than this behind API Gateway.
pub(crate) const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// The largest WebSocket frame API Gateway accepts (32 KiB).
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) const MAX_FRAME_BYTES: usize = 32 * 1024;

/// API Gateway closes a connection that has been idle this long.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// API Gateway closes every connection after this long.
pub(crate) const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(2 * 60 * 60);

/// How long after `connectedAt` a 410 does not prove a connection gone: while
/// its `$connect` runs, posts to the new id answer 410 too, and releasing it
/// then would leave a live connection untracked. A `$connect` cannot run past
/// the integration timeout, so after that a 410 means gone; one more second
/// allows for skew between API Gateway's clock and the function's.
pub(crate) const CONNECTING_GRACE_MS: i64 = INTEGRATION_TIMEOUT.as_millis() as i64 + 1_000;

/// Default lifetime of a registry item: API Gateway's maximum connection
/// duration plus 10 minutes of margin for clock skew and slow `$disconnect`s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(MAX_CONNECTION_DURATION.as_secs() + 10 * 60);

/// Default bound on one DynamoDB call, retries included: a `$connect` whose
/// store times out is refused and marked refused (bounded the same way),
/// about 10 s in all, well inside the integration timeout. Override it with
/// `LAWCKET_DYNAMODB_TIMEOUT` (seconds).
pub const DEFAULT_DYNAMODB_TIMEOUT: Duration = Duration::from_secs(5);

/// Default bound on one `@connections` post, retries of throttling and 5xx
/// answers included. Override it with `LAWCKET_POST_TIMEOUT`.
pub const DEFAULT_POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on one attempt of a DynamoDB call: a request that hangs is given up
/// and retried while the call's own bound allows.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on opening a connection to DynamoDB or API Gateway (milliseconds
/// inside a region).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Posts in flight at once during a mass publish, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Items read per registry page during a mass publish unless configured: about
/// 50 KB of ids, a few ms of reading.
pub(crate) const DEFAULT_PAGE_SIZE: i32 = 1000;
