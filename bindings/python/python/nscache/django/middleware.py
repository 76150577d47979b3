"""``UserCacheMiddleware``: the signed-in user's namespaced cache on the request.

``request.user_cache`` is ``caches[NSCACHE_USER_CACHE_ALIAS]`` (``"default"``)
``.for_user(id)`` for a signed-in user whose ``cache_enabled`` flag is true;
otherwise (anonymous, or the flag is false) a :class:`BypassCache`: reads
miss, writes store nothing. The flag is nscache's (``OPTIONS["PROFILES_URL"]``:
the column the server and its admin UI toggle), read on the first use of
``request.user_cache`` in each request, so a toggle is seen by the next
request. ``request.user_cache_enabled`` tells which one it is.

Place it after ``AuthenticationMiddleware``. The user id is ``str(user.pk)``,
or what ``settings.NSCACHE_USER_ID`` (a callable or its dotted path, given the
user) returns.
"""

from __future__ import annotations

import contextvars
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

#: The request's user cache, for code without the request (the query cache).
current_user_cache: contextvars.ContextVar[Any] = contextvars.ContextVar("nscache_user_cache", default=None)


class BypassCache(DummyCache):
    """Django's dummy cache (reads miss, writes are no-ops), for users whose
    cache is off."""

    def __init__(self, user_id: str | None = None) -> None:
        super().__init__("", {})
        self.user_id = user_id

    def cache_enabled(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<BypassCache user={self.user_id!r}>"


def _user_id_function():
    func = getattr(settings, "NSCACHE_USER_ID", None)
    if func is None:
        return lambda user: str(user.pk)
    return import_string(func) if isinstance(func, str) else func


def user_cache_for(user: Any, alias: str | None = None):
    """The cache ``request.user_cache`` would be for ``user``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return BypassCache()
    backend = caches[alias or getattr(settings, "NSCACHE_USER_CACHE_ALIAS", "default")]
    user_id = _user_id_function()(user)
    if not backend.cache_enabled(user_id):
        return BypassCache(user_id)
    return backend.for_user(user_id)


class UserCacheMiddleware:
    """Attach ``request.user_cache`` (see the module documentation)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        resolved: list[Any] = []

        def resolve():
            if not resolved:
                resolved.append(user_cache_for(getattr(request, "user", None)))
            return resolved[0]

        request.user_cache = SimpleLazyObject(resolve)
        request.user_cache_enabled = SimpleLazyObject(lambda: not isinstance(resolve(), BypassCache))
        token = current_user_cache.set(request.user_cache)
        try:
            return self.get_response(request)
        finally:
            current_user_cache.reset(token)
