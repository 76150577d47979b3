"""Every operation of the API, on the memory store and on Redis."""

from __future__ import annotations

import math
import time

import pytest
import redis

import nscache
from pyext_support import REDIS_URL, Names


def test_construction_builds_nothing_and_a_bad_setting_fails_first_call(names: Names) -> None:
    # Nothing connects at construction: an unreachable Redis is fine until used.
    nscache.Cache.from_url("redis://127.0.0.1:1/15", timeout=0.2, connect_timeout=0.2)
    # The component refuses a prefix with ':' when the process builds its cache.
    bad = nscache.Cache.from_url(REDIS_URL, key_prefix="a:b", namespace_root=names.root)
    with pytest.raises(nscache.ConfigError):
        bad.global_().get("k")
    with pytest.raises(nscache.ConfigError):
        nscache.Cache.from_url("http://127.0.0.1/")
    with pytest.raises(nscache.ConfigError):
        nscache.Cache.from_url("memory://", pool_size=0)
    with pytest.raises(nscache.InvalidArgument):
        nscache.Cache.from_url("memory://", timeout=0)


def test_get_set_bytes(cache: nscache.Cache) -> None:
    for ks in (cache.global_(), cache.user(42), cache.user("alice")):
        assert ks.get("absent") is None
        ks.set("k", b"value")
        assert ks.get("k") == b"value"
        ks.set("binary", bytes(range(256)))
        assert ks.get("binary") == bytes(range(256))
        ks.set("empty", b"")
        assert ks.get("empty") == b""
        ks.set("unicode:ключ:🔑", "значение".encode())
        assert ks.get("unicode:ключ:🔑") == "значение".encode()
    with pytest.raises(TypeError):
        cache.global_().set("k", "a str is not bytes")  # type: ignore[arg-type]


def test_get_many_set_many(cache: nscache.Cache) -> None:
    for ks in (cache.global_(), cache.user(7)):
        ks.set_many({"a": b"1", "b": b"2"}, ttl=None)
        assert ks.get_many(["a", "absent", "b"]) == {"a": b"1", "b": b"2"}
        assert ks.get_many([]) == {}
    assert cache.global_().ttl("a") == math.inf
    # Namespaced entries live at most max_namespace_ttl (a day), even "never".
    capped = cache.user(7).ttl("a")
    assert capped is not None and 86390 < capped <= 86400


def test_add_delete_has_key(cache: nscache.Cache) -> None:
    for ks in (cache.global_(), cache.user(7)):
        assert ks.add("k", b"1") is True
        assert ks.add("k", b"2") is False
        assert ks.get("k") == b"1"
        assert ks.has_key("k") and not ks.has_key("absent")
        assert ks.delete("k") is True
        assert ks.delete("k") is False
        ks.set_many({"x": b"1", "y": b"2"})
        assert ks.delete_many(["x", "y", "absent"]) == 2
        assert not ks.has_key("x")


def test_incr_decr(cache: nscache.Cache) -> None:
    for ks in (cache.global_(), cache.user(7)):
        ks.add("n", b"0", ttl=None)
        assert ks.incr("n") == 1
        assert ks.incr("n", 41) == 42
        assert ks.decr("n", 2) == 40
        assert ks.decr("n") == 39
        assert ks.get("n") == b"39"  # a decimal string: Redis' INCR works on it too
        with pytest.raises(nscache.NotFound):
            ks.incr("missing")
        ks.set("text", b"abc")
        with pytest.raises(nscache.NotAnInteger):
            ks.incr("text")
        ks.set("big", str(2**63 - 1).encode())
        with pytest.raises(nscache.NotAnInteger):
            ks.incr("big")
        assert isinstance(nscache.NotFound("x"), nscache.Error)


def test_ttl_touch_persist(cache: nscache.Cache) -> None:
    ks = cache.global_()
    assert ks.ttl("absent") is None
    ks.set("default", b"v")
    ttl = ks.ttl("default")
    assert ttl is not None and 298 < ttl <= 300  # DEFAULT: the 300 s default
    ks.set("never", b"v", ttl=None)
    assert ks.ttl("never") == math.inf
    ks.set("short", b"v", ttl=2.5)
    ttl = ks.ttl("short")
    assert ttl is not None and 2 < ttl <= 2.5
    assert ks.touch("never", 10) is True
    ttl = ks.ttl("never")
    assert ttl is not None and 9 < ttl <= 10
    assert ks.touch("absent", 10) is False
    assert ks.persist("never") is True
    assert ks.ttl("never") == math.inf
    assert ks.persist("absent") is False
    ks.set("gone", b"v", ttl=0.05)
    time.sleep(0.15)
    assert ks.get("gone") is None


def test_ttl_arguments(cache: nscache.Cache) -> None:
    ks = cache.global_()
    for bad in (-1, -0.001, float("nan"), float("inf")):
        with pytest.raises(nscache.InvalidArgument):
            ks.set("k", b"v", ttl=bad)
    ks.set("zero", b"v", ttl=None)
    ks.set("zero", b"v", ttl=0)  # expires at once: the write removes the key
    assert ks.get("zero") is None
    with pytest.raises(TypeError):
        ks.set("k", b"v", ttl=True)  # type: ignore[arg-type]
    ks.set("k", b"v", ttl=nscache.DEFAULT)
    assert ks.ttl("k") is not None


def test_default_ttl_options(names: Names) -> None:
    never = nscache.Cache.from_url("memory://", default_ttl=None, key_prefix=names.prefix)
    never.global_().set("k", b"v")
    assert never.global_().ttl("k") == math.inf
    short = nscache.Cache.from_url("memory://", default_ttl=60)
    short.user(1).set("k", b"v")
    ttl = short.user(1).ttl("k")
    assert ttl is not None and 59 < ttl <= 60
    off = nscache.Cache.from_url("memory://", default_ttl=0)
    off.global_().set("k", b"v")  # DEFAULT with a zero default: nothing stored
    assert off.global_().get("k") is None
    off.global_().set("k", b"v", ttl=5)
    assert off.global_().get("k") == b"v"


def test_limits_raise_typed_errors(names: Names) -> None:
    cache = nscache.Cache.from_url(
        REDIS_URL,
        key_prefix=names.prefix,
        namespace_root=names.root,
        max_key_bytes=16,
        max_value_bytes=8,
        max_reply_bytes=12,
        namespace_quota_bytes=20,
    )
    ks = cache.global_()
    with pytest.raises(nscache.InvalidKey):
        ks.set("k" * 17, b"v")
    with pytest.raises(nscache.InvalidKey):
        ks.get("k" * 17)
    with pytest.raises(nscache.ValueTooLarge):
        ks.set("k", b"123456789")
    assert ks.get("k") is None
    ks.set("a", b"12345678")
    ks.set("b", b"12345678")
    with pytest.raises(nscache.ReplyTooLarge):
        ks.get_many(["a", "b"])
    user = cache.user(5)
    user.set("a", b"12345678")
    user.set("b", b"12345678")
    with pytest.raises(nscache.QuotaExceeded):
        user.set("c", b"12345678")
    with pytest.raises(nscache.InvalidKey):
        cache.user("")
        cache.user("").get("k")
    with pytest.raises(TypeError):
        cache.user(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.user(True)  # type: ignore[arg-type]
    cache.close()


def test_namespace_isolation(cache: nscache.Cache, names: Names) -> None:
    cache.global_().set("k", b"global")
    cache.user(1).set("k", b"one")
    cache.user(2).set("k", b"two")
    assert cache.global_().get("k") == b"global"
    assert cache.user(1).get("k") == b"one"
    assert cache.user("1").get("k") == b"one"  # int ids are their decimal strings
    assert cache.user(2).get("k") == b"two"
    assert cache.user(3).get("k") is None
    assert cache.user(1).user_id == "1" and cache.global_().user_id is None
    other_root = nscache.Cache.from_url("memory://", namespace_root=names.root + "x")
    assert other_root.user(1).get("k") is None


def test_global_keys_are_django_redis_strings(redis_cache: nscache.Cache, names: Names) -> None:
    redis_cache.global_().set("invoice_seq:2026", b"41", ttl=None)
    raw = redis.Redis.from_url(REDIS_URL)
    assert raw.get(f"{names.prefix}:1:invoice_seq:2026") == b"41"
    raw.incr(f"{names.prefix}:1:invoice_seq:2026")  # another client's INCR
    assert redis_cache.global_().incr("invoice_seq:2026") == 43
    # Another key version (Django's version=) on the same store.
    v2 = redis_cache.global_(version=2)
    assert v2.get("invoice_seq:2026") is None
    v2.set("invoice_seq:2026", b"7")
    assert raw.get(f"{names.prefix}:2:invoice_seq:2026") == b"7"
    assert redis_cache.global_(version=1).get("invoice_seq:2026") == b"43"
    raw.close()


def test_invalidation(cache: nscache.Cache) -> None:
    alice, bob = cache.user(1), cache.user(2)
    assert cache.version_of(1) is None
    alice.set("a", b"1")
    alice.set("b", b"2")
    bob.set("a", b"bob")
    cache.global_().set("g", b"kept")
    v1 = cache.version_of(1)
    assert v1 is not None
    v2 = cache.invalidate_user(1)
    assert v2 > v1 and cache.version_of(1) == v2
    assert alice.get("a") is None and alice.get("b") is None
    assert bob.get("a") == b"bob"
    alice.set("a", b"new")
    assert alice.get("a") == b"new"
    cache.invalidate_all()
    assert alice.get("a") is None and bob.get("a") is None
    assert cache.global_().get("g") == b"kept"


def test_query_cache_and_table_invalidation(cache: nscache.Cache) -> None:
    calls: list[str] = []

    def load(result: bytes) -> bytes:
        calls.append(result.decode())
        return result

    alice = cache.user(1)
    sql = "SELECT * FROM invoices WHERE user_id = %s"
    assert alice.query(sql, b"[1]", ["invoices"], lambda: load(b"rows-1")) == b"rows-1"
    assert alice.query(sql, b"[1]", ["invoices"], lambda: load(b"again")) == b"rows-1"
    # Other parameters, another user: other entries.
    assert alice.query(sql, b"[2]", ["invoices"], lambda: load(b"rows-2")) == b"rows-2"
    assert cache.user(2).query(sql, b"[1]", ["invoices"], lambda: load(b"bob")) == b"bob"
    cache.invalidate_table("invoices")
    assert alice.query(sql, b"[1]", ["invoices"], lambda: load(b"fresh")) == b"fresh"
    cache.invalidate_table("customers")
    assert alice.query(sql, b"[1]", ["invoices"], lambda: load(b"x")) == b"fresh"
    cache.invalidate_user(1)
    assert alice.query(sql, b"[1]", ["invoices"], lambda: load(b"after-user")) == b"after-user"
    assert calls == ["rows-1", "rows-2", "bob", "fresh", "after-user"]
    with pytest.raises(nscache.InvalidArgument):
        cache.global_().query(sql, b"", ["invoices"], lambda: b"x")
    with pytest.raises(nscache.InvalidKey):
        alice.query(sql, b"", [""], lambda: b"x")
    with pytest.raises(nscache.InvalidKey):
        cache.invalidate_table("t" * 300)


def test_locks(cache: nscache.Cache) -> None:
    token = cache.lock("cron:full_backup:run_lock", 30)
    assert token is not None
    assert cache.lock("cron:full_backup:run_lock", 30) is None
    assert cache.unlock("cron:full_backup:run_lock", "not-the-owner") is False
    assert cache.unlock("cron:full_backup:run_lock", token) is True
    assert cache.unlock("cron:full_backup:run_lock", token) is False
    short = cache.lock("short", 0.1)
    assert short is not None
    time.sleep(0.25)
    assert cache.lock("short", 1) is not None
    with pytest.raises(nscache.InvalidArgument):
        cache.lock("k", 0)
    assert cache.lock("named", 5, token="worker-1") == "worker-1"
    assert cache.lock("named", 5, token="worker-2") is None
    assert cache.unlock("named", "worker-1") is True


def test_get_or_set(cache: nscache.Cache) -> None:
    ks = cache.user(3)
    calls = []

    def loader() -> bytes:
        calls.append(1)
        return b"loaded"

    assert ks.get_or_set("k", loader) == b"loaded"
    assert ks.get_or_set("k", loader) == b"loaded"
    assert len(calls) == 1
    assert ks.get("k") == b"loaded"

    class Boom(Exception):
        pass

    def failing() -> bytes:
        raise Boom("no")

    with pytest.raises(Boom):
        ks.get_or_set("f", failing)
    assert ks.get("f") is None
    with pytest.raises(TypeError):
        ks.get_or_set("s", lambda: "a str")  # type: ignore[arg-type, return-value]
    assert ks.get_or_set("ttl", lambda: b"v", ttl=7) == b"v"
    ttl = ks.ttl("ttl")
    assert ttl is not None and 6 < ttl <= 7
    # The loader may use the cache, even the same keyspace.
    assert ks.get_or_set("outer", lambda: (ks.get("k") or b"") + b"+" + ks.get_or_set("inner", lambda: b"i")) == b"loaded+i"


def test_misc(cache: nscache.Cache) -> None:
    assert cache.ping() >= 0
    cache.global_().get("k")
    metrics = cache.metrics()
    assert "nscache" in metrics and "get" in metrics
    assert cache.cache_enabled(1) is True
    assert repr(nscache.DEFAULT) == "nscache.DEFAULT"
    assert "user=\"1\"" in repr(cache.user(1))


def test_close_reconnects(redis_cache: nscache.Cache) -> None:
    redis_cache.global_().set("k", b"v")
    redis_cache.close()
    assert redis_cache.global_().get("k") == b"v"
    redis_cache.close()
    redis_cache.close()


def test_from_settings_and_env(names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    c = nscache.Cache.from_settings(
        {"redis_url": REDIS_URL, "prefix": names.prefix, "namespace-root": names.root, "pool-size": 2, "socket-timeout": 1.5, "l1": False, "database-url": None}
    )
    c.global_().set("k", b"v")
    assert redis.Redis.from_url(REDIS_URL).get(f"{names.prefix}:1:k") == b"v"
    with pytest.raises(nscache.ConfigError):
        nscache.Cache.from_settings({"no-such-option": 1})
    with pytest.raises(nscache.ConfigError):
        nscache.Cache.from_settings({"pool-size": "many"})
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CACHE_KEY_PREFIX", names.prefix)
    monkeypatch.setenv("NSCACHE_NAMESPACE_ROOT", names.root)
    assert nscache.Cache.from_env().global_().get("k") == b"v"
    monkeypatch.setenv("NSCACHE_POOL_SIZE", "zero")
    with pytest.raises(nscache.ConfigError):
        nscache.Cache.from_env()


def test_l1(names: Names) -> None:
    # A long max age: only the pub/sub announcement can make the first cache see the second's writes.
    cache = nscache.Cache.from_url(REDIS_URL, key_prefix=names.prefix, namespace_root=names.root, l1=True, l1_ttl=30)
    other = nscache.Cache.from_url(REDIS_URL, key_prefix=names.prefix, namespace_root=names.root, l1=True, l1_ttl=30)
    cache.user(1).set("k", b"1")
    assert cache.user(1).get("k") == b"1"
    assert other.user(1).get("k") == b"1"
    other.user(1).set("k", b"2")  # announced over pub/sub to the first cache's L1
    deadline = time.time() + 5
    while cache.user(1).get("k") != b"2" and time.time() < deadline:
        time.sleep(0.02)
    assert cache.user(1).get("k") == b"2"
    # An invalidation returns once its eviction is published: the other L1 drops the entry.
    other.invalidate_user(1)
    deadline = time.time() + 5
    while cache.user(1).get("k") is not None and time.time() < deadline:
        time.sleep(0.02)
    assert cache.user(1).get("k") is None
    cache.close()
    other.close()
