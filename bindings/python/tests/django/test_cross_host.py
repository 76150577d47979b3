"""Django and the other hosts on one Redis: the ``nscache`` CLI (the Rust
library) and the server's HTTP API read what Django writes and the reverse,
for str, bytes and int values; an invalidation through the CLI or the HTTP
API is seen by Django's next get."""

from __future__ import annotations

import subprocess

import pytest
from django.core.cache import caches

USER = "4242"


@pytest.fixture
def glob():
    return caches["default"]


@pytest.fixture
def mine():
    cache = caches["default"].for_user(USER)
    yield cache
    cache.clear()


def cli_bytes(server, *args) -> subprocess.CompletedProcess:
    """The CLI with its raw stdout (bytes values)."""
    command = [
        server.binary,
        "--redis-url",
        server.redis_url,
        "--prefix",
        server.prefix,
        "--namespace-root",
        server.root,
        "--data-dir",
        server.data_dir,
        *args,
    ]
    return subprocess.run(command, capture_output=True, env=server._env(), timeout=60)


def out(done) -> str:
    return done.stdout.strip() if isinstance(done.stdout, str) else done.stdout.decode().strip()


# ---- global keys -------------------------------------------------------------


def test_global_int_both_ways(server, glob):
    glob.set("xh:seq", 41, None)
    assert out(server.cli("get", "xh:seq")) == "41"
    assert out(server.cli("incr", "xh:seq")) == "42"
    assert glob.get("xh:seq") == 42
    assert glob.incr("xh:seq") == 43
    assert out(server.cli("get", "xh:seq")) == "43"


def test_global_text_from_the_cli_reads_as_str(server, glob):
    server.cli("set", "xh:text", "from-cli", "--ttl", "60")
    assert glob.get("xh:text") == "from-cli"


def test_global_bytes_from_the_http_api_read_as_bytes(server, glob):
    status, body = server.http(
        "PUT",
        "/api/v1/cache/global/keys/xh:bin",
        server.tokens["service"],
        {"value_base64": "/wAB"},  # ff 00 01
    )
    assert status == 200, body
    assert glob.get("xh:bin") == b"\xff\x00\x01"


# ---- a user's namespace ------------------------------------------------------


def test_namespaced_str_both_ways(server, mine):
    mine.set("report", "from-django", 60)
    key = mine.make_key("report")
    assert out(server.cli("get", "--user", USER, key)) == "from-django"
    server.cli("set", "--user", USER, key, "from-cli", "--ttl", "60")
    assert mine.get("report") == "from-cli"


def test_namespaced_bytes_both_ways(server, mine):
    mine.set("blob", b"\xff\x00binary", 60)
    done = cli_bytes(server, "get", "--user", USER, mine.make_key("blob"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip(b"\n") == b"\xff\x00binary"
    status, _ = server.put_user_value(server.tokens["alice"], USER, mine.make_key("blob"), b"\xfe\xfdraw")
    assert status == 200
    assert mine.get("blob") == b"\xfe\xfdraw"


def test_namespaced_int_both_ways(server, mine):
    mine.set("visits", 7, 60)
    key = mine.make_key("visits")
    assert out(server.cli("incr", "--user", USER, key)) == "8"
    assert mine.get("visits") == 8
    server.cli("set", "--user", USER, key, "100", "--ttl", "60")
    assert mine.incr("visits") == 101


def test_invalidation_by_the_cli_is_seen_by_the_next_get(server, mine):
    mine.set("dashboard", {"cards": 3}, 60)
    assert mine.get("dashboard") == {"cards": 3}
    server.cli("invalidate", "--user", USER)
    assert mine.get("dashboard") is None


def test_invalidation_by_the_http_api_is_seen_by_the_next_get(server, mine):
    mine.set("dashboard", {"cards": 4}, 60)
    status, body = server.http("POST", f"/api/v1/users/{USER}/invalidate", server.tokens["admin"])
    assert status == 200, body
    assert mine.get("dashboard") is None
    # The user's own "clear my cache" too.
    mine.set("dashboard", {"cards": 5}, 60)
    status, body = server.http("POST", "/api/v1/me/invalidate", server.tokens["alice"])
    assert status == 200, body
    assert mine.get("dashboard") is None


def test_django_invalidation_is_seen_by_the_cli(server, mine):
    mine.set("report", "x", 60)
    key = mine.make_key("report")
    mine.clear()
    assert server.cli("get", "--user", USER, key).returncode == 1
