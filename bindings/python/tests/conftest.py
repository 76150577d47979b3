"""Fixtures of the Python package's tests (helpers in pyext_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import nscache
from pyext_support import REDIS_URL, Names, PrivateRedis


@pytest.fixture
def names() -> Iterator[Names]:
    n = Names()
    yield n
    n.remove()


@pytest.fixture
def redis_cache(names: Names) -> Iterator[nscache.Cache]:
    cache = nscache.Cache.from_url(REDIS_URL, key_prefix=names.prefix, namespace_root=names.root)
    yield cache
    cache.close()


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, names: Names) -> Iterator[nscache.Cache]:
    """The same behaviour on both stores."""
    url = "memory://" if request.param == "memory" else REDIS_URL
    c = nscache.Cache.from_url(url, key_prefix=names.prefix, namespace_root=names.root)
    yield c
    c.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.stop()
