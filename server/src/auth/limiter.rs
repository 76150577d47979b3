//! [`LoginLimiter`]: failed logins are limited per account name and per
//! client address, in process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failed logins in a sliding window; too many lock the name (for that
/// address) and the address for the rest of the window.
#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    per_name: u32,
    per_address: u32,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Default for LoginLimiter {
    /// 5 failures per name and address, 20 per address, per 5 minutes.
    fn default() -> Self {
        LoginLimiter::new(Duration::from_secs(300), 5, 20)
    }
}

impl LoginLimiter {
    /// A limiter with these limits.
    pub fn new(window: Duration, per_name: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter {
            window,
            per_name,
            per_address,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(name: &str, address: IpAddr) -> [String; 2] {
        [
            format!("n:{}|{address}", name.to_lowercase()),
            format!("a:{address}"),
        ]
    }

    /// `Some(wait)` if a login for `name` from `address` must be refused now.
    pub fn check(&self, name: &str, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let [by_name, by_address] = Self::keys(name, address);
        let mut wait = None;
        for (key, limit) in [(by_name, self.per_name), (by_address, self.per_address)] {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= limit as usize {
                    let oldest = times[0];
                    let w = self.window.saturating_sub(now.duration_since(oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait
    }

    /// Record a failed login.
    pub fn failed(&self, name: &str, address: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 100_000 {
            // Bounded memory under a spray of names: drop stale entries.
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for key in Self::keys(name, address) {
            failures.entry(key).or_default().push(now);
        }
    }

    /// Forget a name's failures after a successful login.
    pub fn succeeded(&self, name: &str, address: IpAddr) {
        let [by_name, _] = Self::keys(name, address);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&by_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_too_many_failures() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 5);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("Alice", ip).is_none());
            l.failed("alice", ip);
        }
        assert!(
            l.check("alice", ip).is_some(),
            "name locked (case-insensitive)"
        );
        assert!(
            l.check("bob", ip).is_none(),
            "other names from the address still allowed"
        );
        l.failed("bob", ip);
        l.failed("carol", ip);
        assert!(l.check("dave", ip).is_some(), "address locked after 5");
        assert!(l.check("alice", "10.0.0.2".parse().unwrap()).is_none());
    }
}
