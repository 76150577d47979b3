"""Helpers of the Python package's tests: the services' URLs, unique names on
the shared Redis (DB 15; never FLUSHDB), private redis-server processes."""


from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import redis


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


def nscache_binary() -> Path:
    """The nscache CLI built by `cargo test --workspace` (for `watch-table`)."""
    if "NSCACHE_BIN" in os.environ:
        return Path(os.environ["NSCACHE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "nscache"
