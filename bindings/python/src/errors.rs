//! The Python exceptions, and the one mapping from the library's errors to them.

use nscache::CacheError;
use nscache::profiles::ProfileError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    nscache,
    Error,
    PyException,
    "Base class of every nscache error."
);
create_exception!(
    nscache,
    Unavailable,
    Error,
    "The store is unreachable and the operation's correctness depends on it."
);
create_exception!(
    nscache,
    NotFound,
    Error,
    "incr/decr on a key that does not exist."
);
create_exception!(
    nscache,
    NotAnInteger,
    Error,
    "incr/decr on a value that is not a decimal integer, or overflow."
);
create_exception!(
    nscache,
    InvalidKey,
    Error,
    "A key longer than max_key_bytes, or an unusable user id or table name."
);
create_exception!(
    nscache,
    ValueTooLarge,
    Error,
    "A value larger than max_value_bytes; nothing was stored."
);
create_exception!(nscache, InvalidArgument, Error, "An argument out of range.");
create_exception!(
    nscache,
    ReplyTooLarge,
    Error,
    "The values asked for add up to more than max_reply_bytes."
);
create_exception!(
    nscache,
    QuotaExceeded,
    Error,
    "The write would take the user's namespace past namespace_quota_bytes."
);
create_exception!(
    nscache,
    ConfigError,
    Error,
    "The cache is configured wrongly (bad URL, bad option)."
);
create_exception!(
    nscache,
    InternalError,
    Error,
    "The store answered something the cache cannot interpret, or the component failed."
);

/// The Python exception for a library error: the one place they are mapped.
pub(crate) fn to_py(e: CacheError) -> PyErr {
    let message = e.to_string();
    match e {
        CacheError::Unavailable(_) => Unavailable::new_err(message),
        CacheError::KeyTooLong(_) | CacheError::InvalidName(_) => InvalidKey::new_err(message),
        CacheError::ValueTooLarge(_) => ValueTooLarge::new_err(message),
        CacheError::InvalidArgument(_) => InvalidArgument::new_err(message),
        CacheError::NotFound => NotFound::new_err(message),
        CacheError::NotAnInteger => NotAnInteger::new_err(message),
        CacheError::ReplyTooLarge(_) => ReplyTooLarge::new_err(message),
        CacheError::QuotaExceeded(_) => QuotaExceeded::new_err(message),
        CacheError::Config(_) => ConfigError::new_err(message),
        CacheError::Internal(_) | CacheError::Component(_) => InternalError::new_err(message),
    }
}

/// A profile source's failure, as the cache reports it: an outage is
/// [`CacheError::Unavailable`], anything else a fault.
pub(crate) fn profile_error(e: ProfileError) -> CacheError {
    match e {
        ProfileError::Unavailable(m) => CacheError::Unavailable(m),
        ProfileError::NotFound(m) | ProfileError::Other(m) => CacheError::Internal(m),
    }
}

/// Add the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("NotAnInteger", py.get_type::<NotAnInteger>())?;
    m.add("InvalidKey", py.get_type::<InvalidKey>())?;
    m.add("ValueTooLarge", py.get_type::<ValueTooLarge>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("ReplyTooLarge", py.get_type::<ReplyTooLarge>())?;
    m.add("QuotaExceeded", py.get_type::<QuotaExceeded>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
