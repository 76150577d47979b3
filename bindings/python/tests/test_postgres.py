"""Postgres: users' cache_enabled flags from a profile table (the column the
server reads), and the table watcher invalidating cached queries on writes
made by any client."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import nscache
from pyext_support import POSTGRES_URL, REDIS_URL, Names, nscache_binary
from test_fork import in_child, wait_ok


@pytest.fixture
def database() -> Iterator[str]:
    """A database of the test's own: its URL."""
    name = f"pyext_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def test_cache_enabled_from_the_profile_table(database: str, names: Names) -> None:
    # The reference application's table: nscache reads the flag where Django keeps it.
    sql(database, "CREATE TABLE core_userprofile (user_id BIGINT PRIMARY KEY, cache_enabled BOOLEAN NOT NULL DEFAULT TRUE)")
    sql(database, "INSERT INTO core_userprofile VALUES (1, TRUE), (2, FALSE)")
    cache = nscache.Cache.from_url(
        REDIS_URL,
        key_prefix=names.prefix,
        namespace_root=names.root,
        profiles_url=database,
        profile_table="core_userprofile",
        profile_max_age=0.3,
    )
    assert cache.cache_enabled(1) is True
    assert cache.cache_enabled(2) is False
    assert cache.cache_enabled(3) is True  # no row: the column's default
    cache.user(1).set("k", b"v")
    assert cache.user(1).get("k") == b"v"
    # A disabled user is bypassed: writes skipped, reads miss, loaders always run.
    cache.user(2).set("k", b"v")
    assert cache.user(2).get("k") is None
    calls = []
    for _ in range(2):
        cache.user(2).get_or_set("g", lambda: calls.append(1) or b"x")
    assert len(calls) == 2
    # Global keys never depend on a flag.
    cache.global_().set("g", b"kept")
    assert cache.global_().get("g") == b"kept"
    # A toggle in the database is seen within profile_max_age.
    sql(database, "UPDATE core_userprofile SET cache_enabled = FALSE WHERE user_id = 1")
    time.sleep(0.5)
    assert cache.cache_enabled(1) is False
    assert cache.user(1).get("k") is None
    sql(database, "UPDATE core_userprofile SET cache_enabled = TRUE WHERE user_id = 1")
    time.sleep(0.5)
    assert cache.user(1).get("k") == b"v"
    cache.close()


def test_bad_profiles_url_is_a_config_error(names: Names) -> None:
    cache = nscache.Cache.from_url("memory://", profiles_url="postgres://[bad")
    with pytest.raises(nscache.ConfigError):
        cache.cache_enabled(1)
    with pytest.raises(nscache.ConfigError):
        nscache.Cache.from_url("memory://", profile_table="bad name; DROP TABLE x")


def wait_for(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def watched_invoices(database: str) -> str:
    sql(database, "CREATE TABLE invoices (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)")
    sql(database, "INSERT INTO invoices VALUES (1, 100)")
    binary = nscache_binary()
    assert binary.exists(), f"{binary} is missing: run `cargo test --workspace` (or set NSCACHE_BIN)"
    subprocess.run(
        [str(binary), "watch-table", "invoices"],
        env={**os.environ, "DATABASE_URL": database},
        check=True,
        capture_output=True,
    )
    return database


def cached_invoices(cache: nscache.Cache, loads: list[int]) -> bytes:
    def load() -> bytes:
        loads.append(1)
        return f"load-{len(loads)}".encode()

    return cache.user(1).query("SELECT * FROM invoices", b"[]", ["invoices"], load)


def test_watch_tables_invalidates_on_any_write(watched_invoices: str, names: Names) -> None:
    cache = nscache.Cache.from_url(REDIS_URL, key_prefix=names.prefix, namespace_root=names.root)
    cache.watch_tables(watched_invoices)
    cache.watch_tables(watched_invoices)  # idempotent
    loads: list[int] = []
    first = cached_invoices(cache, loads)
    assert cached_invoices(cache, loads) == first
    # A write by another client (psql, another service): the trigger notifies, the watcher invalidates.
    # One write only: a watcher that subscribes late bumps every watched table when it does.
    sql(watched_invoices, "UPDATE invoices SET amount = amount + 1")
    assert wait_for(lambda: cached_invoices(cache, loads) != first)
    settled = cached_invoices(cache, loads)
    time.sleep(0.3)
    assert cached_invoices(cache, loads) == settled  # cached again until the next write
    cache.close()


def test_watcher_restarts_in_a_forked_child(watched_invoices: str, names: Names) -> None:
    cache = nscache.Cache.from_url(REDIS_URL, key_prefix=names.prefix, namespace_root=names.root)
    cache.watch_tables(watched_invoices)
    cached_invoices(cache, [])
    ready_r, ready_w = os.pipe()

    def child() -> None:
        os.close(ready_w)
        loads: list[int] = []
        first = cached_invoices(cache, loads)  # builds the child's runtime and its watcher
        assert os.read(ready_r, 1) == b"x"  # the parent has closed its own watcher
        assert wait_for(lambda: (sql(watched_invoices, "UPDATE invoices SET amount = amount + 1"), cached_invoices(cache, loads) != first)[1])

    pid = in_child(child)
    os.close(ready_r)
    cache.close()  # the parent's watcher stops: only the child's can invalidate now
    os.write(ready_w, b"x")
    os.close(ready_w)
    wait_ok(pid)
