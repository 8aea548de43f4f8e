//! What keeps a burst of Releases from costing the API server one write per Release per
//! side effect: a budget for Normal Events (Warnings are never held back) and coalesced
//! Flux nudges (one `requestedAt` patch per Flux object for any number of pushes within a
//! window, the last push always followed by one).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `burst` Events at once, refilled at `per_second`.
#[derive(Debug)]
pub struct EventBudget {
    burst: f64,
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl EventBudget {
    pub fn new(burst: u32, per_second: f64) -> Self {
        EventBudget {
            burst: burst as f64,
            per_second,
            state: Mutex::new((burst as f64, Instant::now())),
        }
    }

    /// Takes one token at `now`; `false` when the budget is spent.
    pub fn take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now.max(*last);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn take(&self) -> bool {
        self.take_at(Instant::now())
    }
}

impl Default for EventBudget {
    /// 50 at once, then 10 a second: a person reading `kubectl describe` during normal work
    /// sees every Event; a burst of a thousand Releases does not write a thousand.
    fn default() -> Self {
        EventBudget::new(50, 10.0)
    }
}

/// What a nudge request asks for now.
#[derive(Debug, PartialEq, Eq)]
pub enum Nudge {
    /// Nothing recent: nudge now.
    Now,
    /// A nudge ran within the window: one more runs after this delay (the caller schedules it).
    After(Duration),
    /// A later nudge is already scheduled and will see this push too.
    Joined,
}

/// Leading and trailing coalescing of Flux nudges per target (a set of Flux objects).
#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    state: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Coalescer {
    pub fn new(window: Duration) -> Self {
        Coalescer {
            window,
            state: Mutex::default(),
        }
    }

    /// Records a request for `key` at `now` and says what to do.
    pub fn request_at(&self, key: &str, now: Instant) -> Nudge {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Forget targets idle for long (Environments come and go).
        if state.len() > 1024 {
            let window = self.window;
            state.retain(|_, (last, scheduled)| *scheduled || now.duration_since(*last) < window);
        }
        match state.get_mut(key) {
            Some((_, true)) => Nudge::Joined,
            Some((last, scheduled)) if now.saturating_duration_since(*last) < self.window => {
                *scheduled = true;
                Nudge::After(self.window - now.saturating_duration_since(*last))
            }
            _ => {
                state.insert(key.to_string(), (now, false));
                Nudge::Now
            }
        }
    }

    /// The scheduled nudge of `key` runs now: later requests schedule another.
    pub fn fired_at(&self, key: &str, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.insert(key.to_string(), (now, false));
    }

    /// Runs `nudge` now, after the window, or not at all (a scheduled one covers it).
    pub fn run<F, Fut>(self: &std::sync::Arc<Self>, key: String, nudge: F) -> Option<Fut>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self.request_at(&key, Instant::now()) {
            Nudge::Now => Some(nudge()),
            Nudge::Joined => None,
            Nudge::After(delay) => {
                let this = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    this.fired_at(&key, Instant::now());
                    nudge().await;
                });
                None
            }
        }
    }
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_burst_then_the_rate() {
        let b = EventBudget::new(3, 2.0);
        let t = Instant::now();
        assert!(b.take_at(t) && b.take_at(t) && b.take_at(t));
        assert!(!b.take_at(t), "the burst is spent");
        assert!(!b.take_at(t + Duration::from_millis(400)));
        assert!(b.take_at(t + Duration::from_millis(600)), "refilled at 2/s");
        assert!(b.take_at(t + Duration::from_secs(10)));
        assert!(b.take_at(t + Duration::from_secs(10)));
        assert!(b.take_at(t + Duration::from_secs(10)));
        assert!(
            !b.take_at(t + Duration::from_secs(10)),
            "never more than the burst"
        );
    }

    #[test]
    fn nudges_lead_then_trail_once_per_window() {
        let c = Coalescer::new(Duration::from_secs(1));
        let t = Instant::now();
        assert_eq!(c.request_at("a", t), Nudge::Now);
        assert_eq!(c.request_at("b", t), Nudge::Now, "targets are independent");
        assert_eq!(
            c.request_at("a", t + Duration::from_millis(300)),
            Nudge::After(Duration::from_millis(700))
        );
        assert_eq!(
            c.request_at("a", t + Duration::from_millis(500)),
            Nudge::Joined
        );
        // The trailing nudge runs; a push after it is not lost.
        c.fired_at("a", t + Duration::from_secs(1));
        assert_eq!(
            c.request_at("a", t + Duration::from_millis(1200)),
            Nudge::After(Duration::from_millis(800))
        );
        assert_eq!(c.request_at("a", t + Duration::from_secs(5)), Nudge::Joined);
        c.fired_at("a", t + Duration::from_secs(2));
        assert_eq!(c.request_at("a", t + Duration::from_secs(5)), Nudge::Now);
    }
}
