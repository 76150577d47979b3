"""Django's cache backend contract, in the global keyspace and inside a user's
namespace.

Ported from Django 5.2's ``tests/cache/tests.py`` (``BaseCacheTests``,
Copyright (c) Django Software Foundation and individual contributors, BSD-3-Clause):
every test that applies to a shared-store backend, each run twice through the
``space`` fixture: ``caches[alias]`` (global keys) and
``caches[alias].for_user(uid)`` (a user's namespace). The assertions are
Django's; ``self.assert*`` became ``assert``.

Left out, as Django leaves them out for its own Redis backend: the culling
tests (``MAX_ENTRIES``: Redis evicts by itself), the Redis-client internals
(``test_get_connection_pool*``, ``test_serializer_dumps`` ...). ``clear()``
differs on the global keyspace (it never flushes: see ``test_clear``).
"""

from __future__ import annotations

import pickle
import time
from unittest import mock

import nscache.django
import pytest
from django.core.cache import CacheKeyWarning, caches
from django.http import HttpResponse
from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware
from django.test import RequestFactory, override_settings


# functions/classes for complex data type tests (Django's)
def f():
    return 42


class C:
    def m(n):
        return 24


class Unpicklable:
    def __getstate__(self):
        raise pickle.PickleError()


def empty_response(request):
    return HttpResponse()


def retry(retries=3, delay=1):
    """Django's: retry a timing-sensitive test (a loaded machine)."""
    import functools

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            attempt = 0
            while True:
                try:
                    return func(*args, **kwargs)
                except AssertionError:
                    attempt += 1
                    if attempt >= retries:
                        raise
                    time.sleep(delay)

        return wrapper

    return decorator


KEY_ERRORS_WITH_MEMCACHED_MSG = "Cache key contains characters that will cause errors if used with memcached: %r"

_uid_counter = iter(range(1, 10**9))


class Space:
    """The caches of one test: global, or the namespace of a fresh user."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.uid = f"u{next(_uid_counter)}-{time.monotonic_ns()}"

    def __getitem__(self, alias: str):
        cache = caches[alias]
        return cache if self.kind == "global" else cache.for_user(self.uid)

    @property
    def default(self):
        return self["default"]


@pytest.fixture(params=["global", "user"])
def space(request):
    s = Space(request.param)
    yield s
    # Django's tearDown is cache.clear(); the global keyspace is never
    # flushed, so its keys are removed at the end of the session instead
    # (conftest), and each test uses its own namespace.
    if s.kind == "user":
        s.default.clear()


@pytest.fixture
def cache(space):
    return space.default


@pytest.fixture
def unique(space, request):
    """Global keys are shared by the tests of a run: give each test its own."""
    name = request.node.name

    def key(k: str) -> str:
        return f"{name}:{k}" if space.kind == "global" else k

    return key


def test_backend_is_nscache(cache, space):
    expected = nscache.django.NsCache if space.kind == "global" else nscache.django.UserCache
    assert isinstance(cache, expected)


def test_simple(cache, unique):
    cache.set(unique("key"), "value")
    assert cache.get(unique("key")) == "value"


def test_default_used_when_none_is_set(cache, unique):
    """If None is cached, get() returns it instead of the default."""
    cache.set(unique("key_default_none"), None)
    assert cache.get(unique("key_default_none"), default="default") is None


def test_add(cache, unique):
    assert cache.add(unique("addkey1"), "value") is True
    assert cache.add(unique("addkey1"), "newvalue") is False
    assert cache.get(unique("addkey1")) == "value"


def test_prefix(cache, space, unique):
    # Test for same cache key conflicts between shared backend
    cache.set(unique("somekey"), "value")
    # should not be set in the prefixed cache
    assert space["prefix"].has_key(unique("somekey")) is False
    space["prefix"].set(unique("somekey"), "value2")
    assert cache.get(unique("somekey")) == "value"
    assert space["prefix"].get(unique("somekey")) == "value2"


def test_non_existent(cache, unique):
    """Nonexistent cache keys return as None/default."""
    assert cache.get(unique("does_not_exist")) is None
    assert cache.get(unique("does_not_exist"), "bang!") == "bang!"


def test_get_many(cache, unique):
    u = unique
    cache.set_many({u("a"): "a", u("b"): "b", u("c"): "c", u("d"): "d"})
    assert cache.get_many([u("a"), u("c"), u("d")]) == {u("a"): "a", u("c"): "c", u("d"): "d"}
    assert cache.get_many([u("a"), u("b"), u("e")]) == {u("a"): "a", u("b"): "b"}
    assert cache.get_many(iter([u("a"), u("b"), u("e")])) == {u("a"): "a", u("b"): "b"}
    cache.set_many({u("x"): None, u("y"): 1})
    assert cache.get_many([u("x"), u("y")]) == {u("x"): None, u("y"): 1}


def test_delete(cache, unique):
    u = unique
    cache.set_many({u("key1"): "spam", u("key2"): "eggs"})
    assert cache.get(u("key1")) == "spam"
    assert cache.delete(u("key1")) is True
    assert cache.get(u("key1")) is None
    assert cache.get(u("key2")) == "eggs"


def test_delete_nonexistent(cache, unique):
    assert cache.delete(unique("nonexistent_key")) is False


def test_has_key(cache, unique):
    u = unique
    cache.set(u("hello1"), "goodbye1")
    assert cache.has_key(u("hello1")) is True
    assert cache.has_key(u("goodbye1")) is False
    cache.set(u("no_expiry"), "here", None)
    assert cache.has_key(u("no_expiry")) is True
    cache.set(u("null"), None)
    assert cache.has_key(u("null")) is True


def test_in(cache, unique):
    u = unique
    cache.set(u("hello2"), "goodbye2")
    assert u("hello2") in cache
    assert u("goodbye2") not in cache
    cache.set(u("null"), None)
    assert u("null") in cache


def test_incr(cache, unique):
    u = unique
    cache.set(u("answer"), 41)
    assert cache.incr(u("answer")) == 42
    assert cache.get(u("answer")) == 42
    assert cache.incr(u("answer"), 10) == 52
    assert cache.get(u("answer")) == 52
    assert cache.incr(u("answer"), -10) == 42
    with pytest.raises(ValueError):
        cache.incr(u("does_not_exist"))
    with pytest.raises(ValueError):
        cache.incr(u("does_not_exist"), -1)
    cache.set(u("null"), None)
    with pytest.raises(TypeError):
        cache.incr(u("null"))


def test_decr(cache, unique):
    u = unique
    cache.set(u("answer"), 43)
    assert cache.decr(u("answer")) == 42
    assert cache.get(u("answer")) == 42
    assert cache.decr(u("answer"), 10) == 32
    assert cache.get(u("answer")) == 32
    assert cache.decr(u("answer"), -10) == 42
    with pytest.raises(ValueError):
        cache.decr(u("does_not_exist"))
    with pytest.raises(ValueError):
        cache.incr(u("does_not_exist"), -1)
    cache.set(u("null"), None)
    with pytest.raises(TypeError):
        cache.decr(u("null"))


def test_close(cache):
    assert hasattr(cache, "close")
    cache.close()


def test_data_types(cache, unique):
    tests = {
        "string": "this is a string",
        "int": 42,
        "bool": True,
        "list": [1, 2, 3, 4],
        "tuple": (1, 2, 3, 4),
        "dict": {"A": 1, "B": 2},
        "function": f,
        "class": C,
    }
    for key, value in tests.items():
        cache.set(unique(key), value)
        got = cache.get(unique(key))
        assert got == value, key
        assert type(got) is type(value), key


@pytest.mark.django_db
def test_cache_read_for_model_instance(cache, unique):
    from nsdj_app.models import Poll, expensive_calculation

    # Don't want fields with callable as default to be called on cache read
    expensive_calculation.num_runs = 0
    Poll.objects.all().delete()
    my_poll = Poll.objects.create(question="Well?")
    assert Poll.objects.count() == 1
    pub_date = my_poll.pub_date
    cache.set(unique("question"), my_poll)
    cached_poll = cache.get(unique("question"))
    assert cached_poll.pub_date == pub_date
    # We only want the default expensive calculation run once
    assert expensive_calculation.num_runs == 1


@pytest.mark.django_db
def test_cache_write_for_model_instance_with_deferred(cache, unique):
    from nsdj_app.models import Poll, expensive_calculation

    expensive_calculation.num_runs = 0
    Poll.objects.all().delete()
    Poll.objects.create(question="What?")
    assert expensive_calculation.num_runs == 1
    defer_qs = Poll.objects.defer("question")
    assert defer_qs.count() == 1
    assert expensive_calculation.num_runs == 1
    cache.set(unique("deferred_queryset"), defer_qs)
    # cache set should not re-evaluate default functions
    assert expensive_calculation.num_runs == 1


@pytest.mark.django_db
def test_cache_read_for_model_instance_with_deferred(cache, unique):
    from nsdj_app.models import Poll, expensive_calculation

    expensive_calculation.num_runs = 0
    Poll.objects.all().delete()
    Poll.objects.create(question="What?")
    assert expensive_calculation.num_runs == 1
    defer_qs = Poll.objects.defer("question")
    assert defer_qs.count() == 1
    cache.set(unique("deferred_queryset"), defer_qs)
    assert expensive_calculation.num_runs == 1
    runs_before_cache_read = expensive_calculation.num_runs
    cache.get(unique("deferred_queryset"))
    # We only want the default expensive calculation run on creation and set
    assert expensive_calculation.num_runs == runs_before_cache_read


def test_expiration(cache, unique):
    u = unique
    cache.set(u("expire1"), "very quickly", 1)
    cache.set(u("expire2"), "very quickly", 1)
    cache.set(u("expire3"), "very quickly", 1)
    time.sleep(2)
    assert cache.get(u("expire1")) is None
    assert cache.add(u("expire2"), "newvalue") is True
    assert cache.get(u("expire2")) == "newvalue"
    assert cache.has_key(u("expire3")) is False


@retry()
def test_touch(cache, unique):
    u = unique
    # cache.touch() updates the timeout.
    cache.set(u("expire1"), "very quickly", timeout=1)
    assert cache.touch(u("expire1"), timeout=4) is True
    time.sleep(2)
    assert cache.has_key(u("expire1")) is True
    time.sleep(3)
    assert cache.has_key(u("expire1")) is False
    # cache.touch() works without the timeout argument.
    cache.set(u("expire1"), "very quickly", timeout=1)
    assert cache.touch(u("expire1")) is True
    time.sleep(2)
    assert cache.has_key(u("expire1")) is True
    assert cache.touch(u("nonexistent")) is False


def test_unicode(cache, unique):
    stuff = {
        "ascii": "ascii_value",
        "unicode_ascii": "Iñtërnâtiônàlizætiøn1",
        "Iñtërnâtiônàlizætiøn": "Iñtërnâtiônàlizætiøn2",
        "ascii2": {"x": 1},
    }
    stuff = {unique(k): v for k, v in stuff.items()}
    # Test `set`
    for key, value in stuff.items():
        cache.set(key, value)
        assert cache.get(key) == value
    # Test `add`
    for key, value in stuff.items():
        assert cache.delete(key) is True
        assert cache.add(key, value) is True
        assert cache.get(key) == value
    # Test `set_many`
    for key in stuff:
        assert cache.delete(key) is True
    cache.set_many(stuff)
    for key, value in stuff.items():
        assert cache.get(key) == value


def test_binary_string(cache, unique):
    from zlib import compress, decompress

    value = "value_to_be_compressed"
    compressed_value = compress(value.encode())
    # Test set
    cache.set(unique("binary1"), compressed_value)
    compressed_result = cache.get(unique("binary1"))
    assert compressed_value == compressed_result
    assert value == decompress(compressed_result).decode()
    # Test add
    assert cache.add(unique("binary1-add"), compressed_value) is True
    compressed_result = cache.get(unique("binary1-add"))
    assert compressed_value == compressed_result
    assert value == decompress(compressed_result).decode()
    # Test set_many
    cache.set_many({unique("binary1-set_many"): compressed_value})
    compressed_result = cache.get(unique("binary1-set_many"))
    assert compressed_value == compressed_result
    assert value == decompress(compressed_result).decode()


def test_set_many(cache, unique):
    cache.set_many({unique("key1"): "spam", unique("key2"): "eggs"})
    assert cache.get(unique("key1")) == "spam"
    assert cache.get(unique("key2")) == "eggs"


def test_set_many_returns_empty_list_on_success(cache, unique):
    """set_many() returns an empty list when all keys are inserted."""
    assert cache.set_many({unique("key1"): "spam", unique("key2"): "eggs"}) == []


def test_set_many_expiration(cache, unique):
    cache.set_many({unique("key1"): "spam", unique("key2"): "eggs"}, 1)
    time.sleep(2)
    assert cache.get(unique("key1")) is None
    assert cache.get(unique("key2")) is None


def test_set_many_empty_data(cache):
    assert cache.set_many({}) == []


def test_delete_many(cache, unique):
    u = unique
    cache.set_many({u("key1"): "spam", u("key2"): "eggs", u("key3"): "ham"})
    cache.delete_many([u("key1"), u("key2")])
    assert cache.get(u("key1")) is None
    assert cache.get(u("key2")) is None
    assert cache.get(u("key3")) == "ham"


def test_delete_many_no_keys(cache):
    assert cache.delete_many([]) is None


def test_clear(cache, space, unique):
    cache.set_many({unique("key1"): "spam", unique("key2"): "eggs"})
    if space.kind == "user":
        # Django's test, as is: clear() empties the namespace (in O(1)).
        cache.clear()
        assert cache.get(unique("key1")) is None
        assert cache.get(unique("key2")) is None
    else:
        # The global keyspace is never flushed (it shares its Redis database
        # with django-redis deployments, other apps): clear() hides every
        # user namespace at once and keeps global keys.
        user = caches["default"].for_user(space.uid + "-clear")
        user.set("k", "v")
        cache.clear()
        assert user.get("k") is None
        assert cache.get(unique("key1")) == "spam"


def test_long_timeout(cache, unique):
    """A timeout over 30 days is a relative one too (memcached's rule, #12399)."""
    cache.set(unique("key1"), "eggs", 60 * 60 * 24 * 30 + 1)  # 30 days + 1 second
    assert cache.get(unique("key1")) == "eggs"
    assert cache.add(unique("key2"), "ham", 60 * 60 * 24 * 30 + 1) is True
    assert cache.get(unique("key2")) == "ham"
    cache.set_many({unique("key3"): "sausage", unique("key4"): "lobster bisque"}, 60 * 60 * 24 * 30 + 1)
    assert cache.get(unique("key3")) == "sausage"
    assert cache.get(unique("key4")) == "lobster bisque"


@retry()
def test_forever_timeout(cache, unique):
    """Passing in None into timeout results in a value that is cached forever"""
    u = unique
    cache.set(u("key1"), "eggs", None)
    assert cache.get(u("key1")) == "eggs"
    assert cache.add(u("key2"), "ham", None) is True
    assert cache.get(u("key2")) == "ham"
    assert cache.add(u("key1"), "new eggs", None) is False
    assert cache.get(u("key1")) == "eggs"
    cache.set_many({u("key3"): "sausage", u("key4"): "lobster bisque"}, None)
    assert cache.get(u("key3")) == "sausage"
    assert cache.get(u("key4")) == "lobster bisque"
    cache.set(u("key5"), "belgian fries", timeout=1)
    assert cache.touch(u("key5"), timeout=None) is True
    time.sleep(2)
    assert cache.get(u("key5")) == "belgian fries"


def test_zero_timeout(cache, unique):
    """Passing in zero into timeout results in a value that is not cached"""
    u = unique
    cache.set(u("key1"), "eggs", 0)
    assert cache.get(u("key1")) is None
    assert cache.add(u("key2"), "ham", 0) is True
    assert cache.get(u("key2")) is None
    cache.set_many({u("key3"): "sausage", u("key4"): "lobster bisque"}, 0)
    assert cache.get(u("key3")) is None
    assert cache.get(u("key4")) is None
    cache.set(u("key5"), "belgian fries", timeout=5)
    assert cache.touch(u("key5"), timeout=0) is True
    assert cache.get(u("key5")) is None


def test_negative_timeout_expires_at_once(cache, unique):
    # Django's semantics (get_backend_timeout): a negative timeout expires at once.
    cache.set(unique("neg"), "old")
    cache.set(unique("neg"), "new", -5)
    assert cache.get(unique("neg")) is None


def test_float_timeout(cache, unique):
    # Make sure a timeout given as a float doesn't crash anything.
    cache.set(unique("key1"), "spam", 100.2)
    assert cache.get(unique("key1")) == "spam"


def _perform_invalid_key_test(cache, key, expected_warning, key_func=None):
    """All the builtin backends should warn on keys that would be refused by
    memcached (Django's helper, as is)."""

    def func(key, *args):
        return key

    old_func = cache.key_func
    cache.key_func = key_func or func
    tests = [
        ("add", [key, 1]),
        ("get", [key]),
        ("set", [key, 1]),
        ("incr", [key]),
        ("decr", [key]),
        ("touch", [key]),
        ("delete", [key]),
        ("get_many", [[key, "b"]]),
        ("set_many", [{key: 1, "b": 2}]),
        ("delete_many", [[key, "b"]]),
    ]
    try:
        for operation, args in tests:
            with pytest.warns(CacheKeyWarning) as record:
                getattr(cache, operation)(*args)
            assert str(record[0].message) == expected_warning, operation
    finally:
        cache.key_func = old_func


def test_invalid_key_characters(cache, unique):
    # memcached doesn't allow whitespace or control characters in keys.
    key = unique("key with spaces and 清")
    _perform_invalid_key_test(cache, key, KEY_ERRORS_WITH_MEMCACHED_MSG % key)


def test_invalid_key_length(cache, space):
    # memcached limits key length to 250.
    key = ("a" * 250) + "清" + (space.uid if space.kind == "global" else "")
    expected_warning = "Cache key will cause errors if used with memcached: %r (longer than %s)" % (key, 250)
    _perform_invalid_key_test(cache, key, expected_warning)


def test_invalid_with_version_key_length(cache, space):
    # Custom make_key() that adds a version to the key and exceeds the limit.
    def key_func(key, *args):
        return key + ":1"

    key = "a" * 249 + (space.uid if space.kind == "global" else "")
    expected_warning = "Cache key will cause errors if used with memcached: %r (longer than %s)" % (
        key_func(key),
        250,
    )
    _perform_invalid_key_test(cache, key, expected_warning, key_func=key_func)


def test_cache_versioning_get_set(cache, space, unique):
    u = unique
    v2 = space["v2"]
    # set, using default version = 1
    cache.set(u("answer1"), 42)
    assert cache.get(u("answer1")) == 42
    assert cache.get(u("answer1"), version=1) == 42
    assert cache.get(u("answer1"), version=2) is None
    assert v2.get(u("answer1")) is None
    assert v2.get(u("answer1"), version=1) == 42
    assert v2.get(u("answer1"), version=2) is None
    # set, default version = 1, but manually override version = 2
    cache.set(u("answer2"), 42, version=2)
    assert cache.get(u("answer2")) is None
    assert cache.get(u("answer2"), version=1) is None
    assert cache.get(u("answer2"), version=2) == 42
    assert v2.get(u("answer2")) == 42
    assert v2.get(u("answer2"), version=1) is None
    assert v2.get(u("answer2"), version=2) == 42
    # v2 set, using default version = 2
    v2.set(u("answer3"), 42)
    assert cache.get(u("answer3")) is None
    assert cache.get(u("answer3"), version=1) is None
    assert cache.get(u("answer3"), version=2) == 42
    assert v2.get(u("answer3")) == 42
    assert v2.get(u("answer3"), version=1) is None
    assert v2.get(u("answer3"), version=2) == 42
    # v2 set, default version = 2, but manually override version = 1
    v2.set(u("answer4"), 42, version=1)
    assert cache.get(u("answer4")) == 42
    assert cache.get(u("answer4"), version=1) == 42
    assert cache.get(u("answer4"), version=2) is None
    assert v2.get(u("answer4")) is None
    assert v2.get(u("answer4"), version=1) == 42
    assert v2.get(u("answer4"), version=2) is None


def test_cache_versioning_add(cache, space, unique):
    u = unique
    v2 = space["v2"]
    # add, default version = 1, but manually override version = 2
    assert cache.add(u("answer1"), 42, version=2) is True
    assert cache.get(u("answer1"), version=1) is None
    assert cache.get(u("answer1"), version=2) == 42
    assert cache.add(u("answer1"), 37, version=2) is False
    assert cache.get(u("answer1"), version=1) is None
    assert cache.get(u("answer1"), version=2) == 42
    assert cache.add(u("answer1"), 37, version=1) is True
    assert cache.get(u("answer1"), version=1) == 37
    assert cache.get(u("answer1"), version=2) == 42
    # v2 add, using default version = 2
    assert v2.add(u("answer2"), 42) is True
    assert cache.get(u("answer2"), version=1) is None
    assert cache.get(u("answer2"), version=2) == 42
    assert v2.add(u("answer2"), 37) is False
    assert cache.get(u("answer2"), version=1) is None
    assert cache.get(u("answer2"), version=2) == 42
    assert v2.add(u("answer2"), 37, version=1) is True
    assert cache.get(u("answer2"), version=1) == 37
    assert cache.get(u("answer2"), version=2) == 42
    # v2 add, default version = 2, but manually override version = 1
    assert v2.add(u("answer3"), 42, version=1) is True
    assert cache.get(u("answer3"), version=1) == 42
    assert cache.get(u("answer3"), version=2) is None
    assert v2.add(u("answer3"), 37, version=1) is False
    assert cache.get(u("answer3"), version=1) == 42
    assert cache.get(u("answer3"), version=2) is None
    assert v2.add(u("answer3"), 37) is True
    assert cache.get(u("answer3"), version=1) == 42
    assert cache.get(u("answer3"), version=2) == 37


def test_cache_versioning_has_key(cache, space, unique):
    u = unique
    v2 = space["v2"]
    cache.set(u("answer1"), 42)
    assert cache.has_key(u("answer1")) is True
    assert cache.has_key(u("answer1"), version=1) is True
    assert cache.has_key(u("answer1"), version=2) is False
    assert v2.has_key(u("answer1")) is False
    assert v2.has_key(u("answer1"), version=1) is True
    assert v2.has_key(u("answer1"), version=2) is False


def test_cache_versioning_delete(cache, space, unique):
    u = unique
    v2 = space["v2"]
    cache.set(u("answer1"), 37, version=1)
    cache.set(u("answer1"), 42, version=2)
    assert cache.delete(u("answer1")) is True
    assert cache.get(u("answer1"), version=1) is None
    assert cache.get(u("answer1"), version=2) == 42
    cache.set(u("answer2"), 37, version=1)
    cache.set(u("answer2"), 42, version=2)
    assert cache.delete(u("answer2"), version=2) is True
    assert cache.get(u("answer2"), version=1) == 37
    assert cache.get(u("answer2"), version=2) is None
    cache.set(u("answer3"), 37, version=1)
    cache.set(u("answer3"), 42, version=2)
    assert v2.delete(u("answer3")) is True
    assert cache.get(u("answer3"), version=1) == 37
    assert cache.get(u("answer3"), version=2) is None
    cache.set(u("answer4"), 37, version=1)
    cache.set(u("answer4"), 42, version=2)
    assert v2.delete(u("answer4"), version=1) is True
    assert cache.get(u("answer4"), version=1) is None
    assert cache.get(u("answer4"), version=2) == 42


def test_cache_versioning_incr_decr(cache, space, unique):
    u = unique
    v2 = space["v2"]
    cache.set(u("answer1"), 37, version=1)
    cache.set(u("answer1"), 42, version=2)
    assert cache.incr(u("answer1")) == 38
    assert cache.get(u("answer1"), version=1) == 38
    assert cache.get(u("answer1"), version=2) == 42
    assert cache.decr(u("answer1")) == 37
    assert cache.get(u("answer1"), version=1) == 37
    assert cache.get(u("answer1"), version=2) == 42
    cache.set(u("answer2"), 37, version=1)
    cache.set(u("answer2"), 42, version=2)
    assert cache.incr(u("answer2"), version=2) == 43
    assert cache.get(u("answer2"), version=1) == 37
    assert cache.get(u("answer2"), version=2) == 43
    assert cache.decr(u("answer2"), version=2) == 42
    assert cache.get(u("answer2"), version=1) == 37
    assert cache.get(u("answer2"), version=2) == 42
    cache.set(u("answer3"), 37, version=1)
    cache.set(u("answer3"), 42, version=2)
    assert v2.incr(u("answer3")) == 43
    assert cache.get(u("answer3"), version=1) == 37
    assert cache.get(u("answer3"), version=2) == 43
    assert v2.decr(u("answer3")) == 42
    assert cache.get(u("answer3"), version=1) == 37
    assert cache.get(u("answer3"), version=2) == 42
    cache.set(u("answer4"), 37, version=1)
    cache.set(u("answer4"), 42, version=2)
    assert v2.incr(u("answer4"), version=1) == 38
    assert cache.get(u("answer4"), version=1) == 38
    assert cache.get(u("answer4"), version=2) == 42
    assert v2.decr(u("answer4"), version=1) == 37
    assert cache.get(u("answer4"), version=1) == 37
    assert cache.get(u("answer4"), version=2) == 42


def test_cache_versioning_get_set_many(cache, space, unique):
    u = unique
    v2 = space["v2"]
    f1, a1 = u("ford1"), u("arthur1")
    cache.set_many({f1: 37, a1: 42})
    assert cache.get_many([f1, a1]) == {f1: 37, a1: 42}
    assert cache.get_many([f1, a1], version=1) == {f1: 37, a1: 42}
    assert cache.get_many([f1, a1], version=2) == {}
    assert v2.get_many([f1, a1]) == {}
    assert v2.get_many([f1, a1], version=1) == {f1: 37, a1: 42}
    assert v2.get_many([f1, a1], version=2) == {}
    f2, a2 = u("ford2"), u("arthur2")
    cache.set_many({f2: 37, a2: 42}, version=2)
    assert cache.get_many([f2, a2]) == {}
    assert cache.get_many([f2, a2], version=1) == {}
    assert cache.get_many([f2, a2], version=2) == {f2: 37, a2: 42}
    assert v2.get_many([f2, a2]) == {f2: 37, a2: 42}
    assert v2.get_many([f2, a2], version=1) == {}
    assert v2.get_many([f2, a2], version=2) == {f2: 37, a2: 42}
    f3, a3 = u("ford3"), u("arthur3")
    v2.set_many({f3: 37, a3: 42})
    assert cache.get_many([f3, a3]) == {}
    assert cache.get_many([f3, a3], version=1) == {}
    assert cache.get_many([f3, a3], version=2) == {f3: 37, a3: 42}
    assert v2.get_many([f3, a3]) == {f3: 37, a3: 42}
    assert v2.get_many([f3, a3], version=1) == {}
    assert v2.get_many([f3, a3], version=2) == {f3: 37, a3: 42}
    f4, a4 = u("ford4"), u("arthur4")
    v2.set_many({f4: 37, a4: 42}, version=1)
    assert cache.get_many([f4, a4]) == {f4: 37, a4: 42}
    assert cache.get_many([f4, a4], version=1) == {f4: 37, a4: 42}
    assert cache.get_many([f4, a4], version=2) == {}
    assert v2.get_many([f4, a4]) == {}
    assert v2.get_many([f4, a4], version=1) == {f4: 37, a4: 42}
    assert v2.get_many([f4, a4], version=2) == {}


def test_incr_version(cache, space, unique):
    u = unique
    v2 = space["v2"]
    cache.set(u("answer"), 42, version=2)
    assert cache.get(u("answer")) is None
    assert cache.get(u("answer"), version=1) is None
    assert cache.get(u("answer"), version=2) == 42
    assert cache.get(u("answer"), version=3) is None
    assert cache.incr_version(u("answer"), version=2) == 3
    assert cache.get(u("answer")) is None
    assert cache.get(u("answer"), version=1) is None
    assert cache.get(u("answer"), version=2) is None
    assert cache.get(u("answer"), version=3) == 42
    v2.set(u("answer2"), 42)
    assert v2.get(u("answer2")) == 42
    assert v2.get(u("answer2"), version=1) is None
    assert v2.get(u("answer2"), version=2) == 42
    assert v2.get(u("answer2"), version=3) is None
    assert v2.incr_version(u("answer2")) == 3
    assert v2.get(u("answer2")) is None
    assert v2.get(u("answer2"), version=1) is None
    assert v2.get(u("answer2"), version=2) is None
    assert v2.get(u("answer2"), version=3) == 42
    with pytest.raises(ValueError):
        cache.incr_version(u("does_not_exist"))
    cache.set(u("null"), None)
    assert cache.incr_version(u("null")) == 2


def test_decr_version(cache, space, unique):
    u = unique
    v2 = space["v2"]
    cache.set(u("answer"), 42, version=2)
    assert cache.get(u("answer")) is None
    assert cache.get(u("answer"), version=1) is None
    assert cache.get(u("answer"), version=2) == 42
    assert cache.decr_version(u("answer"), version=2) == 1
    assert cache.get(u("answer")) == 42
    assert cache.get(u("answer"), version=1) == 42
    assert cache.get(u("answer"), version=2) is None
    v2.set(u("answer2"), 42)
    assert v2.get(u("answer2")) == 42
    assert v2.get(u("answer2"), version=1) is None
    assert v2.get(u("answer2"), version=2) == 42
    assert v2.decr_version(u("answer2")) == 1
    assert v2.get(u("answer2")) is None
    assert v2.get(u("answer2"), version=1) == 42
    assert v2.get(u("answer2"), version=2) is None
    with pytest.raises(ValueError):
        cache.decr_version(u("does_not_exist"), version=2)
    cache.set(u("null"), None, version=2)
    assert cache.decr_version(u("null"), version=2) == 1


def test_custom_key_func(cache, space, unique):
    # Two caches with different key functions aren't visible to each other
    cache.set(unique("answer1"), 42)
    assert cache.get(unique("answer1")) == 42
    assert space["custom_key"].get(unique("answer1")) is None
    assert space["custom_key2"].get(unique("answer1")) is None
    space["custom_key"].set(unique("answer2"), 42)
    assert cache.get(unique("answer2")) is None
    assert space["custom_key"].get(unique("answer2")) == 42
    assert space["custom_key2"].get(unique("answer2")) == 42


def test_cache_write_unpicklable_object(space):
    # Django's, with the cache middleware on this backend (global keyspace:
    # the site-wide cache middleware uses the CACHES alias).
    if space.kind == "user":
        pytest.skip("the cache middleware uses a CACHES alias, not a user's namespace")
    factory = RequestFactory()
    with override_settings(CACHE_MIDDLEWARE_ALIAS="default", CACHE_MIDDLEWARE_KEY_PREFIX=space.uid):
        fetch_middleware = FetchFromCacheMiddleware(empty_response)
        request = factory.get("/cache/test")
        request._cache_update_cache = True
        get_cache_data = FetchFromCacheMiddleware(empty_response).process_request(request)
        assert get_cache_data is None
        content = "Testing cookie serialization."

        def get_response(req):
            response = HttpResponse(content)
            response.set_cookie("foo", "bar")
            return response

        update_middleware = UpdateCacheMiddleware(get_response)
        response = update_middleware(request)
        get_cache_data = fetch_middleware.process_request(request)
        assert get_cache_data is not None
        assert get_cache_data.content == content.encode()
        assert get_cache_data.cookies == response.cookies
        UpdateCacheMiddleware(lambda req: get_cache_data)(request)
        get_cache_data = fetch_middleware.process_request(request)
        assert get_cache_data is not None
        assert get_cache_data.content == content.encode()
        assert get_cache_data.cookies == response.cookies


def test_add_fail_on_pickleerror(cache, unique):
    # Shouldn't fail silently if trying to cache an unpicklable type.
    with pytest.raises(pickle.PickleError):
        cache.add(unique("unpicklable"), Unpicklable())


def test_set_fail_on_pickleerror(cache, unique):
    with pytest.raises(pickle.PickleError):
        cache.set(unique("unpicklable"), Unpicklable())


def test_get_or_set(cache, unique):
    assert cache.get(unique("projector")) is None
    assert cache.get_or_set(unique("projector"), 42) == 42
    assert cache.get(unique("projector")) == 42
    assert cache.get_or_set(unique("null"), None) is None
    # Previous get_or_set() stores None in the cache.
    assert cache.get(unique("null"), "default") is None


def test_get_or_set_callable(cache, unique):
    def my_callable():
        return "value"

    assert cache.get_or_set(unique("mykey"), my_callable) == "value"
    assert cache.get_or_set(unique("mykey"), my_callable()) == "value"
    assert cache.get_or_set(unique("null"), lambda: None) is None
    # Previous get_or_set() stores None in the cache.
    assert cache.get(unique("null"), "default") is None


def test_get_or_set_version(cache, unique):
    msg = "get_or_set() missing 1 required positional argument: 'default'"
    assert cache.get_or_set(unique("brian"), 1979, version=2) == 1979
    with pytest.raises(TypeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        cache.get_or_set(unique("brian"))
    with pytest.raises(TypeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        cache.get_or_set(unique("brian"), version=1)
    assert cache.get(unique("brian"), version=1) is None
    assert cache.get_or_set(unique("brian"), 42, version=1) == 42
    assert cache.get_or_set(unique("brian"), 1979, version=2) == 1979
    assert cache.get(unique("brian"), version=3) is None


def test_get_or_set_callable_is_single_flight_across_8_threads(cache, unique):
    """8 threads miss one key together: the loader runs once, may use the
    cache itself, and every thread gets its value (no deadlock)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    calls = []
    barrier = threading.Barrier(8, timeout=60)

    def loader():
        calls.append(1)
        cache.set(unique("side"), "written by the loader")
        time.sleep(0.3)
        return {"loaded": cache.get(unique("side"))}

    def worker(_):
        barrier.wait()
        return cache.get_or_set(unique("flight"), loader, 60)

    pool = ThreadPoolExecutor(8)
    try:
        # A deadlock fails the test after a minute instead of hanging it.
        results = list(pool.map(worker, range(8), timeout=60))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    assert results == [{"loaded": "written by the loader"}] * 8
    assert len(calls) == 1
    assert cache.get(unique("flight")) == {"loaded": "written by the loader"}


def test_get_or_set_racing(cache, unique):
    with mock.patch.object(type(cache), "add") as cache_add:
        # Simulate cache.add() failing to add a value. In that case, the
        # default value should be returned.
        cache_add.return_value = False
        assert cache.get_or_set(unique("key"), "default") == "default"


def test_async_api(cache, unique):
    """Django's a* methods (BaseCache runs the sync ones in a thread)."""
    import asyncio

    async def scenario():
        await cache.aset(unique("async"), {"a": 1}, 60)
        assert await cache.aget(unique("async")) == {"a": 1}
        assert await cache.aadd(unique("async"), 2) is False
        await cache.aset(unique("n"), 1)
        assert await cache.aincr(unique("n")) == 2
        assert await cache.aget_many([unique("async"), unique("n")]) == {unique("async"): {"a": 1}, unique("n"): 2}
        assert await cache.adelete(unique("async")) is True
        assert await cache.ahas_key(unique("async")) is False

    asyncio.run(scenario())
