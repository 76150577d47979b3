//! Operation counters and latency histograms, rendered in the Prometheus text
//! format by [`Metrics::render`].

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::stats::StoreStatsSnapshot;

/// A cache operation, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Get,
    GetMany,
    Set,
    SetMany,
    Add,
    Delete,
    DeleteMany,
    HasKey,
    Incr,
    Decr,
    Touch,
    Ttl,
    Persist,
    ReadForUpdate,
    SetAt,
    Lock,
    Unlock,
    InvalidateUser,
    InvalidateTable,
    InvalidateAll,
    VersionOf,
    VersionsOf,
    QueryLookup,
    QueryStore,
}

impl Op {
    const ALL: [Op; 24] = [
        Op::Get,
        Op::GetMany,
        Op::Set,
        Op::SetMany,
        Op::Add,
        Op::Delete,
        Op::DeleteMany,
        Op::HasKey,
        Op::Incr,
        Op::Decr,
        Op::Touch,
        Op::Ttl,
        Op::Persist,
        Op::ReadForUpdate,
        Op::SetAt,
        Op::Lock,
        Op::Unlock,
        Op::InvalidateUser,
        Op::InvalidateTable,
        Op::InvalidateAll,
        Op::VersionOf,
        Op::VersionsOf,
        Op::QueryLookup,
        Op::QueryStore,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetMany => "get_many",
            Op::Set => "set",
            Op::SetMany => "set_many",
            Op::Add => "add",
            Op::Delete => "delete",
            Op::DeleteMany => "delete_many",
            Op::HasKey => "has_key",
            Op::Incr => "incr",
            Op::Decr => "decr",
            Op::Touch => "touch",
            Op::Ttl => "ttl",
            Op::Persist => "persist",
            Op::ReadForUpdate => "read_for_update",
            Op::SetAt => "set_at",
            Op::Lock => "lock",
            Op::Unlock => "unlock",
            Op::InvalidateUser => "invalidate_user",
            Op::InvalidateTable => "invalidate_table",
            Op::InvalidateAll => "invalidate_all",
            Op::VersionOf => "version_of",
            Op::VersionsOf => "versions_of",
            Op::QueryLookup => "query_lookup",
            Op::QueryStore => "query_store",
        }
    }
}

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 13] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Debug, Default)]
struct OpStats {
    calls: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS_US.len()],
    sum_us: AtomicU64,
}

/// Counters of one [`Cache`](crate::Cache) since it was built.
#[derive(Debug)]
pub struct Metrics {
    ops: [OpStats; Op::ALL.len()],
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ops: Default::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

/// A snapshot of the counters that dashboards plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing (including bypassed and degraded reads).
    pub misses: u64,
    /// Operations run, all kinds.
    pub operations: u64,
    /// Operations that returned an error.
    pub errors: u64,
}

impl Metrics {
    /// Count one operation that took `elapsed`.
    pub(crate) fn record(&self, op: Op, elapsed: Duration, ok: bool) {
        let s = &self.ops[op as usize];
        s.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        s.sum_us.fetch_add(us, Ordering::Relaxed);
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count reads that hit and missed.
    pub(crate) fn record_reads(&self, hits: u64, misses: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let sum = |f: fn(&OpStats) -> &AtomicU64| {
            self.ops.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
        };
        MetricsSnapshot {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            operations: sum(|s| &s.calls),
            errors: sum(|s| &s.errors),
        }
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self, store: StoreStatsSnapshot) -> String {
        let mut out = String::with_capacity(8192);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP nscache_cache_hits_total Reads that found a value.\n# TYPE nscache_cache_hits_total counter\nnscache_cache_hits_total {}",
            load(&self.hits)
        );
        let _ = writeln!(
            out,
            "# HELP nscache_cache_misses_total Reads that found nothing (bypassed and degraded reads included).\n# TYPE nscache_cache_misses_total counter\nnscache_cache_misses_total {}",
            load(&self.misses)
        );
        let _ = writeln!(
            out,
            "# HELP nscache_store_calls_total Storage primitives called (store round trips).\n# TYPE nscache_store_calls_total counter\nnscache_store_calls_total {}",
            store.calls
        );
        let _ = writeln!(
            out,
            "# HELP nscache_store_reads_total Multi-key reads by kind: plain (get-many: global reads, namespaced reads on a remembered version) or script (get-indirect: namespaced reads resolving the version).\n# TYPE nscache_store_reads_total counter\nnscache_store_reads_total{{kind=\"plain\"}} {}\nnscache_store_reads_total{{kind=\"script\"}} {}",
            store.plain_reads, store.scripted_reads
        );
        let _ = writeln!(
            out,
            "# HELP nscache_store_errors_total Storage primitives that failed.\n# TYPE nscache_store_errors_total counter\nnscache_store_errors_total {}",
            store.errors
        );
        let _ = writeln!(
            out,
            "# HELP nscache_degraded_operations_total Storage primitives that failed because the store was unreachable (reads served as misses, writes skipped or refused).\n# TYPE nscache_degraded_operations_total counter\nnscache_degraded_operations_total {}",
            store.unavailable
        );
        out.push_str("# HELP nscache_operations_total Cache operations run.\n# TYPE nscache_operations_total counter\n");
        for op in Op::ALL {
            let _ = writeln!(
                out,
                "nscache_operations_total{{op=\"{}\"}} {}",
                op.name(),
                load(&self.ops[op as usize].calls)
            );
        }
        out.push_str("# HELP nscache_operation_errors_total Cache operations that returned an error, by operation.\n# TYPE nscache_operation_errors_total counter\n");
        for op in Op::ALL {
            let _ = writeln!(
                out,
                "nscache_operation_errors_total{{op=\"{}\"}} {}",
                op.name(),
                load(&self.ops[op as usize].errors)
            );
        }
        out.push_str("# HELP nscache_invalidations_total Invalidations, by kind.\n# TYPE nscache_invalidations_total counter\n");
        for (kind, op) in [
            ("user", Op::InvalidateUser),
            ("table", Op::InvalidateTable),
            ("all", Op::InvalidateAll),
        ] {
            let s = &self.ops[op as usize];
            let _ = writeln!(
                out,
                "nscache_invalidations_total{{kind=\"{kind}\"}} {}",
                load(&s.calls) - load(&s.errors)
            );
        }
        out.push_str("# HELP nscache_operation_duration_seconds Latency of cache operations.\n# TYPE nscache_operation_duration_seconds histogram\n");
        for op in Op::ALL {
            let s = &self.ops[op as usize];
            let calls = load(&s.calls);
            if calls == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (i, bound) in BUCKETS_US.iter().enumerate() {
                cumulative += load(&s.buckets[i]);
                let _ = writeln!(
                    out,
                    "nscache_operation_duration_seconds_bucket{{op=\"{}\",le=\"{}\"}} {cumulative}",
                    op.name(),
                    *bound as f64 / 1e6
                );
            }
            let _ = writeln!(
                out,
                "nscache_operation_duration_seconds_bucket{{op=\"{}\",le=\"+Inf\"}} {calls}",
                op.name()
            );
            let _ = writeln!(
                out,
                "nscache_operation_duration_seconds_sum{{op=\"{}\"}} {}",
                op.name(),
                load(&s.sum_us) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "nscache_operation_duration_seconds_count{{op=\"{}\"}} {calls}",
                op.name()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record(Op::Get, Duration::from_micros(80), true);
        m.record(Op::Get, Duration::from_micros(3000), false);
        m.record_reads(1, 1);
        let text = m.render(StoreStatsSnapshot {
            calls: 5,
            errors: 1,
            unavailable: 1,
            ..Default::default()
        });
        assert!(text.contains("nscache_operations_total{op=\"get\"} 2"));
        assert!(text.contains("nscache_operation_errors_total{op=\"get\"} 1"));
        assert!(
            text.contains("nscache_operation_duration_seconds_bucket{op=\"get\",le=\"0.0001\"} 1")
        );
        assert!(
            text.contains("nscache_operation_duration_seconds_bucket{op=\"get\",le=\"0.005\"} 2")
        );
        assert!(text.contains("nscache_degraded_operations_total 1"));
        assert!(
            !text.contains("op=\"set\",le"),
            "no histogram for unused operations"
        );
        assert_eq!(
            m.snapshot(),
            MetricsSnapshot {
                hits: 1,
                misses: 1,
                operations: 2,
                errors: 1
            }
        );
    }
}
