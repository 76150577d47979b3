//! [`DashboardSampler`]: the admin dashboard's time series. A background task
//! takes a [`Sample`] of the cache's counters every few seconds (and checks
//! the dependencies' health) into a bounded ring buffer; the dashboard turns
//! consecutive samples into [`Interval`]s (hit rate, operations per second,
//! errors, degraded operations). A second task runs the doctor's cheap
//! checks (no SCAN) every [`CHECKS_INTERVAL`] for the "Checks" panel.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::control::{Control, HealthReport};
use crate::doctor::{DoctorOptions, Report};

/// How often the dashboard re-runs the doctor's cheap checks.
pub const CHECKS_INTERVAL: Duration = Duration::from_secs(60);
use nscache::StoreStatsSnapshot;
use nscache::metrics::MetricsSnapshot;

/// The counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Cache operation counters.
    pub metrics: MetricsSnapshot,
    /// Store call counters.
    pub store: StoreStatsSnapshot,
}

/// What happened between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// End of the interval, in milliseconds since the Unix epoch.
    pub end_unix_ms: u64,
    /// Hits over reads (`None`: no reads).
    pub hit_rate: Option<f64>,
    /// Cache operations per second.
    pub ops_per_sec: f64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Store calls that failed because the store was unreachable.
    pub degraded: u64,
}

impl Interval {
    /// The interval from `a` to `b` (counters only grow; a smaller one counts as 0).
    pub fn between(a: &Sample, b: &Sample) -> Interval {
        let hits = b.metrics.hits.saturating_sub(a.metrics.hits);
        let misses = b.metrics.misses.saturating_sub(a.metrics.misses);
        let seconds = b.at_unix_ms.saturating_sub(a.at_unix_ms) as f64 / 1000.0;
        let operations = b.metrics.operations.saturating_sub(a.metrics.operations) as f64;
        Interval {
            end_unix_ms: b.at_unix_ms,
            hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            ops_per_sec: if seconds > 0.0 {
                operations / seconds
            } else {
                0.0
            },
            errors: b.metrics.errors.saturating_sub(a.metrics.errors),
            degraded: b.store.unavailable.saturating_sub(a.store.unavailable),
        }
    }
}

#[derive(Debug)]
struct Series {
    samples: VecDeque<Sample>,
    health: Option<(u64, HealthReport)>,
    checks: Option<Report>,
}

#[derive(Debug)]
struct Shared {
    control: Arc<Control>,
    interval: Duration,
    capacity: usize,
    series: Mutex<Series>,
}

/// Samples the cache every `interval` into a ring buffer of `capacity`
/// samples. The task stops when the sampler is dropped.
#[derive(Debug)]
pub struct DashboardSampler {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
    checks_task: Option<tokio::task::JoinHandle<()>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Shared {
    fn series(&self) -> MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sample(&self) {
        let cache = self.control.cache();
        let sample = Sample {
            at_unix_ms: now_ms(),
            metrics: cache.metrics().snapshot(),
            store: cache.store_stats(),
        };
        {
            let mut series = self.series();
            if series.samples.len() == self.capacity {
                series.samples.pop_front();
            }
            series.samples.push_back(sample);
        }
        let health = self.control.health().await;
        self.series().health = Some((now_ms(), health));
    }

    /// The doctor's checks that cost no SCAN, on the server's own settings
    /// and its directory's Postgres pool.
    async fn check(&self) {
        let cache = self.control.cache();
        let report = crate::doctor::run(
            &cache.resolved_settings(),
            &DoctorOptions {
                scan: false,
                postgres: self.control.directory().postgres_pool(),
                cache: Some(cache.clone()),
            },
        )
        .await;
        self.series().checks = Some(report);
    }
}

impl DashboardSampler {
    /// A sampler that takes no samples by itself (tests call [`sample_now`](Self::sample_now)).
    pub fn manual(control: Arc<Control>, interval: Duration, capacity: usize) -> DashboardSampler {
        let shared = Arc::new(Shared {
            control,
            interval,
            capacity: capacity.max(2),
            series: Mutex::new(Series {
                samples: VecDeque::new(),
                health: None,
                checks: None,
            }),
        });
        DashboardSampler {
            shared,
            task: None,
            checks_task: None,
        }
    }

    /// Start sampling every `interval` (the first sample at once), keeping
    /// the last `capacity`. Needs a Tokio runtime.
    pub fn start(control: Arc<Control>, interval: Duration, capacity: usize) -> DashboardSampler {
        let mut sampler =
            DashboardSampler::manual(control, interval.max(Duration::from_millis(100)), capacity);
        let shared = sampler.shared.clone();
        sampler.task = Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(shared.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                shared.sample().await;
            }
        }));
        let shared = sampler.shared.clone();
        sampler.checks_task = Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECKS_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                shared.check().await;
            }
        }));
        sampler
    }

    /// Run the cheap checks now.
    pub async fn check_now(&self) {
        self.shared.check().await;
    }

    /// The last run of the cheap checks, if any yet.
    pub fn last_checks(&self) -> Option<Report> {
        self.shared.series().checks.clone()
    }

    /// Take a sample (and check health) now.
    pub async fn sample_now(&self) {
        self.shared.sample().await;
    }

    /// Seconds between samples.
    pub fn interval(&self) -> Duration {
        self.shared.interval
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.shared.series().samples.iter().copied().collect()
    }

    /// What happened between consecutive samples, oldest first.
    pub fn intervals(&self) -> Vec<Interval> {
        let series = self.shared.series();
        series
            .samples
            .iter()
            .zip(series.samples.iter().skip(1))
            .map(|(a, b)| Interval::between(a, b))
            .collect()
    }

    /// The last health check and when it was made (ms since the Unix epoch).
    pub fn last_health(&self) -> Option<(u64, HealthReport)> {
        self.shared.series().health.clone()
    }

    /// The last health check, or a fresh one if none was made yet.
    pub async fn health(&self) -> (u64, HealthReport) {
        if let Some(h) = self.last_health() {
            return h;
        }
        let report = self.shared.control.health().await;
        (now_ms(), report)
    }
}

impl Drop for DashboardSampler {
    fn drop(&mut self) {
        for task in [self.task.take(), self.checks_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        at: u64,
        hits: u64,
        misses: u64,
        operations: u64,
        errors: u64,
        unavailable: u64,
    ) -> Sample {
        Sample {
            at_unix_ms: at,
            metrics: MetricsSnapshot {
                hits,
                misses,
                operations,
                errors,
            },
            store: StoreStatsSnapshot {
                calls: operations,
                errors,
                unavailable,
                ..Default::default()
            },
        }
    }

    #[test]
    fn intervals_are_rates_of_the_differences() {
        let a = sample(10_000, 10, 10, 100, 1, 0);
        let b = sample(12_000, 40, 20, 300, 4, 2);
        let i = Interval::between(&a, &b);
        assert_eq!(i.end_unix_ms, 12_000);
        assert_eq!(i.hit_rate, Some(0.75));
        assert_eq!(i.ops_per_sec, 100.0);
        assert_eq!(i.errors, 3);
        assert_eq!(i.degraded, 2);
    }

    #[test]
    fn no_reads_means_no_hit_rate_and_no_time_means_no_rate() {
        let a = sample(5_000, 3, 3, 10, 0, 0);
        let i = Interval::between(&a, &a);
        assert_eq!(i.hit_rate, None);
        assert_eq!(i.ops_per_sec, 0.0);
        // a counter that went backwards (never expected) reads as 0, not a wrap-around
        let i = Interval::between(&sample(0, 9, 9, 9, 9, 9), &sample(1000, 1, 1, 1, 1, 1));
        assert_eq!(
            (i.hit_rate, i.ops_per_sec, i.errors, i.degraded),
            (None, 0.0, 0, 0)
        );
    }

    #[tokio::test]
    async fn the_ring_keeps_the_newest_samples() {
        use crate::directory::Directory as _;
        let path =
            std::env::temp_dir().join(format!("nscache-dashboard-{}.db", std::process::id()));
        let directory = crate::directory::SqliteDirectory::open(&path, Default::default())
            .await
            .expect("sqlite");
        directory.migrate().await.expect("migrate");
        let directory: Arc<dyn crate::directory::Directory> = Arc::new(directory);
        let flags = Arc::new(crate::directory::DirectoryFlags(directory.clone()));
        let cache = nscache::Cache::builder()
            .flag_store(flags)
            .build()
            .await
            .expect("memory cache");
        let profiles = cache
            .cached_profiles()
            .cloned()
            .expect("flags from the directory");
        let control = Arc::new(Control::new(cache.clone(), directory, profiles));
        let sampler = DashboardSampler::manual(control, Duration::from_secs(1), 3);
        for i in 0..5 {
            cache
                .user("u")
                .set("k", "v", nscache::Expiry::Default)
                .await
                .expect("set");
            let _ = cache
                .user("u")
                .get(if i % 2 == 0 { "k" } else { "missing" })
                .await
                .expect("get");
            sampler.sample_now().await;
        }
        let samples = sampler.samples();
        assert_eq!(samples.len(), 3);
        assert!(
            samples
                .windows(2)
                .all(|w| w[0].metrics.operations < w[1].metrics.operations)
        );
        let intervals = sampler.intervals();
        assert_eq!(intervals.len(), 2);
        assert!(intervals.iter().all(|i| i.hit_rate.is_some()));
        let (_, health) = sampler.health().await;
        assert!(health.is_ok(), "{health:?}");
        let _ = std::fs::remove_file(&path);
    }
}
