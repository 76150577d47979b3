"""The five cache patterns of the reference system (its migration checklist),
written against the Django backend as the application writes them:
``from django.core.cache import cache``. The reference validated them with
4, 5, 6, 5 and 5 tests; these are at least as many, on real Redis, with the
concurrency they exist for (several workers, threads and processes).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache, caches

TOKEN = "meta_whatsapp:runtime_access_token"
TOKEN_EXPIRES = "meta_whatsapp:runtime_access_token_expires_at"
LOCKS = [
    "cron:full_backup:enqueue_lock",
    "cron:full_backup:run_lock",
    "cron:clear_cache:enqueue_lock",
    "cron:clear_cache:run_lock",
]
SEQ = "invoice_seq:2026"
CURSORS = {
    "calendar": ("calendar_reminders:stream:cursor", "calendar_reminders:stream:last_event"),
    "workflow": ("workflow_notifications:stream:cursor", "workflow_notifications:stream:last_event"),
}


@pytest.fixture(autouse=True)
def fresh_keys():
    keys = [TOKEN, TOKEN_EXPIRES, *LOCKS, SEQ, *[k for pair in CURSORS.values() for k in pair]]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def test_default_cache_is_nscache_on_global_keys(redis_client):
    from nscache.django import NsCache

    assert isinstance(caches["default"], NsCache)
    cache.set(SEQ, 7)
    # django-redis' key string: {KEY_PREFIX}:{VERSION}:{key}
    assert redis_client.get(f"{cache.key_prefix}:1:{SEQ}") == b"7"


# ---- 1. access-token caching ------------------------------------------------


def test_token_set_with_ttl_and_get():
    cache.set(TOKEN, "EAAG-token", timeout=3600)
    cache.set(TOKEN_EXPIRES, 1767225600, timeout=3600)
    assert cache.get(TOKEN) == "EAAG-token"
    assert cache.get(TOKEN_EXPIRES) == 1767225600
    assert 3500 < cache.ttl(TOKEN) <= 3600


def test_token_expires_with_its_ttl():
    cache.set(TOKEN, "short-lived", timeout=1)
    assert cache.get(TOKEN) == "short-lived"
    time.sleep(1.5)
    assert cache.get(TOKEN) is None


def test_token_delete_many_clears_both():
    cache.set_many({TOKEN: "t", TOKEN_EXPIRES: 1})
    cache.delete_many([TOKEN, TOKEN_EXPIRES])
    assert cache.get_many([TOKEN, TOKEN_EXPIRES]) == {}


def test_token_refresh_overwrites_and_missing_reads_none():
    assert cache.get(TOKEN) is None
    cache.set(TOKEN, "old", 60)
    cache.set(TOKEN, "new", 60)
    assert cache.get(TOKEN) == "new"


def test_token_survives_a_user_invalidation():
    cache.set(TOKEN, "global", 60)
    cache.for_user("4242").set("x", 1)
    cache.nscache.invalidate_user("4242")
    cache.nscache.invalidate_all()
    assert cache.get(TOKEN) == "global"


# ---- 2. cron locks -------------------------------------------------------------


def test_lock_add_is_exclusive():
    assert cache.add(LOCKS[0], "worker-1", timeout=60) is True
    assert cache.add(LOCKS[0], "worker-2", timeout=60) is False
    assert cache.get(LOCKS[0]) == "worker-1"


def test_lock_release_lets_the_next_worker_in():
    assert cache.add(LOCKS[1], "w1", 60)
    assert cache.delete(LOCKS[1]) is True
    assert cache.add(LOCKS[1], "w2", 60)
    assert cache.get(LOCKS[1]) == "w2"


def test_lock_expires_when_its_holder_dies():
    assert cache.add(LOCKS[2], "crashed", timeout=1)
    time.sleep(1.5)
    assert cache.add(LOCKS[2], "next", timeout=60)


def test_lock_bulk_reset():
    for lock in LOCKS:
        assert cache.add(lock, "held", 60)
    cache.delete_many(LOCKS)
    assert cache.get_many(LOCKS) == {}
    assert all(cache.add(lock, "again", 60) for lock in LOCKS)


def test_lock_one_winner_among_16_threads():
    barrier = threading.Barrier(16)

    def take(i):
        barrier.wait()
        return cache.add(LOCKS[3], f"w{i}", 60)

    with ThreadPoolExecutor(16) as pool:
        won = list(pool.map(take, range(16)))
    assert won.count(True) == 1
    assert cache.get(LOCKS[3]) == f"w{won.index(True)}"


def test_lock_one_winner_among_processes():
    results = []
    for _ in range(4):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: try the lock, report, leave without cleanup
            os.close(read)
            try:
                ok = caches["default"].add(LOCKS[0], f"pid{os.getpid()}", 60)
                os.write(write, b"1" if ok else b"0")
            finally:
                os._exit(0)
        os.close(write)
        results.append((pid, read))
    won = []
    for pid, read in results:
        won.append(os.read(read, 1))
        os.close(read)
        os.waitpid(pid, 0)
    assert won.count(b"1") == 1, won


# ---- 3. invoice sequence -----------------------------------------------------


def test_sequence_add_initialises_once():
    assert cache.add(SEQ, 0, None)
    assert cache.add(SEQ, 1000, None) is False
    assert cache.get(SEQ) == 0


def test_sequence_incr_counts():
    cache.add(SEQ, 0, None)
    assert [cache.incr(SEQ) for _ in range(3)] == [1, 2, 3]
    assert cache.get(SEQ) == 3


def test_sequence_set_moves_it():
    cache.add(SEQ, 0, None)
    cache.set(SEQ, 500, None)
    assert cache.incr(SEQ) == 501


def test_sequence_incr_on_missing_raises():
    with pytest.raises(ValueError):
        cache.incr(SEQ)


def test_sequence_unique_under_8_threads():
    cache.add(SEQ, 0, None)

    def take(_):
        return [cache.incr(SEQ) for _ in range(50)]

    with ThreadPoolExecutor(8) as pool:
        numbers = [n for batch in pool.map(take, range(8)) for n in batch]
    assert sorted(numbers) == list(range(1, 401))


def test_sequence_unique_across_processes_and_django_redis():
    """Forked workers and a django-redis client share one sequence: no
    duplicate, no gap."""
    cache.add(SEQ, 0, None)
    children = []
    for _ in range(3):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                got = [caches["default"].incr(SEQ) for _ in range(100)]
                os.write(write, ",".join(map(str, got)).encode())
            finally:
                os._exit(0)
        os.close(write)
        children.append((pid, read))
    mine = [caches["django_redis"].incr(SEQ) for _ in range(100)]
    numbers = list(mine)
    for pid, read in children:
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        os.waitpid(pid, 0)
        numbers += [int(n) for n in b"".join(chunks).split(b",")]
    assert sorted(numbers) == list(range(1, 401))


# ---- 4 and 5. stream cursors --------------------------------------------------


@pytest.fixture(params=sorted(CURSORS))
def cursor(request):
    return CURSORS[request.param]


def test_cursor_add_then_incr(cursor):
    key, _ = cursor
    assert cache.add(key, 0, None)
    assert cache.incr(key) == 1
    assert cache.incr(key, 5) == 6


def test_cursor_stores_the_last_event(cursor):
    key, last = cursor
    event = {"id": "evt_1", "at": "2026-01-01T00:00:00Z", "payload": [1, 2]}
    cache.set(last, event, None)
    cache.set(key, 17, None)
    assert cache.get(last) == event
    assert cache.get(key) == 17


def test_cursor_reset_with_delete_many(cursor):
    key, last = cursor
    cache.set_many({key: 3, last: {"id": "e"}}, None)
    cache.delete_many([key, last])
    assert cache.get(key) is None and cache.get(last) is None
    assert cache.add(key, 0, None)


def test_cursor_add_does_not_rewind(cursor):
    key, _ = cursor
    cache.add(key, 0, None)
    cache.incr(key, 10)
    assert cache.add(key, 0, None) is False
    assert cache.get(key) == 10


def test_cursor_concurrent_consumers_take_distinct_positions(cursor):
    key, _ = cursor
    cache.add(key, 0, None)
    with ThreadPoolExecutor(8) as pool:
        positions = list(pool.map(lambda _: cache.incr(key), range(200)))
    assert sorted(positions) == list(range(1, 201))
