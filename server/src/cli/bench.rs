//! `nscache bench`: options, checked, into [`BenchOptions`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use nscache::Settings;

use super::{EXIT_UNAVAILABLE, Failure, usage, write_line};
use crate::bench::BenchOptions;

/// Options of `bench` (Redis, its pool and timeouts are the global options).
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A run under a minute (shorter cells, namespaces up to 10,000 keys).
    #[arg(long)]
    pub quick: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the results as SVG to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Seconds measured per cell (default 3, or 0.4 with --quick).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Only these scenarios (get-hit, get-miss, set, incr, add, namespaced-get,
    /// namespaced-get-zipf, get-or-set-contended, invalidate-user), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only these implementations (raw-redis, nscache, nscache-l1), comma-separated.
    #[arg(long = "impl", value_delimiter = ',')]
    pub implementations: Vec<String>,
}

impl BenchArgs {
    /// The run these options describe, on the Redis of `settings`.
    fn options(&self, settings: &Settings) -> Result<BenchOptions, Failure> {
        let url = settings
            .redis_url
            .clone()
            .ok_or_else(|| usage("bench measures Redis: pass --redis-url URL or set REDIS_URL"))?;
        let mut options = if self.quick {
            BenchOptions::quick(url)
        } else {
            BenchOptions::full(url)
        };
        if self.concurrency.contains(&0) {
            return Err(usage("concurrency levels are at least 1"));
        }
        options.concurrency = self.concurrency.clone();
        options.pool_size = settings.pool_size;
        if let Some(s) = self.seconds {
            if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
                return Err(usage("--seconds is between 0 and 3600"));
            }
            options.duration = Duration::from_secs_f64(s);
        }
        options.only = self.only.clone();
        options.implementations = self.implementations.clone();
        options.json = self.json.clone();
        options.plot = self.plot.clone();
        Ok(options)
    }
}

/// Run the bench and print its table.
pub async fn run(
    settings: &Settings,
    args: &BenchArgs,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let options = args.options(settings)?;
    let report = crate::bench::run(options, &mut std::io::stderr())
        .await
        .map_err(|e| Failure {
            code: EXIT_UNAVAILABLE,
            message: format!("bench: {e}"),
        })?;
    write_line(out, &report.table())?;
    Ok(ExitCode::SUCCESS)
}
