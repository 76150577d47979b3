"""Django on nscache: a ``CACHES`` backend, a per-user middleware and a
cacheops-style query cache.

- ``nscache.django.NsCache``: the cache backend (global keys compatible with
  django-redis; ``caches["default"].for_user(user_id)`` for a user's namespace).
- ``nscache.django.middleware.UserCacheMiddleware``: ``request.user_cache``.
- ``nscache.django.query.CachedQuerySet``: ``queryset.cache()``.

Add ``"nscache.django"`` to ``INSTALLED_APPS`` for the query cache's
invalidation by model signals.
"""

from .cache import NsCache, UserCache
from .serializers import BadSignature, bad_signatures

__all__ = ["BadSignature", "NsCache", "UserCache", "bad_signatures"]
