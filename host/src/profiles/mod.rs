//! Where the users' `cache_enabled` flags come from: one trait the component's
//! `profiles` import calls, [`ProfileSource`], and one file per implementation.
//!
//! - [`StaticProfiles`]: flags kept in process memory (applications that keep
//!   the flag themselves, tests).
//! - [`CachedProfiles`]: flags kept in a database behind a [`FlagStore`],
//!   remembered in process and kept coherent across processes over Redis
//!   pub/sub. [`PostgresFlags`] (feature `postgres`) is the store for a
//!   Postgres profile table; the server adds its own directory's.

mod cached;
#[cfg(feature = "postgres")]
mod postgres;
mod static_map;

use async_trait::async_trait;

pub use self::cached::CachedProfiles;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresFlags;
pub use self::static_map::StaticProfiles;

/// Why a flag could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The backing database is unreachable (and, for a read, the user was
    /// never seen).
    #[error("profiles unavailable: {0}")]
    Unavailable(String),
    /// The user has no profile row to update.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database answered something unusable (a schema that does not
    /// match the configuration, say): a fault to fix, not an outage.
    #[error("profiles: {0}")]
    Other(String),
}

/// Answers the component's `profiles.cache-enabled` import.
///
/// An error makes the component bypass that user's namespace (reads miss,
/// writes are skipped), so a source should only fail for users it knows
/// nothing about.
#[async_trait]
pub trait ProfileSource: Send + Sync + std::fmt::Debug + 'static {
    /// Whether caching is enabled for `user`.
    async fn cache_enabled(&self, user: &str) -> Result<bool, ProfileError>;

    /// A number that changes whenever an answer of [`cache_enabled`] may
    /// change, for any user; `None` when the source cannot tell (then no
    /// answer computed from a flag is remembered, see the L1). The default.
    ///
    /// [`cache_enabled`]: ProfileSource::cache_enabled
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// A database table of flags, one row per user: what [`CachedProfiles`]
/// reads and writes. One implementation per database.
#[async_trait]
pub trait FlagStore: Send + Sync + std::fmt::Debug + 'static {
    /// `user`'s flag; `None` when the user has no profile row (the column's
    /// default, true, then applies).
    async fn cache_enabled(&self, user: &str) -> Result<Option<bool>, ProfileError>;

    /// Set `user`'s flag; [`ProfileError::NotFound`] when the user has no row.
    async fn set_cache_enabled(&self, user: &str, enabled: bool) -> Result<(), ProfileError>;
}
