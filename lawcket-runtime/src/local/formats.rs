//! Timestamps and ids in the formats API Gateway uses, without a date crate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;

use crate::clock::now_ms;

/// A random, URL-safe id shaped like API Gateway's (`L0SM9cOFvHcCIhw=`): 11
/// random bytes in URL-safe base64. Randomness comes from std's per-process
/// SipHash keys mixed with a counter; unguessable enough for a local gateway.
pub(crate) fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = RandomState::new();
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_usize(i);
        hasher.write_i64(now_ms());
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    base64::engine::general_purpose::URL_SAFE.encode(&bytes[..11])
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn parts(ms: i64) -> Parts {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    Parts {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod % 3600 / 60,
        second: sod % 60,
        millis: ms.rem_euclid(1000),
    }
}

/// `25/Nov/2026:11:40:53 +0000`, as in `requestContext.requestTime`.
pub(crate) fn request_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let p = parts(ms);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        p.day,
        MONTHS[p.month as usize - 1],
        p.year,
        p.hour,
        p.minute,
        p.second
    )
}

/// `2026-11-25T11:40:53.439Z`, as in the `@connections` GET answer.
pub(crate) fn iso8601(ms: i64) -> String {
    let p = parts(ms);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_api_gateway() {
        // The fixtures' connectedAt is 1795606853439 and requestTime says this:
        assert_eq!(request_time(1795606853439), "25/Nov/2026:11:40:53 +0000");
        assert_eq!(iso8601(1795606853439), "2026-11-25T11:40:53.439Z");
        assert_eq!(iso8601(951782400000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let a = random_id();
        let b = random_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.ends_with('='));
        assert!(
            a[..15]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{a}"
        );
    }
}
