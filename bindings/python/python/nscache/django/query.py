"""A query cache in the spirit of django-cacheops, in each user's namespace.

::

    class Invoice(models.Model):
        ...
        objects = CachedManager()          # or CachedQuerySet.as_manager()

    Invoice.objects.filter(customer__name="ACME").cache(timeout=60)

``.cache()`` marks a queryset; when it is evaluated (iteration, ``len``,
``list``, ``get``...) its rows come from ``Keyspace.query`` in the namespace
of the request's user (``request.user_cache``, set by
:class:`~nscache.django.middleware.UserCacheMiddleware`), or of ``user=`` (an
id, a user object or a user cache). The entry is keyed by the compiled SQL,
its parameters, the database alias, the model and the kind of rows, so two
users' identical querysets never share an entry, and it records every table
the query reads: the base table, its joins (many-to-many ``through`` tables
included) and the tables of its subqueries (``__in`` querysets,
``Subquery``/``Exists``, annotations, unions), taken from the compiled query.

Invalidation, per table, for all users at once (nscache's table versions):

- Django model signals (``post_save``, ``post_delete``, ``m2m_changed``, and
  ``update()`` / ``bulk_create()`` of these querysets), run after the
  transaction commits (``transaction.on_commit``) — install the app
  (``INSTALLED_APPS += ["nscache.django"]``);
- nscache's Postgres triggers (``nscache watch-table <db_table>``) for writes
  Django does not see (``psql``, other services): with
  ``OPTIONS["WATCH_TABLES_URL"]`` each process starts the library's table
  watcher on its first cached query (again after a fork).

Not cached: querysets evaluated inside a transaction (``atomic()``; a dirty
read must not reach other requests), without a user, for a user whose cache
is off, and ``count()``/``exists()``/``aggregate()`` (only row lists are).
Rows are pickled and signed like every namespaced value.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.exceptions import EmptyResultSet
from django.db import connections, models, transaction
from django.db.models.sql.query import Query

from .serializers import BadSignature

logger = logging.getLogger("nscache.django")

_UNSET = object()


def _alias() -> str:
    return getattr(settings, "NSCACHE_QUERY_CACHE_ALIAS", "default")


def backend():
    """The NsCache backend the query cache uses (``NSCACHE_QUERY_CACHE_ALIAS``)."""
    return caches[_alias()]


# ---- tables read by a query ------------------------------------------------


def tables_of(query: Query) -> set[str]:
    """Every table ``query`` reads: base table, joins, subqueries."""
    tables: set[str] = set()
    seen: set[int] = set()

    def walk_query(q: Query) -> None:
        if id(q) in seen:
            return
        seen.add(id(q))
        for join in q.alias_map.values():
            name = getattr(join, "table_name", None)
            if name:
                tables.add(name)
            walk(getattr(join, "query", None))
        if q.model is not None and not q.alias_map:
            tables.add(q.model._meta.db_table)
        walk(q.where)
        for annotation in q.annotations.values():
            walk(annotation)
        for combined in getattr(q, "combined_queries", ()) or ():
            walk_query(combined)

    def walk(node: Any) -> None:
        if node is None or isinstance(node, (str, bytes, int, float, bool)):
            return
        if isinstance(node, models.QuerySet):
            walk_query(node.query)
            return
        if isinstance(node, Query):
            walk_query(node)
            return
        if isinstance(node, (list, tuple, set, frozenset)):
            for item in node:
                walk(item)
            return
        if id(node) in seen:
            return
        seen.add(id(node))
        inner = getattr(node, "query", None)
        if isinstance(inner, (Query, models.QuerySet)):
            walk(inner)
        for child in getattr(node, "children", ()) or ():
            walk(child)
        for side in ("lhs", "rhs"):
            walk(getattr(node, side, None))
        get_sources = getattr(node, "get_source_expressions", None)
        if callable(get_sources):
            try:
                sources = get_sources()
            except Exception:  # noqa: BLE001 - an expression that cannot list its sources
                sources = ()
            for source in sources:
                walk(source)

    walk_query(query)
    return tables


# ---- the watcher, lazily per process --------------------------------------

_watching: dict[str, int] = {}
_watching_lock = threading.Lock()


def ensure_watching(cache_backend) -> None:
    """Start the table watcher of ``OPTIONS["WATCH_TABLES_URL"]`` in this
    process (once per process; again in a forked child)."""
    url = getattr(cache_backend, "watch_tables_url", None)
    if not url:
        return
    pid = os.getpid()
    with _watching_lock:
        if _watching.get(url) == pid:
            return
        cache_backend.nscache.watch_tables(url)
        _watching[url] = pid


# ---- the queryset ------------------------------------------------------------


def _user_cache(user: Any):
    from .cache import UserCache
    from .middleware import BypassCache, current_user_cache, user_cache_for

    if user is None:
        found = current_user_cache.get()
        if found is None:
            return None
        # request.user_cache is a lazy object: resolve it.
        return getattr(found, "_wrapped", None) if _is_lazy(found) else found
    if isinstance(user, (UserCache, BypassCache)):
        return user
    if isinstance(user, (str, int)):
        cache = backend()
        return cache.for_user(user) if cache.cache_enabled(user) else BypassCache(str(user))
    return user_cache_for(user, _alias())


def _is_lazy(obj: Any) -> bool:
    from django.utils.functional import LazyObject, empty

    if isinstance(obj, LazyObject):
        if obj._wrapped is empty:
            obj._setup()
        return True
    return False


class CachedQuerySet(models.QuerySet):
    """A QuerySet with ``.cache()`` (see the module documentation)."""

    _nscache_options: tuple[Any, Any] | None = None

    def cache(self, timeout: Any = DEFAULT_TIMEOUT, *, user: Any = None) -> CachedQuerySet:
        """This queryset, its rows cached for ``timeout`` seconds (the cache's
        TIMEOUT by default) in the namespace of ``user`` (default: the
        request's user)."""
        clone = self._chain()
        clone._nscache_options = (timeout, user)
        return clone

    def nocache(self) -> CachedQuerySet:
        """This queryset, not cached."""
        clone = self._chain()
        clone._nscache_options = None
        return clone

    def _clone(self):
        clone = super()._clone()
        clone._nscache_options = self._nscache_options
        return clone

    def _fetch_all(self):
        if self._result_cache is None and self._nscache_options is not None:
            rows = self._cached_rows()
            if rows is not _UNSET:
                self._result_cache = rows
        super()._fetch_all()

    def cache_key_parts(self) -> tuple[str, bytes, list[str]] | None:
        """(query text, parameters, tables) of this queryset's cache entry;
        None when it cannot be cached (an always-empty query)."""
        try:
            sql, params = self.query.get_compiler(using=self.db).as_sql()
        except EmptyResultSet:
            return None
        iterable = self._iterable_class
        text = "\x1f".join([self.db, self.model._meta.label, f"{iterable.__module__}.{iterable.__qualname__}", sql])
        return text, repr(tuple(params)).encode("utf-8"), sorted(tables_of(self.query))

    def _cached_rows(self):
        timeout, user = self._nscache_options
        user_cache = _user_cache(user)
        if user_cache is None or not hasattr(user_cache, "keyspace"):
            return _UNSET  # no user, or a bypassed one
        if connections[self.db].in_atomic_block:
            return _UNSET
        ttl = user_cache._ttl(timeout)
        if ttl == 0:
            return _UNSET
        parts = self.cache_key_parts()
        if parts is None:
            return _UNSET
        text, params, tables = parts
        ensure_watching(user_cache.parent)
        # The signature binds the rows to this user and this query.
        sign_key = "query:" + hashlib.sha256(text.encode("utf-8") + b"\x00" + params).hexdigest()
        computed: list[list[Any]] = []

        def load() -> bytes:
            rows = list(self._iterable_class(self))
            computed.append(rows)
            return user_cache._dumps(rows, sign_key)

        raw = user_cache.keyspace.query(text, params, tables, load, ttl)
        if computed:
            return computed[0]
        try:
            return user_cache._loads(raw, sign_key)
        except BadSignature:
            return list(self._iterable_class(self))

    # Writes that send no post_save: invalidate their table themselves.

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        invalidate_tables_on_commit({self.model._meta.db_table}, self.db)
        return rows

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        invalidate_tables_on_commit(_model_tables(self.model), self.db)
        return created

    def bulk_update(self, objs, fields, batch_size=None):
        rows = super().bulk_update(objs, fields, batch_size=batch_size)
        invalidate_tables_on_commit(_model_tables(self.model), self.db)
        return rows


class CachedManager(models.Manager.from_queryset(CachedQuerySet)):
    """A manager whose querysets have ``.cache()``."""


# ---- invalidation --------------------------------------------------------------


def _model_tables(model) -> set[str]:
    tables = {model._meta.db_table}
    for parent in model._meta.get_parent_list():
        tables.add(parent._meta.db_table)
    return tables


def invalidate_tables(tables) -> None:
    """Invalidate every cached query over ``tables`` now, for all users."""
    cache = backend()
    for table in sorted(tables):
        try:
            cache.nscache.invalidate_table(table)
        except Exception:  # noqa: BLE001 - reported, never breaks the write that caused it
            logger.exception("nscache.django: could not invalidate the cached queries of %s", table)


def invalidate_tables_on_commit(tables, using: str | None = None) -> None:
    """Invalidate ``tables`` when the current transaction on ``using``
    commits (at once outside a transaction)."""
    tables = set(tables)
    transaction.on_commit(lambda: invalidate_tables(tables), using=using)


def _on_save_or_delete(sender, using=None, raw=False, **kwargs) -> None:
    if getattr(sender._meta, "proxy", False):
        sender = sender._meta.concrete_model
    invalidate_tables_on_commit(_model_tables(sender), using)


def _on_m2m_changed(sender, action, using=None, model=None, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        invalidate_tables_on_commit({sender._meta.db_table}, using)


def connect_signals() -> None:
    """Invalidate on Django's model signals (``AppConfig.ready`` calls it)."""
    from django.db.models.signals import m2m_changed, post_delete, post_save

    post_save.connect(_on_save_or_delete, dispatch_uid="nscache.django.post_save")
    post_delete.connect(_on_save_or_delete, dispatch_uid="nscache.django.post_delete")
    m2m_changed.connect(_on_m2m_changed, dispatch_uid="nscache.django.m2m_changed")
