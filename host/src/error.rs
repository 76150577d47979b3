//! [`CacheError`]: what the cache API returns when it cannot do what was asked.

use crate::bindings::nscache::cache::types::Error as WitError;

/// Why a cache operation failed. The first ten variants are the component's
/// `error` variant (see `wit/types.wit`); the last two are host failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The store is unreachable and the operation's correctness depends on it.
    #[error("cache store unavailable: {0}")]
    Unavailable(String),
    /// The key is longer than the configured maximum.
    #[error("key too long: {0}")]
    KeyTooLong(String),
    /// The value is larger than the configured maximum; nothing was stored.
    #[error("value too large: {0}")]
    ValueTooLarge(String),
    /// The user id or table name is empty, too long or otherwise unusable.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// An argument or setting is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `incr`/`decr` on a key that does not exist.
    #[error("key not found")]
    NotFound,
    /// `incr`/`decr` on a value that is not a decimal integer, or overflow.
    #[error("value is not an integer or the result is out of range")]
    NotAnInteger,
    /// The store answered something the cache cannot interpret.
    #[error("internal error: {0}")]
    Internal(String),
    /// The values asked for add up to more than the reply budget
    /// (`max-reply-bytes`); nothing is returned.
    #[error("reply too large: {0}")]
    ReplyTooLarge(String),
    /// The write would take the user's namespace past its quota
    /// (`namespace-quota-bytes`); nothing was written.
    #[error("namespace quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The component could not be loaded or trapped: a bug, never a store failure.
    #[error("cache component failure: {0}")]
    Component(String),
    /// The host was configured wrongly (bad URL, bad option).
    #[error("configuration error: {0}")]
    Config(String),
}

impl From<WitError> for CacheError {
    fn from(e: WitError) -> Self {
        match e {
            WitError::Unavailable(m) => CacheError::Unavailable(m),
            WitError::KeyTooLong(m) => CacheError::KeyTooLong(m),
            WitError::ValueTooLarge(m) => CacheError::ValueTooLarge(m),
            WitError::InvalidName(m) => CacheError::InvalidName(m),
            WitError::InvalidArgument(m) => CacheError::InvalidArgument(m),
            WitError::NotFound => CacheError::NotFound,
            WitError::NotAnInteger => CacheError::NotAnInteger,
            WitError::Internal(m) => CacheError::Internal(m),
            WitError::ReplyTooLarge(m) => CacheError::ReplyTooLarge(m),
            WitError::QuotaExceeded(m) => CacheError::QuotaExceeded(m),
        }
    }
}

/// The host's own use of a store (health checks, memory figures): an outage
/// is [`CacheError::Unavailable`], anything else a fault
/// ([`CacheError::Internal`]) — the component's mapping, for the calls that
/// do not go through it.
impl From<crate::store::StoreError> for CacheError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(m) => CacheError::Unavailable(m),
            StoreError::NotAnInteger => CacheError::NotAnInteger,
            StoreError::Other(m) => CacheError::Internal(m),
            StoreError::TooLarge(m) => CacheError::ReplyTooLarge(m),
        }
    }
}

/// What [`Keyspace::get_or_set`](crate::Keyspace::get_or_set) returns on failure.
#[derive(Debug, thiserror::Error)]
pub enum GetOrSetError<E> {
    /// The cache failed (only errors the failure policy lets through).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The loader failed; nothing was stored.
    #[error("loader failed: {0}")]
    Load(E),
}
