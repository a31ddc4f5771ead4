//! Every number lawcket takes from AWS, and lawcket's own defaults, in one place.
//!
//! API Gateway's figures are from "Amazon API Gateway quotas for configuring and
//! running a WebSocket API" in the API Gateway developer guide.

use std::time::Duration;

/// The largest message API Gateway delivers or posts (128 KiB); a bigger body
/// is refused.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// The largest WebSocket frame API Gateway accepts (32 KiB).
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) const MAX_FRAME_BYTES: usize = 32 * 1024;

/// API Gateway closes a connection that has been idle this long.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the local gateway's
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// API Gateway closes every connection after this long.
pub(crate) const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(2 * 60 * 60);

/// How long after `connectedAt` a 410 does not prove a connection gone: while
/// `$connect` runs (API Gateway's integration timeout is 29 s) posts to the new
/// id answer 410 too, and releasing it then would leave a live connection
/// untracked.
pub(crate) const CONNECTING_GRACE_MS: i64 = 30_000;

/// Default lifetime of a registry item: API Gateway's maximum connection
/// duration plus 10 minutes of margin for clock skew and slow `$disconnect`s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(MAX_CONNECTION_DURATION.as_secs() + 10 * 60);

/// Posts in flight at once during a mass publish, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Items read per registry page during a mass publish unless configured: about
/// 50 KB of ids, a few ms of reading.
pub(crate) const DEFAULT_PAGE_SIZE: i32 = 1000;
