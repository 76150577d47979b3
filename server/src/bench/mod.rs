//! `nscache bench`: throughput and latency of the main operations, with
//! implementations side by side in the same run — `raw-redis` (redis-rs, the
//! same commands without nscache), `nscache`, `nscache-l1` — and O(1)
//! invalidation against `scan-del` (SCAN + UNLINK, what django-redis
//! `delete_pattern` does). The reference's `benchmark_cache`.

mod plot;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use self::run::run;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The Redis to measure (its database is used for unique, cleaned-up keys).
    pub redis_url: String,
    /// Concurrency levels (clients).
    pub concurrency: Vec<usize>,
    /// Redis connections per implementation (default 50, the reference's pool).
    pub pool_size: usize,
    /// Measured time per cell.
    pub duration: Duration,
    /// Warm-up time per cell.
    pub warmup: Duration,
    /// Namespace sizes for the invalidation scenario.
    pub invalidation_keys: Vec<u64>,
    /// Scenarios to run (all when empty).
    pub only: Vec<String>,
    /// Implementations to run (all when empty).
    pub implementations: Vec<String>,
    /// Write the results as JSON here.
    pub json: Option<PathBuf>,
    /// Draw the results as SVG here.
    pub plot: Option<PathBuf>,
}

impl BenchOptions {
    /// The full run (a few minutes).
    pub fn full(redis_url: String) -> BenchOptions {
        BenchOptions {
            redis_url,
            concurrency: vec![1, 16, 64],
            pool_size: 50,
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            invalidation_keys: vec![100, 1_000, 10_000, 100_000, 1_000_000],
            only: Vec::new(),
            implementations: Vec::new(),
            json: None,
            plot: None,
        }
    }

    /// Whether `scenario` is to run (`only` is empty, or names it).
    pub fn selects(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == scenario)
    }

    /// The quick run (under a minute).
    pub fn quick(redis_url: String) -> BenchOptions {
        BenchOptions {
            duration: Duration::from_millis(400),
            warmup: Duration::from_millis(100),
            invalidation_keys: vec![100, 1_000, 10_000],
            ..BenchOptions::full(redis_url)
        }
    }
}

/// One measured cell.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// Which implementation.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Keys involved (namespace size for invalidation; 0 otherwise).
    pub keys: u64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Redis' own time per client operation, µs (from `INFO commandstats`
    /// before and after the cell, warm-up included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_us_per_op: Option<f64>,
    /// The commands Redis ran per client operation, most frequent first:
    /// `name calls-per-op×µs-per-call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_commands: Option<String>,
    /// Namespaced reads: the share the fast path served (a plain
    /// `get-many` on a remembered version, against the script).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_read_share: Option<f64>,
}

/// Where the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available to the process.
    pub cpus: usize,
    /// Kernel and OS.
    pub os: String,
    /// The Redis server's version.
    pub redis_version: String,
    /// nscache's version.
    pub nscache_version: &'static str,
    /// When (Unix seconds).
    pub unix_time: u64,
    /// Seconds measured per cell.
    pub duration_secs: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where.
    pub machine: Machine,
    /// What.
    pub rows: Vec<Row>,
}

impl Report {
    /// The rows as a table, with each row's ratio to the baseline of its
    /// scenario and concurrency (`raw-redis`, or `scan-del` for invalidation).
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<22} {:<11} {:>5} {:>8} {:>12} {:>10} {:>10} {:>9} {:>9} {:>6}  {}\n",
            "scenario",
            "impl",
            "conc",
            "keys",
            "ops/s",
            "p50 µs",
            "p99 µs",
            "× base",
            "redis µs",
            "fast",
            "redis commands per op"
        ));
        for r in &self.rows {
            let base = self.rows.iter().find(|b| {
                b.scenario == r.scenario
                    && b.concurrency == r.concurrency
                    && b.keys == r.keys
                    && (b.implementation == "raw-redis" || b.implementation == "scan-del")
            });
            let ratio = match base {
                Some(b) if b.implementation == "scan-del" => {
                    format!("{:.1}", b.p50_us / r.p50_us.max(f64::MIN_POSITIVE))
                }
                Some(b) => format!(
                    "{:.2}",
                    r.ops_per_sec / b.ops_per_sec.max(f64::MIN_POSITIVE)
                ),
                None => "-".into(),
            };
            out.push_str(&format!(
                "{:<22} {:<11} {:>5} {:>8} {:>12.0} {:>10.1} {:>10.1} {:>9} {:>9} {:>6}  {}\n",
                r.scenario,
                r.implementation,
                r.concurrency,
                r.keys,
                r.ops_per_sec,
                r.p50_us,
                r.p99_us,
                ratio,
                r.redis_us_per_op.map_or("-".into(), |u| format!("{u:.2}")),
                r.plain_read_share
                    .map_or("-".into(), |s| format!("{:.0}%", s * 100.0)),
                r.redis_commands.as_deref().unwrap_or("")
            ));
        }
        out.push_str(
            "× base: ops/s relative to raw-redis in the same run; for invalidate-user, how many \
             times faster than scan-del (median time). redis µs: Redis' own time per operation \
             (INFO commandstats). fast: namespaced reads served by one plain MGET on a \
             remembered version.\n",
        );
        out
    }
}
