"""OPTIONS and the failure policy: settings errors are reported at once, and
with Redis unreachable reads degrade to misses, plain writes are skipped, and
what cannot degrade (add, incr, locks, invalidation) raises."""

from __future__ import annotations

import time

import nscache
import pytest
from conftest import PREFIX, REDIS_URL, nscache_options
from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheKey
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from nscache.django import NsCache
from nsserver import free_port


def backend(**params):
    params.setdefault("KEY_PREFIX", PREFIX)
    return NsCache(params.pop("LOCATION", REDIS_URL), params)


def test_unknown_options_are_refused():
    with pytest.raises(ImproperlyConfigured, match="CLIENT_CLASS"):
        backend(OPTIONS={"CLIENT_CLASS": "django_redis.client.DefaultClient"})


def test_degrade_on_failure_false_is_refused_with_the_reason():
    with pytest.raises(ImproperlyConfigured, match="failure policy"):
        backend(OPTIONS={"DEGRADE_ON_FAILURE": False})


@pytest.mark.parametrize("prefix", ["", "a:b", "with space"])
def test_a_key_prefix_nscache_cannot_lay_out_is_refused(prefix):
    with pytest.raises(ImproperlyConfigured, match="KEY_PREFIX"):
        backend(KEY_PREFIX=prefix, OPTIONS=nscache_options())


def test_django_redis_pool_option_and_l1_work():
    cache = backend(
        OPTIONS=nscache_options(CONNECTION_POOL_KWARGS={"max_connections": 4}, L1=True, L1_TTL=1, SOCKET_TIMEOUT=2)
    )
    cache.set("opts:l1", {"a": 1}, 60)
    assert cache.get("opts:l1") == {"a": 1}
    assert cache.get("opts:l1") == {"a": 1}
    # Another process's (here: another configuration's) write is seen
    # within L1_TTL.
    caches["default"].set("opts:l1", "changed", 60)
    deadline = time.monotonic() + 3
    while cache.get("opts:l1") != "changed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.get("opts:l1") == "changed"


def test_limits_are_clear_errors():
    cache = caches["default"]
    with pytest.raises(nscache.ValueTooLarge):
        cache.set("opts:big", "x" * (2 * 1024 * 1024))
    assert cache.get("opts:big") is None
    with pytest.warns(Warning):
        with pytest.raises(InvalidCacheKey):
            cache.get("k" * 2000)


def test_with_redis_unreachable_reads_miss_and_writes_are_skipped():
    dead = f"redis://127.0.0.1:{free_port()}/15"
    cache = backend(LOCATION=dead, OPTIONS=nscache_options(SOCKET_CONNECT_TIMEOUT=0.2, SOCKET_TIMEOUT=0.2))
    user = cache.for_user("4242")
    for c in (cache, user):
        assert c.get("k", "default") == "default"
        assert c.get_many(["k", "j"]) == {}
        c.set("k", "v")  # skipped, no exception
        c.set_many({"k": 1})
        with pytest.raises(nscache.Unavailable):
            c.add("k", "v")
        with pytest.raises(nscache.Unavailable):
            c.incr("k")
    with pytest.raises(nscache.Unavailable):
        cache.lock("cron:x", 10)
    with pytest.raises(nscache.Unavailable):
        user.clear()


@override_settings(
    CACHES={"default": {"BACKEND": "nscache.django.NsCache", "LOCATION": "memory://", "KEY_PREFIX": "mem"}}
)
def test_the_embedded_memory_store():
    cache = caches["default"]
    cache.set("k", [1, 2], 60)
    assert cache.get("k") == [1, 2]
    assert cache.for_user(1).get("k") is None


def test_a_backend_used_before_fork_works_in_parent_and_child():
    """Pre-forking servers: the parent's backend (and its nscache.Cache) keeps
    working in the parent and in the child; 1,000 interleaved operations on
    the same keys come out exact."""
    import os

    cache = caches["default"]
    user = cache.for_user("fork-user")
    cache.set("fork:n", 0, 60)
    user.set("seen", "parent", 60)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        ok = b"0"
        try:
            assert user.get("seen") == "parent"
            for i in range(250):
                cache.incr("fork:n")
                user.set(f"c{i}", i, 60)
            ok = b"1"
        finally:
            os.write(write, ok)
            os._exit(0)
    os.close(write)
    for i in range(250):
        cache.incr("fork:n")
        user.set(f"p{i}", i, 60)
    assert os.read(read, 1) == b"1"
    os.close(read)
    os.waitpid(pid, 0)
    assert cache.get("fork:n") == 500
    assert user.get_many([f"c{i}" for i in range(250)]) == {f"c{i}": i for i in range(250)}
    assert user.get_many([f"p{i}" for i in range(250)]) == {f"p{i}": i for i in range(250)}
    user.clear()
