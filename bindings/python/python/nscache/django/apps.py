"""``INSTALLED_APPS += ["nscache.django"]``: the query cache's invalidation by
Django's model signals."""

from django.apps import AppConfig


class NsCacheConfig(AppConfig):
    """nscache's Django app."""

    name = "nscache.django"
    label = "nscache_django"
    verbose_name = "nscache"

    def ready(self) -> None:
        from .query import connect_signals

        connect_signals()
