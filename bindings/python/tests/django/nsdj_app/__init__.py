"""The Django app of nscache.django's tests (models for the query cache and
Django's model-instance cache tests)."""
