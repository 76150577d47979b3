//! Errors of the cache API and of the storage primitives.

use thiserror::Error;

/// Why a cache operation did not do what was asked (the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
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
    /// An argument is out of range.
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
    /// The values asked for add up to more than the reply budget.
    #[error("reply too large: {0}")]
    ReplyTooLarge(String),
    /// The write would take the namespace past its quota; nothing was written.
    #[error("namespace quota exceeded: {0}")]
    QuotaExceeded(String),
}

/// Why a storage primitive failed (the WIT `store-error` variant).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The store cannot be reached.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An increment found a non-integer value, or would overflow.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// Any other failure of the store.
    #[error("store error: {0}")]
    Other(String),
    /// A read found more bytes than it was allowed.
    #[error("read over budget: {0}")]
    TooLarge(String),
}

impl From<StoreError> for Error {
    /// The error a caller sees when a primitive fails during an operation that
    /// must not pretend (add, incr, locks, invalidation...), and when any
    /// operation meets a store fault that is not an outage.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => Error::Unavailable(msg),
            StoreError::NotAnInteger => Error::NotAnInteger,
            // A reply of the wrong shape, a script error: a fault to fix,
            // not an outage to ride out.
            StoreError::Other(msg) => Error::Internal(msg),
            StoreError::TooLarge(msg) => Error::ReplyTooLarge(msg),
        }
    }
}

/// The failure policy of reads and plain writes: when the store is
/// unreachable they degrade to `fallback` (a miss, a skipped write); any
/// other store failure is a fault and is reported as [`Error::Internal`].
pub(crate) fn degrade<T>(
    result: Result<T, StoreError>,
    fallback: impl FnOnce() -> T,
) -> Result<T, Error> {
    match result {
        Ok(value) => Ok(value),
        Err(StoreError::Unavailable(_)) => Ok(fallback()),
        Err(other) => Err(other.into()),
    }
}
