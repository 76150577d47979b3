//! The plain data the UI shows and the errors it renders. These types cross
//! the wire between the server and the hydrated page (serde), and are what a
//! [`UiBackend`](crate::backend::UiBackend) returns: they know nothing of
//! Redis, Postgres or the cache.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The signed-in person looking at a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Login name.
    pub username: String,
    /// Role (`user`, `admin`, `service`), as the server names it.
    pub role: String,
    /// Whether to show the admin pages in the navigation. Display only: the
    /// server decides what each request may do.
    pub is_admin: bool,
    /// The session's CSRF token, sent back with every form that changes state.
    pub csrf_token: String,
}

/// What a signed-in person sees about themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// Login name.
    pub username: String,
    /// Their namespace id.
    pub user_id: String,
    /// Role.
    pub role: String,
    /// Whether their data is cached.
    pub cache_enabled: bool,
    /// Their namespace version (`None`: nothing cached yet, or unknown).
    pub namespace_version: Option<u64>,
}

/// One row of the admins' users table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Namespace id.
    pub user_id: String,
    /// Login name, if the user has an nscache account.
    pub username: Option<String>,
    /// Role, if the user has an nscache account.
    pub role: Option<String>,
    /// The `cache_enabled` flag.
    pub cache_enabled: bool,
    /// Namespace version (`None`: nothing cached yet, or unknown).
    pub namespace_version: Option<u64>,
}

/// Which page of users to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersQuery {
    /// Prefix of a user id or login name (empty: everyone).
    pub search: String,
    /// Page number, from 1.
    pub page: u64,
    /// Rows per page (1 to 200).
    pub per_page: u64,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    /// The rows.
    pub users: Vec<UserRow>,
    /// Users matching the search.
    pub total: u64,
    /// This page (from 1).
    pub page: u64,
    /// Rows per page.
    pub per_page: u64,
    /// False when the cache could not be asked for versions.
    pub versions_available: bool,
}

impl UsersPage {
    /// Number of pages (at least 1).
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }
}

/// One point of the dashboard's time series: what happened during the
/// interval that ended at `at_unix_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// End of the interval, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Hits over reads in the interval (`None`: no reads).
    pub hit_rate: Option<f64>,
    /// Cache operations per second.
    pub ops_per_sec: f64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Store calls that failed because the store was unreachable (reads
    /// served as misses, writes skipped or refused).
    pub degraded: u64,
}

/// Health of one dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyState {
    /// What it is (`redis`, `memory`, `postgres`, `sqlite`).
    pub backend: String,
    /// Whether it answered.
    pub ok: bool,
    /// Round trip, when it answered.
    pub latency_ms: Option<f64>,
    /// What went wrong, when it did not.
    pub error: Option<String>,
}

/// The cache store's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryState {
    /// Bytes used.
    pub used_bytes: u64,
    /// Limit, if any.
    pub max_bytes: Option<u64>,
    /// Eviction policy (e.g. `allkeys-lru`).
    pub eviction_policy: String,
    /// Keys evicted since the store started.
    pub evicted_keys: u64,
    /// Server version, if known.
    pub version: Option<String>,
}

/// The server's in-process L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1State {
    /// Bytes it holds at most.
    pub capacity_bytes: u64,
    /// The bound on staleness: an entry changed by something that does not
    /// announce it is seen within this many milliseconds.
    pub max_age_ms: u64,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Oldest first.
    pub samples: Vec<Sample>,
    /// Seconds between samples.
    pub interval_secs: f64,
    /// Totals since the server started: hits, misses, operations, errors.
    pub totals: Totals,
    /// The cache store (Redis or the embedded store).
    pub cache_store: DependencyState,
    /// The database of accounts and profiles (Postgres or SQLite).
    pub database: DependencyState,
    /// The cache store's memory, when it answered.
    pub memory: Option<MemoryState>,
    /// Whether the cache component answers.
    pub component_ok: bool,
    /// The in-process L1 in front of the store, when there is one.
    #[serde(default)]
    pub l1: Option<L1State>,
    /// When the health was last checked, in milliseconds since the Unix epoch.
    pub checked_at_unix_ms: u64,
    /// The doctor's checks (the "Checks" panel).
    #[serde(default)]
    pub checks: ChecksState,
}

/// One of the doctor's checks, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    /// Stable id (`redis.eviction_policy`).
    pub id: String,
    /// `ok`, `warn`, `fail` or `skip`.
    pub status: String,
    /// What was found.
    pub message: String,
    /// The exact fix, for a warning or a failure.
    pub fix: Option<String>,
}

/// The doctor's checks: the cheap ones, re-run by the server in the
/// background, and the SCAN-based ones of the last recorded `nscache doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChecksState {
    /// The cheap checks (no SCAN), newest run.
    pub cheap: Vec<CheckRow>,
    /// When they ran (ms since the Unix epoch); `None`: not yet.
    pub cheap_at_unix_ms: Option<u64>,
    /// The SCAN-based checks of the last recorded `nscache doctor` run.
    pub scanned: Vec<CheckRow>,
    /// When that run was (ms since the Unix epoch); `None`: none recorded.
    pub scanned_at_unix_ms: Option<u64>,
}

/// Counters since the server started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Cache operations.
    pub operations: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Store calls that failed because the store was unreachable.
    pub degraded: u64,
}

/// The outcome of an action, to show the person who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// One sentence.
    pub message: String,
}

impl Done {
    /// A message.
    pub fn new(message: impl Into<String>) -> Done {
        Done {
            message: message.into(),
        }
    }
}

/// A message carried across a redirect (forms posted without JavaScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// True for an error.
    pub error: bool,
    /// The text.
    pub message: String,
}

/// What every page needs: who is looking, and a message left by the last
/// form post, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageContext {
    /// The signed-in person, if any.
    pub viewer: Option<Viewer>,
    /// A message left by the previous request.
    pub flash: Option<Flash>,
}

/// Why the UI could not do or show something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum UiError {
    /// Not signed in (or the session ended): the UI sends people to the login page.
    #[error("please sign in")]
    Unauthenticated,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Signed in, but not allowed: the UI shows the 403 page.
    #[error("{0}")]
    Forbidden(String),
    /// The form was not sent by this site (missing or wrong CSRF token).
    #[error("this form has expired or was not sent by this site: reload the page and try again")]
    Csrf,
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Too many failed logins.
    #[error("{0}")]
    RateLimited(String),
    /// A dependency (cache store, database) did not answer.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a bug, or a broken request).
    #[error("{0}")]
    Internal(String),
}

impl UiError {
    /// The HTTP status this error is shown with.
    pub fn status(&self) -> u16 {
        match self {
            UiError::Unauthenticated | UiError::BadCredentials => 401,
            UiError::Forbidden(_) | UiError::Csrf => 403,
            UiError::NotFound(_) => 404,
            UiError::Invalid(_) => 400,
            UiError::RateLimited(_) => 429,
            UiError::Unavailable(_) => 503,
            UiError::Internal(_) => 500,
        }
    }
}

impl leptos::server_fn::error::FromServerFnError for UiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        UiError::Internal(value.to_string())
    }
}

/// Bytes, for people: `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A namespace version, for people.
pub struct VersionText(pub Option<u64>);

impl fmt::Display for VersionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("none yet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_up_and_never_reach_zero() {
        let page = |total| UsersPage {
            users: vec![],
            total,
            page: 1,
            per_page: 25,
            versions_available: true,
        };
        assert_eq!(page(0).pages(), 1);
        assert_eq!(page(25).pages(), 1);
        assert_eq!(page(26).pages(), 2);
        assert_eq!(page(100_000).pages(), 4000);
    }

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(256 << 20), "256.0 MiB");
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(UiError::Forbidden("x".into()).status(), 403);
        assert_eq!(UiError::Unauthenticated.status(), 401);
        assert_eq!(UiError::Csrf.status(), 403);
    }
}
