"""Views of the middleware tests."""

from django.http import JsonResponse


def user_cache_view(request):
    """Counts the signed-in user's visits in ``request.user_cache``."""
    cache = request.user_cache
    cache.add("visits", 0)
    try:
        visits = cache.incr("visits")
    except ValueError:  # a bypassed cache stores nothing
        visits = None
    return JsonResponse(
        {
            "enabled": bool(request.user_cache_enabled),
            "cache": type(cache._wrapped).__name__ if hasattr(cache, "_wrapped") else type(cache).__name__,
            "visits": visits,
            "note": cache.get("note"),
        }
    )
