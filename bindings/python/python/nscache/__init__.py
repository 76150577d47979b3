"""nscache: a per-user namespaced cache with O(1) invalidation.

The cache logic is the nscache WebAssembly component, run by the Rust
library (the extension module ``nscache._native``). See ``__init__.pyi`` for
the API; nothing is built at import or construction (fork-safe).
"""

from nscache._native import (
    DEFAULT,
    Cache,
    ConfigError,
    DefaultTtl,
    Error,
    InternalError,
    InvalidArgument,
    InvalidKey,
    Keyspace,
    NotAnInteger,
    NotFound,
    QuotaExceeded,
    ReplyTooLarge,
    Unavailable,
    ValueTooLarge,
    __version__,
)

Ttl = float | None | DefaultTtl
"""A ``ttl`` argument: ``DEFAULT``, ``None`` (never expires) or seconds (>= 0; 0 removes)."""

UserId = str | int
"""A user id: a non-empty string, or an int (used as its decimal string)."""

__all__ = [
    "DEFAULT",
    "Cache",
    "ConfigError",
    "DefaultTtl",
    "Error",
    "InternalError",
    "InvalidArgument",
    "InvalidKey",
    "Keyspace",
    "NotAnInteger",
    "NotFound",
    "QuotaExceeded",
    "ReplyTooLarge",
    "Ttl",
    "Unavailable",
    "UserId",
    "ValueTooLarge",
    "__version__",
]
