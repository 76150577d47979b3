"""Fixtures of the Python package's tests: caches on the shared Redis (DB 15,
a unique key prefix and namespace root per test, removed afterwards; never
FLUSHDB), on the memory store, and private redis-server processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import nscache

REDIS_URL = os.environ.get("NSCACHE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("NSCACHE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[3]


def unique(stem: str) -> str:
    return f"{stem}{uuid.uuid4().hex[:12]}"


class Names:
    """A test's key prefix and namespace root, and its cleanup on Redis."""

    def __init__(self) -> None:
        self.prefix = unique("pyt")
        self.root = unique("pyns")
        self.client = redis.Redis.from_url(REDIS_URL)

    def keys(self) -> list[bytes]:
        found: list[bytes] = []
        for stem in (self.prefix, self.root):
            found.extend(self.client.scan_iter(match=f"{stem}*", count=1000))
        return found

    def remove(self) -> None:
        keys = self.keys()
        if keys:
            self.client.delete(*keys)
        self.client.close()


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, on a free loopback port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/1"
        client = redis.Redis(host="127.0.0.1", port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("the private redis-server did not start")
        self.client = client

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.stop()


def nscache_binary() -> Path:
    """The nscache CLI built by `cargo test --workspace` (for `watch-table`)."""
    if "NSCACHE_BIN" in os.environ:
        return Path(os.environ["NSCACHE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "nscache"
