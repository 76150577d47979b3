//! Counters of store traffic, kept by the host around every import call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Calls and failures of the storage primitives since start.
#[derive(Debug, Default)]
pub struct StoreStats {
    calls: AtomicU64,
    plain_reads: AtomicU64,
    scripted_reads: AtomicU64,
    errors: AtomicU64,
    unavailable: AtomicU64,
    last_logged_sec: AtomicU64,
}

/// A snapshot of [`StoreStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStatsSnapshot {
    /// Primitives called (each is one store round trip).
    pub calls: u64,
    /// `get-many` calls: global reads, and namespaced reads that took the
    /// fast path (a remembered version confirmed in the same read).
    pub plain_reads: u64,
    /// `get-indirect` calls: namespaced reads resolved by the atomic
    /// script (no remembered version, or it had moved twice).
    pub scripted_reads: u64,
    /// Primitives that failed, for any reason.
    pub errors: u64,
    /// Primitives that failed because the store was unreachable.
    pub unavailable: u64,
}

impl StoreStats {
    pub(crate) fn record_call(&self, op: &str) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match op {
            "get-many" => self.plain_reads.fetch_add(1, Ordering::Relaxed),
            "get-indirect" => self.scripted_reads.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// Count a failure; true if it should be logged (at most once a second,
    /// so that an outage does not flood the log).
    pub(crate) fn record_error(&self, unavailable: bool) -> bool {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if unavailable {
            self.unavailable.fetch_add(1, Ordering::Relaxed);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_logged_sec.swap(now, Ordering::Relaxed) != now
    }

    /// The counters now.
    pub fn snapshot(&self) -> StoreStatsSnapshot {
        StoreStatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            plain_reads: self.plain_reads.load(Ordering::Relaxed),
            scripted_reads: self.scripted_reads.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
        }
    }
}
