"""Global keys shared with a running django-redis deployment (same Redis,
same KEY_PREFIX): each reads what the other writes, INCR works on both sides,
locks taken by one hold against the other."""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.core.cache import caches


@pytest.fixture
def ours():
    return caches["default"]


@pytest.fixture
def theirs():
    return caches["django_redis"]


@pytest.fixture
def key(request):
    return f"interop:{request.node.name}"


VALUES = [
    "text",
    "Iñtërnâtiônàlizætiøn",
    b"\x00\xffbinary",
    0,
    -17,
    2**40,
    True,
    None,
    1.25,
    decimal.Decimal("3.10"),
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    {"nested": [1, ("a", b"b")]},
]


@pytest.mark.parametrize("value", VALUES, ids=[f"{type(v).__name__}{i}" for i, v in enumerate(VALUES)])
def test_each_reads_what_the_other_writes(ours, theirs, key, value):
    ours.set(key, value, 60)
    got = theirs.get(key)
    assert got == value and type(got) is type(value)
    theirs.set(key + ":2", value, 60)
    got = ours.get(key + ":2")
    assert got == value and type(got) is type(value)


def test_same_key_strings_and_integers_stored_raw(ours, theirs, key, redis_client):
    ours.set(key, 41, 60)
    raw_key = f"{ours.key_prefix}:1:{key}"
    assert redis_client.get(raw_key) == b"41"
    assert theirs.incr(key) == 42
    assert ours.incr(key) == 43
    assert theirs.get(key) == 43
    # Redis' own INCR too.
    assert redis_client.incr(raw_key) == 44
    assert ours.get(key) == 44


def test_versions_and_many(ours, theirs, key):
    theirs.set(key, "v2", 60, version=2)
    assert ours.get(key) is None
    assert ours.get(key, version=2) == "v2"
    ours.set_many({key + ":a": 1, key + ":b": [2]}, 60)
    assert theirs.get_many([key + ":a", key + ":b", key + ":c"]) == {key + ":a": 1, key + ":b": [2]}
    theirs.delete_many([key + ":a"])
    assert ours.get_many([key + ":a", key + ":b"]) == {key + ":b": [2]}


def test_a_lock_taken_by_one_holds_against_the_other(ours, theirs, key):
    assert theirs.add(key, "django-redis", 60)
    assert ours.add(key, "nscache", 60) is False
    theirs.delete(key)
    assert ours.add(key, "nscache", 60)
    assert theirs.add(key, "django-redis", 60) is False


def test_ttl_touch_persist_like_django_redis(ours, theirs, key):
    ours.set(key, "x", 100)
    assert 90 < theirs.ttl(key) <= 100
    assert ours.touch(key, 500)
    assert 490 < theirs.ttl(key) <= 500
    assert ours.persist(key)
    assert theirs.ttl(key) is None and ours.ttl(key) is None
    assert ours.ttl(key + ":missing") == theirs.ttl(key + ":missing") == 0
