"""``nscache.django.NsCache``: a Django cache backend on nscache.

Settings (every key of ``OPTIONS`` is optional)::

    CACHES = {
        "default": {
            "BACKEND": "nscache.django.NsCache",
            "LOCATION": "redis://127.0.0.1:6379/1",   # or "memory://"
            "TIMEOUT": 300,                            # None: forever; 0 or less: expire at once
            "KEY_PREFIX": "revisbali",
            "VERSION": 1,
            "OPTIONS": {
                "POOL_SIZE": 50,                # or django-redis' CONNECTION_POOL_KWARGS.max_connections
                "SOCKET_TIMEOUT": 5,            # seconds per reply
                "SOCKET_CONNECT_TIMEOUT": 5,
                "L1": False, "L1_MAX_BYTES": None, "L1_TTL": None,
                "DEGRADE_ON_FAILURE": True,     # reads miss / writes are skipped on an outage
                "NAMESPACE_ROOT": "cache",
                "PROFILES_URL": "postgres://...",   # users' cache_enabled flags
                "PROFILE_TABLE": "core_userprofile",
                "WATCH_TABLES_URL": "postgres://...",  # query cache: Postgres triggers
                "PICKLE_VERSION": -1,           # like django-redis
            },
        }
    }

Global keys are django-redis' (see :mod:`nscache.django.serializers`);
``caches["default"].for_user(user_id)`` is the same API inside that user's
namespace, with signed values.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import (
    DEFAULT_TIMEOUT,
    BaseCache,
    CacheKeyWarning,
    InvalidCacheKey,
    default_key_func,
    memcache_key_warnings,
)
from django.core.exceptions import ImproperlyConfigured

import nscache

from .serializers import BadSignature, GlobalCodec, SignedCodec

logger = logging.getLogger("nscache.django")

#: ``OPTIONS`` names passed on to :meth:`nscache.Cache.from_url`.
_FROM_URL_OPTIONS = {
    "POOL_SIZE": "pool_size",
    "SOCKET_TIMEOUT": "timeout",
    "SOCKET_CONNECT_TIMEOUT": "connect_timeout",
    "L1": "l1",
    "L1_MAX_BYTES": "l1_max_bytes",
    "L1_TTL": "l1_ttl",
    "NAMESPACE_ROOT": "namespace_root",
    "MAX_KEY_BYTES": "max_key_bytes",
    "MAX_VALUE_BYTES": "max_value_bytes",
    "MAX_REPLY_BYTES": "max_reply_bytes",
    "NAMESPACE_QUOTA_BYTES": "namespace_quota_bytes",
    "MAX_NAMESPACE_TTL": "max_namespace_ttl",
    "MEMORY_CAPACITY": "memory_capacity",
    "PROFILES_URL": "profiles_url",
    "PROFILE_TABLE": "profile_table",
    "PROFILE_USER_COLUMN": "profile_user_column",
    "PROFILE_FLAG_COLUMN": "profile_flag_column",
    "PROFILE_MAX_AGE": "profile_max_age",
}
#: ``OPTIONS`` this module reads itself.
_OWN_OPTIONS = {
    "DEGRADE_ON_FAILURE",
    "PICKLE_VERSION",
    "CLOSE_CONNECTION",
    "WATCH_TABLES_URL",
    "CONNECTION_POOL_KWARGS",
    # Django's own (culling does not apply: Redis evicts).
    "MAX_ENTRIES",
    "CULL_FREQUENCY",
}

_CLEAN_KEYS_MAX = 4096

# One nscache.Cache per configuration and process: Django builds a backend
# object per thread, and each nscache.Cache owns a runtime and a pool.
_shared: dict[tuple, nscache.Cache] = {}
_shared_lock = threading.Lock()


def _shared_cache(location: str, kwargs: Mapping[str, Any], watch_tables_url: str | None = None) -> nscache.Cache:
    # A table watcher belongs to its nscache.Cache (and restarts with it):
    # configurations that watch differently do not share one.
    key = (location, tuple(sorted(kwargs.items())), watch_tables_url)
    with _shared_lock:
        cache = _shared.get(key)
        if cache is None:
            try:
                cache = nscache.Cache.from_url(location, **kwargs)
            except nscache.ConfigError as e:
                raise ImproperlyConfigured(f"nscache.django: {e}") from e
            _shared[key] = cache
        return cache


class _Raises:
    """Maps nscache's exceptions to Django's, once, at this boundary."""

    __slots__ = ()

    @staticmethod
    def key_error(e: nscache.InvalidKey) -> InvalidCacheKey:
        return InvalidCacheKey(str(e))


class _NsBase(BaseCache):
    """What the global cache and a user's cache share: Django's API over one
    nscache keyspace per key. Subclasses give ``_route`` and the codec."""

    # set by subclasses
    _codec: Any
    _nscache: nscache.Cache

    # ---- helpers ------------------------------------------------------

    #: Keys already validated without a warning (shared with for_user views).
    _clean_keys: set[str]

    def validate_key(self, key):
        """Django's memcached warnings (``CacheKeyWarning``), each key checked
        once: the keys that need no warning are remembered (a bounded set)."""
        clean = self._clean_keys
        if key in clean:
            return
        warned = False
        for warning in memcache_key_warnings(key):
            warnings.warn(warning, CacheKeyWarning, stacklevel=1)  # as Django's BaseCache
            warned = True
        if not warned:
            if len(clean) >= _CLEAN_KEYS_MAX:
                clean.clear()
            clean.add(key)

    def _route(self, key: Any, version: Any) -> tuple[nscache.Keyspace, str]:
        raise NotImplementedError

    def _dumps(self, value: Any, key: str) -> bytes:
        raise NotImplementedError

    def _loads(self, raw: bytes, key: str) -> Any:
        raise NotImplementedError

    def _ttl(self, timeout: Any) -> float | None:
        """Django's timeout as nscache's: None forever, 0 expire at once."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        timeout = float(timeout)
        if timeout <= 0 or math.isnan(timeout):
            return 0.0
        return max(timeout, 0.001)

    def _drop(self, ks: nscache.Keyspace, keys: list[str]) -> None:
        """A write with an expire-at-once timeout: the old values go."""
        try:
            if len(keys) == 1:
                ks.delete(keys[0])
            elif keys:
                ks.delete_many(keys)
        except nscache.Unavailable:
            logger.warning("nscache.django: store unavailable, a write was skipped")

    # ---- Django's cache API ------------------------------------------

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        ks, k = self._route(key, version)
        raw = self._dumps(value, k)
        ttl = self._ttl(timeout)
        try:
            if ttl == 0:
                # Stored and expired at once: True when the key was absent.
                return not ks.has_key(k)
            return ks.add(k, raw, ttl)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def get(self, key, default=None, version=None):
        ks, k = self._route(key, version)
        try:
            raw = ks.get(k)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e
        if raw is None:
            return default
        try:
            return self._loads(raw, k)
        except BadSignature:
            return default

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        ks, k = self._route(key, version)
        raw = self._dumps(value, k)
        ttl = self._ttl(timeout)
        try:
            if ttl == 0:
                self._drop(ks, [k])
            else:
                ks.set(k, raw, ttl)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        ks, k = self._route(key, version)
        ttl = self._ttl(timeout)
        try:
            if ttl == 0:
                return ks.delete(k)
            return ks.touch(k, ttl)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def delete(self, key, version=None):
        ks, k = self._route(key, version)
        try:
            return ks.delete(k)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def _route_many(self, keys: Iterable[Any], version: Any) -> list[tuple[nscache.Keyspace, dict[str, Any]]]:
        """Keys grouped by keyspace: [(keyspace, {storage key: caller's key})]."""
        groups: dict[int, tuple[nscache.Keyspace, dict[str, Any]]] = {}
        for key in keys:
            ks, k = self._route(key, version)
            groups.setdefault(id(ks), (ks, {}))[1][k] = key
        return list(groups.values())

    def get_many(self, keys, version=None):
        found = {}
        for ks, names in self._route_many(keys, version):
            try:
                raws = ks.get_many(list(names))
            except nscache.InvalidKey as e:
                raise _Raises.key_error(e) from e
            for k, raw in raws.items():
                try:
                    found[names[k]] = self._loads(raw, k)
                except BadSignature:
                    pass
        return found

    def has_key(self, key, version=None):
        ks, k = self._route(key, version)
        try:
            return ks.has_key(k)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def incr(self, key, delta=1, version=None):
        ks, k = self._route(key, version)
        try:
            return ks.incr(k, delta)
        except nscache.NotFound as e:
            raise ValueError(f"Key '{key}' not found") from e
        except nscache.NotAnInteger as e:
            raise TypeError(f"Key '{key}' does not hold an integer (or the result overflows): {e}") from e
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def decr(self, key, delta=1, version=None):
        return self.incr(key, -delta, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        if not data:
            return []
        groups: dict[int, tuple[nscache.Keyspace, dict[str, bytes]]] = {}
        for key, value in data.items():
            ks, k = self._route(key, version)
            groups.setdefault(id(ks), (ks, {}))[1][k] = self._dumps(value, k)
        ttl = self._ttl(timeout)
        try:
            for ks, mapping in groups.values():
                if ttl == 0:
                    self._drop(ks, list(mapping))
                else:
                    ks.set_many(mapping, ttl)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e
        return []

    def delete_many(self, keys, version=None):
        try:
            for ks, names in self._route_many(keys, version):
                ks.delete_many(list(names))
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e

    def get_or_set(self, key, default, timeout=DEFAULT_TIMEOUT, version=None):
        ttl = self._ttl(timeout)
        if not callable(default) or ttl == 0:
            return super().get_or_set(key, default, timeout=timeout, version=version)
        # A callable: nscache's single-flight get_or_set (one load per key and
        # process however many threads miss together).
        ks, k = self._route(key, version)
        computed: list[Any] = []

        def load() -> bytes:
            value = default()
            computed.append(value)
            return self._dumps(value, k)

        try:
            raw = ks.get_or_set(k, load, ttl)
        except nscache.InvalidKey as e:
            raise _Raises.key_error(e) from e
        if computed:
            return computed[0]
        try:
            return self._loads(raw, k)
        except BadSignature:
            value = default()
            self.set(key, value, timeout=timeout, version=version)
            return value

    def ttl(self, key, version=None):
        """Seconds ``key`` has left, like django-redis: 0 if it is missing,
        ``None`` if it never expires."""
        ks, k = self._route(key, version)
        left = ks.ttl(k)
        if left is None:
            return 0
        if math.isinf(left):
            return None
        return int(math.ceil(left))

    def persist(self, key, version=None):
        """Remove the expiry of ``key``; True if it exists (django-redis)."""
        ks, k = self._route(key, version)
        return ks.persist(k)

    def close(self, **kwargs):
        # Django calls close() at the end of every request; nscache keeps its
        # pool for the life of the process (django-redis does the same unless
        # CLOSE_CONNECTION is set).
        if self._close_connection:
            self._nscache.close()

    _close_connection = False


class NsCache(_NsBase):
    """The ``CACHES`` backend: Django's cache API on nscache's global keys.

    ``for_user(user_id)`` returns the same API inside that user's namespace.
    """

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        if isinstance(location, (list, tuple)):
            if len(location) != 1:
                raise ImproperlyConfigured("nscache.django: LOCATION names one Redis URL")
            location = location[0]
        self._location = location or "memory://"
        options = dict(params.get("OPTIONS") or {})
        unknown = set(options) - set(_FROM_URL_OPTIONS) - _OWN_OPTIONS
        if unknown:
            raise ImproperlyConfigured(
                f"nscache.django: unknown OPTIONS {sorted(unknown)} "
                f"(known: {sorted(set(_FROM_URL_OPTIONS) | _OWN_OPTIONS)})"
            )
        kwargs: dict[str, Any] = {}
        pool = (options.get("CONNECTION_POOL_KWARGS") or {}).get("max_connections")
        if pool is not None:
            kwargs["pool_size"] = int(pool)
        for name, keyword in _FROM_URL_OPTIONS.items():
            if name in options:
                kwargs[keyword] = options[name]
        if options.get("DEGRADE_ON_FAILURE", True) is not True:
            raise ImproperlyConfigured(
                "nscache.django: DEGRADE_ON_FAILURE=False is not available: nscache's failure policy "
                "always degrades reads to misses and skips plain writes on an outage (add, incr, "
                "delete, locks and invalidation raise nscache.Unavailable)"
            )
        # Django decides every entry's TTL itself.
        kwargs["default_ttl"] = None
        self._from_url_kwargs = kwargs
        protocol = int(options.get("PICKLE_VERSION", pickle.DEFAULT_PROTOCOL))
        if protocol < 0:
            protocol = pickle.HIGHEST_PROTOCOL
        self._protocol = protocol
        self._codec = GlobalCodec(protocol)
        self._close_connection = bool(options.get("CLOSE_CONNECTION", False))
        self.watch_tables_url = options.get("WATCH_TABLES_URL")
        self._signed: SignedCodec | None = None
        self._by_version: dict[Any, nscache.Keyspace] = {}
        self._clean_keys = set()
        self._prefix_for_nscache()  # a KEY_PREFIX nscache cannot lay out: refused now

    # -- the nscache handles ------------------------------------------------

    @property
    def _nscache(self) -> nscache.Cache:  # type: ignore[override]
        cache = self._shared
        if cache is None:
            kwargs = dict(
                self._from_url_kwargs,
                key_prefix=self._prefix_for_nscache(),
                key_version=self._version_number(self.version),
            )
            cache = self._shared = _shared_cache(self._location, kwargs, self.watch_tables_url)
        return cache

    _shared: nscache.Cache | None = None

    @property
    def nscache(self) -> nscache.Cache:
        """The nscache :class:`nscache.Cache` behind this backend (locks,
        invalidation, metrics)."""
        return self._nscache

    def _prefix_for_nscache(self) -> str:
        prefix = self.key_prefix
        if not prefix or ":" in prefix or any(c.isspace() for c in prefix) or len(prefix) > 64:
            raise ImproperlyConfigured(
                "nscache.django: KEY_PREFIX must be 1 to 64 characters without ':' or spaces "
                f"(got {prefix!r}): nscache's global keys are '{{KEY_PREFIX}}:{{VERSION}}:{{key}}'"
            )
        return prefix

    @staticmethod
    def _version_number(version: Any) -> int:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"nscache.django: cache versions are whole numbers >= 1 (got {version!r})")
        return version

    def _space(self, version: Any) -> nscache.Keyspace:
        ks = self._by_version.get(version)
        if ks is None:
            ks = self._nscache.global_(self._version_number(version))
            self._by_version[version] = ks
        return ks

    def _route(self, key, version):
        if version is None:
            version = self.version
        if self.key_func is default_key_func:
            # Django's key is '{prefix}:{version}:{key}': nscache's global
            # keyspace of that version composes exactly this string.
            self.validate_key(f"{self.key_prefix}:{version}:{key}")
            ks = self._by_version.get(version)
            if ks is None:
                ks = self._space(version)
            return ks, key if type(key) is str else f"{key}"
        # A custom key function: its key, in this cache's version.
        made = self.key_func(key, self.key_prefix, version)
        self.validate_key(made)
        return self._space(self.version), made

    # -- values -------------------------------------------------------------

    def _dumps(self, value, key):
        return self._codec.dumps(value)

    def _loads(self, raw, key):
        return self._codec.loads(raw)

    def signed_codec(self) -> SignedCodec:
        """The codec of namespaced values (keyed from ``SECRET_KEY``)."""
        if self._signed is None:
            self._signed = SignedCodec(
                settings.SECRET_KEY,
                self._protocol,
                fallbacks=list(getattr(settings, "SECRET_KEY_FALLBACKS", []) or []),
            )
        return self._signed

    # -- API beyond Django's ---------------------------------------------------

    def for_user(self, user_id: str | int) -> UserCache:
        """Django's cache API inside ``user_id``'s namespace."""
        return UserCache(self, user_id)

    def cache_enabled(self, user_id: str | int) -> bool:
        """``user_id``'s ``cache_enabled`` flag (``OPTIONS["PROFILES_URL"]``;
        True when no profiles source is configured)."""
        return self._nscache.cache_enabled(user_id)

    def lock(self, key: str, timeout: float) -> str | None:
        """nscache's global lock ``key``: a token, or None if it is held."""
        return self._nscache.lock(key, timeout)

    def unlock(self, key: str, token: str) -> bool:
        """Release the lock ``key`` held with ``token``."""
        return self._nscache.unlock(key, token)

    def clear(self):
        """Hide every user namespace at once (``invalidate_all``, O(1)).

        Global keys are kept: nscache never flushes a database (django-redis'
        ``clear()`` runs FLUSHDB, which also takes every other application's
        keys in that database). Delete global keys by name."""
        self._nscache.invalidate_all()


class UserCache(_NsBase):
    """Django's cache API inside one user's namespace (``NsCache.for_user``).

    Keys are the parent's ``make_key`` strings (its ``KEY_PREFIX``, version
    and key function) inside ``cache:{user}:v{n}:data:``; values are signed
    (see :mod:`nscache.django.serializers`). ``clear()`` invalidates the
    namespace in O(1).
    """

    def __init__(self, parent: NsCache, user_id: str | int) -> None:
        # BaseCache.__init__ parses settings; copy the parent's instead.
        self.default_timeout = parent.default_timeout
        self._max_entries = parent._max_entries
        self._cull_frequency = parent._cull_frequency
        self.key_prefix = parent.key_prefix
        self.version = parent.version
        self.key_func = parent.key_func
        self.parent = parent
        self._clean_keys = parent._clean_keys
        self.user_id = str(user_id)
        self._nscache = parent._nscache
        self._ks = self._nscache.user(self.user_id)
        self._codec = parent.signed_codec()
        self._close_connection = parent._close_connection

    @property
    def keyspace(self) -> nscache.Keyspace:
        """The nscache keyspace of this namespace."""
        return self._ks

    def _route(self, key, version):
        return self._ks, self.make_and_validate_key(key, version)

    def _dumps(self, value, key):
        return self._codec.dumps(value, self.user_id, key)

    def _loads(self, raw, key):
        return self._codec.loads(raw, self.user_id, key)

    def cache_enabled(self) -> bool:
        """This user's ``cache_enabled`` flag."""
        return self._nscache.cache_enabled(self.user_id)

    def clear(self):
        """Invalidate this namespace (O(1)); returns nothing, like Django's."""
        self._nscache.invalidate_user(self.user_id)

    def __repr__(self) -> str:
        return f"<UserCache user={self.user_id!r}>"
