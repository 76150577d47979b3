"""pytest + pytest-django set-up of nscache.django's tests.

Real services: Redis 127.0.0.1:6379 database 15 (keys under prefixes unique
to this run, removed at the end; never FLUSHDB), Postgres 127.0.0.1:5432
(pytest-django's test database, plus a database of the nscache server's own
for the cross-host tests). ``NSCACHE_TEST_REDIS_URL`` / ``NSCACHE_TEST_PG``
(``host:port:user``) override them.
"""

from __future__ import annotations

import os
import secrets
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

REDIS_URL = os.environ.get("NSCACHE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_HOST, PG_PORT, PG_USER = os.environ.get("NSCACHE_TEST_PG", "127.0.0.1:5432:postgres").split(":")

# Unique per run: two runs (or CI and a developer) never see each other's keys.
RUN = f"{os.getpid()}{secrets.token_hex(3)}"
PREFIX = f"djt{RUN}"
OTHER_PREFIX = f"djp{RUN}"
ROOT = f"djr{RUN}"
PATTERNS = [f"{PREFIX}*", f"{OTHER_PREFIX}*", f"{ROOT}*"]
# The nscache server's own database (accounts, tokens, users' cache flags).
SERVER_DB = f"nsdjsrv_{RUN}"
SERVER_DB_URL = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{SERVER_DB}"


def nscache_options(**extra):
    return {"NAMESPACE_ROOT": ROOT, **extra}


def caches_setting():
    base = {
        "BACKEND": "nscache.django.NsCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": PREFIX,
        "OPTIONS": nscache_options(),
    }
    return {
        "default": dict(base),
        # The variants of Django's own cache tests (tests/cache/tests.py).
        "prefix": dict(base, KEY_PREFIX=OTHER_PREFIX),
        "v2": dict(base, VERSION=2),
        "custom_key": dict(base, KEY_FUNCTION="nsdj_app.keys.custom_key_func"),
        "custom_key2": dict(base, KEY_FUNCTION="nsdj_app.keys.custom_key_func"),
        # Users' cache_enabled flags from the nscache server's database.
        "profiled": dict(base, OPTIONS=nscache_options(PROFILES_URL=SERVER_DB_URL)),
        # django-redis on the same Redis and KEY_PREFIX: the interoperability tests.
        "django_redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": PREFIX,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        },
    }


def pytest_configure(config):
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        SECRET_KEY="nscache-django-tests-" + secrets.token_hex(16),
        DEBUG=False,
        USE_TZ=True,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "nscache.django",
            "nsdj_app",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "nscache.django.middleware.UserCacheMiddleware",
        ],
        ROOT_URLCONF="nsdj_app.urls",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "nscache_django",
                "USER": PG_USER,
                "HOST": PG_HOST,
                "PORT": PG_PORT,
            }
        },
        CACHES=caches_setting(),
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    import django

    # pytest-django sets Django up itself when this conftest is an initial one
    # (`pytest tests/django`); from a parent directory it is loaded later.
    django.setup()


def _redis():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def delete_matching(patterns):
    """Remove this run's keys (test clean-up only: SCAN, never FLUSHDB)."""
    client = _redis()
    for pattern in patterns:
        batch = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i : i + 500])


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_at_the_end():
    yield
    delete_matching(PATTERNS)


@pytest.fixture
def redis_client():
    return _redis()


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def server():
    """``nscache serve`` on this run's Redis prefix/root and its own Postgres
    database, with accounts: ``alice`` (user 4242), ``bob`` (user 4343), an
    admin and a service; ``server.tokens[name]`` are their API tokens."""
    from nsserver import NsServer

    _pg_admin(f'CREATE DATABASE "{SERVER_DB}"')
    srv = NsServer(REDIS_URL, PREFIX, ROOT, SERVER_DB_URL)
    try:
        srv.cli("migrate")
        srv.tokens = {
            "alice": srv.add_account("alice", user_id="4242"),
            "bob": srv.add_account("bob", user_id="4343"),
            "admin": srv.add_account("admin", "--admin", user_id="1"),
            "service": srv.add_account("service", "--service"),
        }
        srv.start()
        yield srv
    finally:
        srv.stop()
        from django.core.cache import caches

        # Let go of pooled connections to the server's database before dropping it.
        caches["profiled"].nscache.close()
        _pg_admin(f'DROP DATABASE IF EXISTS "{SERVER_DB}" WITH (FORCE)')
