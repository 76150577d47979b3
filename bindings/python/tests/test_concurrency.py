"""Threads: single-flight get_or_set with Python loaders, and the GIL
released while a call waits for Redis."""

from __future__ import annotations

import threading
import time

import nscache
from pyext_support import PrivateRedis


def run_threads(n: int, target, timeout: float = 20.0) -> list:  # type: ignore[no-untyped-def]
    results: list = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "deadlock: threads still waiting"
    assert not errors, errors
    return results


def test_get_or_set_single_flight_8_threads(cache: nscache.Cache) -> None:
    ks = cache.user(1)
    calls = []
    lock = threading.Lock()

    def loader() -> bytes:
        with lock:
            calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every thread to miss and wait
        return b"computed once"

    results = run_threads(8, lambda i: ks.get_or_set("hot", loader))
    assert results == [b"computed once"] * 8
    assert len(calls) == 1
    assert ks.get("hot") == b"computed once"


def test_loaders_calling_the_cache_do_not_deadlock(cache: nscache.Cache) -> None:
    ks = cache.global_()
    ks.set("base", b"b")
    calls = []

    def loader() -> bytes:
        calls.append(1)
        time.sleep(0.1)
        # The loader uses the cache: plain calls and a nested get_or_set.
        inner = ks.get_or_set("inner", lambda: b"i")
        ks.set("side", b"effect")
        return (ks.get("base") or b"") + inner

    results = run_threads(8, lambda i: ks.get_or_set("outer", loader))
    assert results == [b"bi"] * 8
    assert len(calls) == 1
    assert ks.get("side") == b"effect"


def test_failing_leader_lets_a_follower_load(cache: nscache.Cache) -> None:
    ks = cache.user(2)
    attempts = []
    lock = threading.Lock()

    def loader() -> bytes:
        with lock:
            attempts.append(1)
            first = len(attempts) == 1
        time.sleep(0.2)
        if first:
            raise ValueError("first load fails")
        return b"second"

    def call(i: int) -> bytes | str:
        try:
            return ks.get_or_set("k", loader)
        except ValueError:
            return "failed"

    results = run_threads(8, call)
    assert results.count("failed") == 1
    assert [r for r in results if r != "failed"] == [b"second"] * 7
    assert len(attempts) == 2


def test_many_threads_many_keys(cache: nscache.Cache) -> None:
    ks = cache.user(3)

    def work(i: int) -> int:
        for j in range(100):
            ks.set(f"k{i}:{j}", str(j).encode())
            assert ks.get(f"k{i}:{j}") == str(j).encode()
        ks.add("counter", b"0", ttl=None)
        for _ in range(50):
            ks.incr("counter")
        return i

    run_threads(8, work)
    assert ks.get("counter") == b"400"


def test_gil_released_while_waiting(private_redis: PrivateRedis) -> None:
    cache = nscache.Cache.from_url(private_redis.url, timeout=5)
    ks = cache.global_()
    ks.set("k", b"v")  # builds the runtime and connects
    progress = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal progress
        while not stop.is_set():
            progress += 1

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    time.sleep(0.05)
    # Redis answers nobody for 0.8 s: the call waits that long.
    private_redis.client.execute_command("CLIENT", "PAUSE", "800", "ALL")
    before = progress
    started = time.monotonic()
    assert ks.get("k") == b"v"
    waited = time.monotonic() - started
    during = progress - before
    stop.set()
    counter.join()
    assert waited >= 0.5
    # Another Python thread ran all along (with the GIL held, it could not).
    assert during > 10_000, during
    cache.close()
