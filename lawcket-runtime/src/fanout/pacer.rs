//! Pacing one worker's posts to its share of the budget: a token bucket (as
//! GCRA, one timestamp) that halves its rate and pauses on a 429, and wins the
//! rate back while posts go through.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How much unused time a bucket may save up: at most this much of its rate
/// goes out at once after an idle spell.
const BURST: Duration = Duration::from_millis(50);
/// The slowest a bucket gets after 429s: its rate over this.
const MAX_SLOWDOWN: u32 = 16;
/// The pause after a 429, doubled per 429 that follows within [`RECOVERY`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How often a slowed bucket speeds up again (by a quarter of its interval's
/// excess) while no 429 comes.
const RECOVERY: Duration = Duration::from_millis(250);

/// A token bucket at `rate` posts per second, shared by one worker's posts.
#[derive(Debug)]
pub struct Pacer {
    base: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the next post may go (GCRA's "theoretical arrival time").
    next: Instant,
    /// The current interval between posts: `base`, or longer after 429s.
    interval: Duration,
    /// No post goes before this (after a 429).
    paused_until: Instant,
    pause: Duration,
    last_change: Instant,
    /// When the rate was last cut: a 429 for a post sent before it belongs
    /// to the same congestion (the posts in flight then all come back 429),
    /// and cuts nothing more.
    last_cut: Instant,
}

impl Pacer {
    /// A bucket letting `rate` posts a second through (at least one).
    pub fn new(rate: f64) -> Self {
        let base = Duration::from_secs_f64(1.0 / rate.max(1e-3));
        let now = Instant::now();
        Pacer {
            base,
            state: Mutex::new(State {
                next: now,
                interval: base,
                paused_until: now,
                pause: FIRST_PAUSE,
                last_change: now,
                last_cut: now,
            }),
        }
    }

    /// Waits for this post's turn.
    pub async fn acquire(&self) {
        let slot = {
            let mut state = self.lock();
            let now = Instant::now();
            let quiet = now.duration_since(state.last_change);
            if state.interval > self.base && quiet >= RECOVERY {
                // A quarter of the excess off per quiet period, idle or not.
                let periods = (quiet.as_nanos() / RECOVERY.as_nanos()).min(64) as i32;
                let excess = (state.interval - self.base).mul_f64(0.75f64.powi(periods));
                state.interval = self.base + excess;
                if excess < Duration::from_micros(1) {
                    state.interval = self.base;
                }
                state.last_change = now;
                state.pause = FIRST_PAUSE;
            }
            let earliest = now.checked_sub(BURST).unwrap_or(now);
            let slot = state.next.max(earliest).max(state.paused_until);
            state.next = slot + state.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// API Gateway answered 429 to a post `sent` then: halve the rate (down
    /// to a sixteenth) and pause every post of this worker for a while,
    /// longer if 429s keep coming. Once per congestion: a 429 for a post sent
    /// before the last cut changes nothing.
    pub fn throttled(&self, sent: Instant) {
        let mut state = self.lock();
        if sent < state.last_cut {
            return;
        }
        let now = Instant::now();
        state.last_cut = now;
        state.interval = (state.interval * 2).min(self.base * MAX_SLOWDOWN);
        state.paused_until = state.paused_until.max(now + state.pause);
        state.pause = (state.pause * 2).min(MAX_PAUSE);
        state.last_change = now;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain numbers: never half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_lets_its_rate_through_and_slows_on_429() {
        let pacer = Pacer::new(100.0);
        let start = Instant::now();
        for _ in 0..200 {
            pacer.acquire().await;
        }
        // 200 posts at 100/s, minus the 50 ms burst.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1940) && took <= Duration::from_millis(2000),
            "{took:?}"
        );

        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(30)).await;
        pacer.throttled(sent);
        // The other posts in flight when the first 429 came: the same congestion.
        for _ in 0..30 {
            pacer.throttled(sent);
        }
        let start = Instant::now();
        pacer.acquire().await;
        let paused = start.elapsed();
        assert!(
            paused >= FIRST_PAUSE && paused < FIRST_PAUSE * 2,
            "a 429 pauses the posts, once: {paused:?}"
        );
        let start = Instant::now();
        for _ in 0..10 {
            pacer.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(300),
            "at half the rate, not less: {took:?}"
        );
        // No more 429s: back to the full rate.
        tokio::time::sleep(Duration::from_secs(10)).await;
        for _ in 0..20 {
            pacer.acquire().await;
        }
        let start = Instant::now();
        for _ in 0..100 {
            pacer.acquire().await;
        }
        let took = start.elapsed();
        assert!(took <= Duration::from_millis(1000), "{took:?}");
    }
}
