//! `nscache doctor`: the reference's pre-migration checklist, automated.
//!
//! Every check gives one [`Check`]: ✓ ok, ⚠ warning, ✗ failure (or · skipped
//! when what it needs is missing), what was found, and for a warning or a
//! failure the exact fix (a command or a setting). Groups:
//!
//! - **Redis** (`redis.*`), read from `INFO` (managed services often refuse
//!   `CONFIG`): reachable, version, `maxmemory`, eviction policy,
//!   persistence, `maxclients` against pool size × processes, PING latency,
//!   cluster mode.
//! - **Databases** (`db.*`): nscache's database is not the task queue's, and
//!   the tests' database 15 is empty.
//! - **Keys** (`keys.*`): one `SCAN` of nscache's database, run only on the
//!   operator's command (`nscache doctor`, never on a request path, and never
//!   by the dashboard, which shows the last recorded run): collisions with
//!   django-redis / cacheops keys, invoice sequences, stuck cron locks,
//!   counters in a Redis without persistence.
//! - **Postgres** (`pg.*`): reachable, migrations, the flag column's type,
//!   default and index, users with the cache off, table watcher triggers.
//! - **Component** (`component.*`): loads, its WIT package version, the
//!   settings it runs with.
//!
//! [`run`] runs them; [`record`] keeps a run in the store (a global key) so
//! that the dashboard can show the last one.

mod postgres_checks;
mod redis_checks;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nscache::{Cache, Settings};
use nscache_core::Layout;
use serde::{Deserialize, Serialize};

pub use self::redis_checks::{RedisError, cluster_primaries, connect_redis};

/// The global key (application key; the layout adds the prefix) where
/// [`record`] keeps the last run.
pub const LAST_RUN_KEY: &str = "nscache:doctor:last-run";

/// A check's verdict, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Not run: what it needs is missing (another check says why).
    Skip,
    /// Works, but something should be changed.
    Warn,
    /// Broken: fix it before relying on nscache.
    Fail,
}

impl Status {
    /// The symbol printed before the check.
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Skip => "·",
            Status::Warn => "⚠",
            Status::Fail => "✗",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable id, `group.name` (`redis.eviction_policy`).
    pub id: String,
    /// The verdict.
    pub status: Status,
    /// What was found, in one or a few sentences.
    pub message: String,
    /// The exact fix (a command or a setting), for a warning or a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// True for the checks that `SCAN` the database (run only on command).
    #[serde(default)]
    pub scan: bool,
}

impl Check {
    fn new(id: &str, status: Status, message: impl Into<String>) -> Check {
        Check {
            id: id.to_owned(),
            status,
            message: message.into(),
            fix: None,
            scan: false,
        }
    }

    /// An ok check.
    pub fn ok(id: &str, message: impl Into<String>) -> Check {
        Check::new(id, Status::Ok, message)
    }

    /// A skipped check.
    pub fn skip(id: &str, message: impl Into<String>) -> Check {
        Check::new(id, Status::Skip, message)
    }

    /// A warning with its fix.
    pub fn warn(id: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, message).with_fix(fix)
    }

    /// A failure with its fix.
    pub fn fail(id: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Status::Fail, message).with_fix(fix)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    fn scanning(mut self) -> Check {
        self.scan = true;
        self
    }
}

/// A run of the doctor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// When it ran, in milliseconds since the Unix epoch.
    pub ran_at_unix_ms: u64,
    /// Whether the SCAN-based checks ran.
    pub scanned: bool,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst verdict (`Ok` for no checks).
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The exit code: 1 when something fails, or (with `strict`) warns; else 0.
    pub fn exit_code(&self, strict: bool) -> u8 {
        match self.worst() {
            Status::Fail => 1,
            Status::Warn if strict => 1,
            _ => 0,
        }
    }

    /// The report for people: one line per check, fixes indented below.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{} {:<26} {}\n",
                c.status.symbol(),
                c.id,
                c.message
            ));
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "fix:" } else { "    " };
                    out.push_str(&format!("    {lead} {line}\n"));
                }
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "{} ok, {} warnings, {} failures, {} skipped{}\n",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip),
            if self.scanned {
                ""
            } else {
                " (keys not scanned: run `nscache doctor` without --no-scan)"
            }
        ));
        out
    }
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// Run the SCAN-based key checks (the operator's command; never on a
    /// request path).
    pub scan: bool,
    /// The Postgres pool to check; `None`: one on `database_url`, if set.
    pub postgres: Option<sqlx::PgPool>,
    /// A cache already built with these settings (the server's): its
    /// settings in use are reported instead of building a cache to learn
    /// them.
    pub cache: Option<Cache>,
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The key layout of `settings` (resolved with the component's defaults),
/// from the component's own code.
pub fn layout(resolved: &Settings) -> Layout {
    let defaults = nscache_core::Settings::default();
    Layout::new(&nscache_core::Settings {
        key_prefix: resolved.key_prefix.clone().unwrap_or(defaults.key_prefix),
        key_version: resolved.key_version.unwrap_or(defaults.key_version),
        namespace_root: resolved
            .namespace_root
            .clone()
            .unwrap_or(defaults.namespace_root),
        cluster_hash_tags: resolved
            .cluster_hash_tags
            .unwrap_or(defaults.cluster_hash_tags),
        ..nscache_core::Settings::default()
    })
}

/// Load the component with `settings` (on a memory store: no I/O, unless
/// `built` is a cache already running with them) and return the settings it
/// runs with, or why it cannot.
async fn component_checks(
    settings: &Settings,
    built: Option<&Cache>,
    out: &mut Vec<Check>,
) -> Option<Settings> {
    let exports = match nscache::component_exports(settings.compile_cache.as_deref()) {
        Ok(exports) => exports,
        Err(e) => {
            out.push(Check::fail(
                "component.loads",
                format!("the cache component does not load: {e}"),
                "rebuild nscache (`cargo build --release -p nscache-server`); with --compile-cache, try --compile-cache off",
            ));
            out.push(Check::skip(
                "component.settings",
                "the component did not load",
            ));
            return None;
        }
    };
    let version = exports
        .iter()
        .filter_map(|name| nscache::wit_version::version_named(name))
        .find(|version| !version.is_empty());
    match version {
        Some(version) => out.push(Check::ok(
            "component.loads",
            format!(
                "loads; WIT package nscache:cache@{version}; exports {}",
                exports
                    .iter()
                    .map(|n| n.trim_start_matches("nscache:cache/"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => out.push(Check::fail(
            "component.loads",
            format!(
                "loads, but exports no nscache:cache interface ({})",
                exports.join(", ")
            ),
            "this binary embeds a foreign component: rebuild nscache",
        )),
    }
    let local = Settings {
        redis_url: None,
        database_url: None,
        l1: false,
        ..settings.clone()
    };
    let cache = match built {
        Some(cache) => Ok(cache.clone()),
        None => Cache::builder().settings(local).build().await,
    };
    match cache {
        Ok(cache) => {
            let r = cache.resolved_settings();
            let ttl = |d: Option<Duration>| {
                d.map_or("?".to_owned(), |d| format!("{} s", d.as_secs_f64()))
            };
            out.push(Check::ok(
                "component.settings",
                format!(
                    "prefix {:?} (version {}), namespace root {:?}, default TTL {}, keys up to {} bytes, values up to {} bytes, replies up to {} bytes, namespace quota {} bytes, namespaced entries live at most {}",
                    r.key_prefix.clone().unwrap_or_default(),
                    r.key_version.unwrap_or_default(),
                    r.namespace_root.clone().unwrap_or_default(),
                    ttl(r.default_ttl),
                    r.max_key_bytes.unwrap_or_default(),
                    r.max_value_bytes.unwrap_or_default(),
                    r.max_reply_bytes.unwrap_or_default(),
                    r.namespace_quota_bytes.unwrap_or_default(),
                    ttl(r.max_namespace_ttl),
                ),
            ));
            Some(r)
        }
        Err(e) => {
            out.push(Check::fail(
                "component.settings",
                format!("the component refuses these settings: {e}"),
                "correct the setting named above (`nscache --help` lists them with their environment variables)",
            ));
            None
        }
    }
}

/// Run the doctor with `settings`.
pub async fn run(settings: &Settings, options: &DoctorOptions) -> Report {
    let ran_at_unix_ms = now_unix_ms();
    let mut checks = Vec::new();
    let mut component = Vec::new();
    let resolved = component_checks(settings, options.cache.as_ref(), &mut component).await;
    let layout = layout(resolved.as_ref().unwrap_or(settings));
    redis_checks::run(settings, &layout, options.scan, &mut checks).await;
    postgres_checks::run(settings, options.postgres.clone(), &mut checks).await;
    checks.extend(component);
    Report {
        ran_at_unix_ms,
        scanned: options.scan,
        checks,
    }
}

/// Keep `report` in the store under [`LAST_RUN_KEY`] (a global key, no
/// expiry) for the dashboard.
pub async fn record(cache: &Cache, report: &Report) -> Result<(), nscache::CacheError> {
    let text = serde_json::to_vec(report)
        .map_err(|e| nscache::CacheError::InvalidArgument(e.to_string()))?;
    cache
        .global()
        .set(LAST_RUN_KEY, text, nscache::Expiry::Never)
        .await
}

/// The last run [`record`] kept, if any (one `GET`).
pub async fn last_recorded(cache: &Cache) -> Result<Option<Report>, nscache::CacheError> {
    Ok(cache
        .global()
        .get(LAST_RUN_KEY)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[Status]) -> Report {
        Report {
            ran_at_unix_ms: 0,
            scanned: true,
            checks: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| Check::new(&format!("t.{i}"), *s, "m"))
                .collect(),
        }
    }

    #[test]
    fn exit_codes_follow_the_worst_verdict() {
        assert_eq!(report(&[Status::Ok, Status::Skip]).exit_code(false), 0);
        assert_eq!(report(&[Status::Ok, Status::Warn]).exit_code(false), 0);
        assert_eq!(report(&[Status::Ok, Status::Warn]).exit_code(true), 1);
        assert_eq!(report(&[Status::Fail, Status::Warn]).exit_code(false), 1);
        assert_eq!(report(&[]).exit_code(true), 0);
    }

    #[test]
    fn the_text_shows_every_check_and_its_fix() {
        let mut r = report(&[Status::Ok, Status::Fail]);
        r.checks[1].fix = Some("do this\nthen that".into());
        let text = r.render();
        assert!(text.contains("✓ t.0"), "{text}");
        assert!(text.contains("✗ t.1"), "{text}");
        assert!(
            text.contains("    fix: do this\n         then that\n"),
            "{text}"
        );
        assert!(
            text.contains("1 ok, 0 warnings, 1 failures, 0 skipped"),
            "{text}"
        );
    }
}
