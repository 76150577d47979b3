"""nscache: a per-user namespaced cache with O(1) invalidation.

The cache logic (key layout, versioning, limits, failure policy) is the same
WebAssembly component every nscache host runs, embedded through the Rust
library; values are ``bytes``.

Nothing is built at import or construction: each process builds its own
runtime and connections on its first call (safe under pre-forking servers).
Every call releases the GIL while it waits for the store.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Final, final

__version__: Final[str]

@final
class DefaultTtl:
    """The type of :data:`DEFAULT`."""

DEFAULT: Final[DefaultTtl]
"""A ``ttl`` argument meaning "the cache's default TTL" (``default_ttl``)."""

Ttl = float | None | DefaultTtl
"""A ``ttl`` argument: :data:`DEFAULT`, ``None`` (never expires) or seconds (>= 0;
zero expires at once: the write removes the key). Negative, NaN or infinite
seconds raise :class:`InvalidArgument`."""

UserId = str | int
"""A user id: a non-empty string, or an int (used as its decimal string)."""

class Error(Exception):
    """Base class of every nscache error."""

class Unavailable(Error):
    """The store is unreachable and the operation's correctness depends on it
    (``add``, ``incr``, ``delete``, locks, invalidation...). Reads degrade to
    misses and plain writes are skipped instead of raising this."""

class NotFound(Error):
    """``incr``/``decr`` on a key that does not exist."""

class NotAnInteger(Error):
    """``incr``/``decr`` on a value that is not a decimal integer, or overflow."""

class InvalidKey(Error):
    """A key longer than ``max_key_bytes``, or an unusable user id or table name."""

class ValueTooLarge(Error):
    """A value larger than ``max_value_bytes``; nothing was stored."""

class InvalidArgument(Error):
    """An argument out of range (a TTL < 0, a query on the global keyspace...)."""

class ReplyTooLarge(Error):
    """The values asked for add up to more than ``max_reply_bytes``."""

class QuotaExceeded(Error):
    """The write would take the user's namespace past ``namespace_quota_bytes``."""

class ConfigError(Error):
    """The cache is configured wrongly (bad URL, bad option). Raised by the
    first call of a process, since construction validates only the options'
    types and ranges that need no runtime."""

class InternalError(Error):
    """The store answered something the cache cannot interpret, or the
    component failed: a bug, never an outage."""

@final
class Keyspace:
    """A view on the global keyspace (``cache.global_()``) or on one user's
    namespace (``cache.user(id)``). Cheap; holds no connection.

    Global keys are django-redis' strings: ``{key_prefix}:{key_version}:{key}``.
    A user's keys are versioned: ``cache.invalidate_user(id)`` hides them all
    at once. A user whose ``cache_enabled`` flag is false is bypassed: reads
    miss, writes are skipped.
    """

    @property
    def user_id(self) -> str | None:
        """The user of this namespace; ``None`` for the global keyspace."""

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None`` on a miss (or a store outage)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values found among ``keys`` (missing keys are absent). One round trip."""

    def set(self, key: str, value: bytes, ttl: Ttl = DEFAULT) -> None:
        """Store ``value`` at ``key`` (skipped on a store outage)."""

    def set_many(self, mapping: Mapping[str, bytes], ttl: Ttl = DEFAULT) -> None:
        """Store every entry, atomically, with the same TTL."""

    def add(self, key: str, value: bytes, ttl: Ttl = DEFAULT) -> bool:
        """Store ``value`` only if ``key`` is absent. True if stored."""

    def delete(self, key: str) -> bool:
        """Remove ``key``. True if it existed."""

    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove every key in ``keys``; returns how many existed."""

    def has_key(self, key: str) -> bool:
        """True if ``key`` exists."""

    def incr(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to the integer at ``key`` (stored as its decimal
        string, so Redis' INCR works on it too). Raises :class:`NotFound` if
        absent, :class:`NotAnInteger` if not an integer or on overflow."""

    def decr(self, key: str, delta: int = 1) -> int:
        """Subtract ``delta`` from the integer at ``key`` (see :meth:`incr`)."""

    def touch(self, key: str, ttl: Ttl = DEFAULT) -> bool:
        """Give an existing key a new TTL. True if the key exists."""

    def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left: ``None`` if missing, ``math.inf`` if it never expires."""

    def persist(self, key: str) -> bool:
        """Remove the expiry of an existing key. True if the key exists."""

    def get_or_set(self, key: str, loader: Callable[[], bytes], ttl: Ttl = DEFAULT) -> bytes:
        """The value at ``key``; on a miss, call ``loader()`` and store its result.

        Single-flight within the process: concurrent misses on one key (from
        any thread) call ``loader`` once and share its value. ``loader`` runs
        with the GIL held and no lock taken, so it may use the cache itself.
        An exception from ``loader`` propagates unchanged and stores nothing.
        (The loader must not ask for the very key it is loading: that call
        would wait for itself.)
        A value computed across an invalidation of the namespace is never
        visible after it.
        """

    def query(
        self,
        query: str,
        params: bytes,
        tables: Sequence[str],
        loader: Callable[[], bytes],
        ttl: Ttl = DEFAULT,
    ) -> bytes:
        """The cached result of ``query`` with ``params`` (serialised as you
        like), which reads ``tables``; on a miss, call ``loader()`` and store
        its result. User keyspaces only (the global one raises
        :class:`InvalidArgument`). Invalidated by :meth:`Cache.invalidate_table`
        of any of ``tables`` and by :meth:`Cache.invalidate_user`.
        Single-flight like :meth:`get_or_set`."""

@final
class Cache:
    """A cache handle. Construction connects to nothing and builds nothing:
    each process builds its runtime and connections on its first call, so a
    cache created before ``os.fork()`` works in the parent and in the child
    (the child never uses or closes the parent's sockets)."""

    @staticmethod
    def from_url(
        url: str,
        *,
        key_prefix: str | None = None,
        key_version: int | None = None,
        namespace_root: str | None = None,
        default_ttl: float | None = 300.0,
        l1: bool = False,
        l1_max_bytes: int | None = None,
        l1_ttl: float | None = None,
        pool_size: int | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_key_bytes: int | None = None,
        max_value_bytes: int | None = None,
        max_reply_bytes: int | None = None,
        namespace_quota_bytes: int | None = None,
        max_namespace_ttl: float | None = None,
        memory_capacity: int | None = None,
        profiles_url: str | None = None,
        profile_table: str | None = None,
        profile_user_column: str | None = None,
        profile_flag_column: str | None = None,
        profile_max_age: float | None = None,
    ) -> Cache:
        """A cache on Redis (``redis://[user:pass@]host[:port][/db]``, database
        1 when none is named) or on the embedded memory
        store (``memory://``, private to the process).

        ``None`` for an option means nscache's default (the component's for
        ``key_prefix`` ``"revisbali"``, ``key_version`` 1, ``namespace_root``
        ``"cache"``, ``max_key_bytes`` 1024, ``max_value_bytes`` 1 MiB, ``max_reply_bytes``
        8 MiB, ``namespace_quota_bytes`` 64 MiB (0: none), ``max_namespace_ttl``
        a day).

        - ``default_ttl``: seconds of :data:`DEFAULT`; ``None``: :data:`DEFAULT`
          never expires; ``0``: :data:`DEFAULT` writes store nothing.
        - ``l1``: an in-process L1 in front of Redis (``l1_max_bytes`` bytes,
          entries served for at most ``l1_ttl`` seconds without hearing of a
          change; other processes' writes are heard over pub/sub).
        - ``pool_size``: Redis connections per process (default 50);
          ``timeout`` / ``connect_timeout``: longest wait for one reply / to
          connect, seconds (default 5). The failure policy is the component's:
          reads degrade to misses and plain writes are skipped on an outage;
          operations that cannot (``add``, ``incr``, locks...) raise
          :class:`Unavailable`.
        - ``profiles_url``: ``postgres://...``: users' ``cache_enabled`` flags
          are read from the same table and column the nscache server uses
          (``nscache_user_profiles.cache_enabled``, or ``profile_table`` /
          ``profile_user_column`` / ``profile_flag_column`` for an
          application's table such as ``core_userprofile``), trusted for
          ``profile_max_age`` seconds (default 30; changes made through
          nscache are heard at once over Redis).

        Raises :class:`InvalidArgument` for a number of seconds out of range
        (``timeout``, ``connect_timeout``, ``l1_ttl``... must be more than
        zero, ``default_ttl`` at least zero) and
        :class:`ConfigError` for any other value out of range or a URL that
        is not ``redis://``/``memory://``; what only a connection can tell
        (an unreachable host) is reported by the calls.
        """

    @staticmethod
    def from_settings(options: Mapping[str, str | int | float | bool | None]) -> Cache:
        """A cache configured like the nscache server: option names as the
        CLI's (``redis-url``, ``pool-size``, ``socket-timeout``, ``prefix``,
        ``database-url``...; ``_`` may replace ``-``), values parsed as the
        environment's. ``None`` values are ignored."""

    @staticmethod
    def from_env() -> Cache:
        """A cache configured from the environment, like the nscache server
        (``REDIS_URL``, ``CACHE_KEY_PREFIX``, ``NSCACHE_POOL_SIZE``, ``DATABASE_URL``...)."""

    @staticmethod
    def memory() -> Cache:
        """A cache on the embedded memory store (``from_url("memory://")``)."""

    def global_(self, version: int | None = None) -> Keyspace:
        """The global keyspace (django-redis' key strings
        ``{key_prefix}:{version}:{key}``): locks, sequences, tokens. Never
        affected by ``cache_enabled`` or invalidation. ``version``: another
        key version than ``key_version`` (Django's per-call ``version=``),
        on the same store, connections and L1."""

    def user(self, user: UserId) -> Keyspace:
        """The namespace of ``user``."""

    def lock(self, key: str, timeout: float, *, token: str | None = None) -> str | None:
        """Take the global lock ``key`` for at most ``timeout`` seconds (> 0)
        with ``token`` (e.g. a worker's name) or a fresh random one; the
        token, or ``None`` if someone holds it."""

    def unlock(self, key: str, token: str) -> bool:
        """Release the lock ``key`` if ``token`` holds it. True if released."""

    def invalidate_user(self, user: UserId) -> int:
        """Hide every entry of ``user``'s namespace, in O(1). Returns the new version."""

    def invalidate_table(self, table: str) -> int:
        """Hide every cached query over ``table``, for all users, in O(1).
        Returns the table's new version."""

    def invalidate_all(self) -> int:
        """Hide every user namespace at once (global keys are kept). Returns
        the new namespace floor."""

    def version_of(self, user: UserId) -> int | None:
        """The version of ``user``'s namespace; ``None`` if it holds nothing."""

    def cache_enabled(self, user: UserId) -> bool:
        """``user``'s ``cache_enabled`` flag from the profiles source
        (``profiles_url``); True when no source is configured. Raises
        :class:`Unavailable` when the database cannot be reached and the
        flag was never read."""

    def ping(self) -> float:
        """Round-trip time to the store, in seconds."""

    def metrics(self) -> str:
        """This process's operation counters and latencies, Prometheus text."""

    def watch_tables(self, database_url: str) -> None:
        """Invalidate cached queries when watched Postgres tables change: run
        nscache's table watcher (LISTEN on ``nscache_table_changes``; install
        triggers with ``nscache watch-table``) in this process. Idempotent;
        started again lazily in a forked child."""

    def close(self) -> None:
        """Drop this process's runtime and connections; the next call builds
        new ones."""
