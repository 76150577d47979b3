//! Where the users' `cache_enabled` flags come from: one trait,
//! [`ProfileSource`], one file per implementation.

#[cfg(feature = "server")]
mod directory;
mod static_map;

use async_trait::async_trait;

#[cfg(feature = "server")]
pub use self::directory::DirectoryProfiles;
pub use self::static_map::StaticProfiles;

/// Why a profile source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The backing database is unreachable and the user was never seen.
    #[error("profiles unavailable: {0}")]
    Unavailable(String),
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
