"""A Redis outage: reads degrade to misses, plain writes are skipped, the
operations whose correctness depends on the store raise Unavailable; the
cache recovers when Redis is back."""

from __future__ import annotations

import subprocess
import time

import pytest

import nscache
from pyext_support import PrivateRedis


def test_outage_degrades_reads_and_recovers(private_redis: PrivateRedis) -> None:
    cache = nscache.Cache.from_url(private_redis.url, timeout=0.5, connect_timeout=0.5)
    g, u = cache.global_(), cache.user(1)
    g.set("k", b"v")
    u.set("k", b"v")
    assert g.get("k") == b"v" and u.get("k") == b"v"

    private_redis.stop()
    started = time.monotonic()
    assert g.get("k") is None
    assert u.get("k") is None
    assert g.get_many(["k", "x"]) == {}
    assert g.has_key("k") is False
    g.set("k", b"skipped")  # skipped, no exception
    u.set("k", b"skipped")
    assert u.get_or_set("k", lambda: b"computed") == b"computed"  # loads, cannot store
    for op in (
        lambda: g.add("n", b"0"),
        lambda: g.incr("k"),
        lambda: g.delete("k"),
        lambda: g.touch("k", 5),
        lambda: cache.lock("l", 5),
        lambda: cache.invalidate_user(1),
        lambda: cache.ping(),
    ):
        with pytest.raises(nscache.Unavailable):
            op()
    assert time.monotonic() - started < 20

    # Redis is back (same port): the cache reconnects by itself.
    subprocess_args = private_redis.process.args
    private_redis.process = subprocess.Popen(subprocess_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            cache.ping()
            break
        except nscache.Unavailable:
            time.sleep(0.1)
    g.set("k", b"back")
    assert g.get("k") == b"back"
    cache.close()
