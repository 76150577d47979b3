"""The component's conformance kit (tests/conformance/scenarios.json) run
through the Python package, on the memory store and on Redis.

The package offers the public API, not the component's raw exports, a fake
clock or fault injection: so this runner plays every scenario made of public
calls (a `config.configure` first step becomes the cache's options) and
leaves out those that need raw exports, injected faults or direct store
writes (the Rust and Node runners play those). Version numbers come from the
real clock here, not the kit's: they are compared up to an order-preserving
renaming (the same version everywhere it appears, in the same order). On
Redis the store each scenario leaves is compared key by key with the kit's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

import nscache
from pyext_support import REDIS_URL, REPO, Names

KIT = json.loads((REPO / "tests" / "conformance" / "scenarios.json").read_text())
VERSION_FLOOR = 10**15  # version numbers are clock micros: larger than any other number in the kit

PUBLIC = {
    "cache.get", "cache.set", "cache.get-many", "cache.set-many", "cache.add", "cache.delete",
    "cache.delete-many", "cache.has-key", "cache.incr", "cache.decr", "cache.touch", "cache.ttl",
    "cache.persist", "locks.lock", "locks.unlock", "invalidation.invalidate-user",
    "invalidation.invalidate-table", "invalidation.invalidate-all", "invalidation.version-of",
    "invalidation.versions-of",
}

ERROR_CASES = {
    nscache.Unavailable: "unavailable",
    nscache.ValueTooLarge: "value-too-large",
    nscache.InvalidArgument: "invalid-argument",
    nscache.NotFound: "not-found",
    nscache.NotAnInteger: "not-an-integer",
    nscache.InternalError: "internal",
    nscache.ReplyTooLarge: "reply-too-large",
    nscache.QuotaExceeded: "quota-exceeded",
}


def playable(scenario: dict[str, Any]) -> bool:
    for i, step in enumerate(scenario["steps"]):
        if "fail" in step or "host" in step:
            return False
        call = step.get("call")
        if call == "config.configure" and i == 0:
            continue
        if call not in PUBLIC:
            return False
    return "disabled-users" not in scenario


SCENARIOS = [s for s in KIT["scenarios"] if playable(s)]


def test_the_runner_plays_most_of_the_kit() -> None:
    # Guards against a change of the kit silently leaving this runner behind.
    assert len(SCENARIOS) >= 8, [s["name"] for s in SCENARIOS]


def decode(v: Any) -> bytes:
    if isinstance(v, dict):
        return bytes.fromhex(v["hex"])
    return str(v).encode()


def encode(b: bytes) -> Any:
    try:
        return b.decode()
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def ttl_arg(expiry: Any) -> Any:
    if expiry == "default":
        return nscache.DEFAULT
    if expiry == "never":
        return None
    return expiry["after-ms"] / 1000


class Versions:
    """An order-preserving renaming of the kit's version numbers to ours."""

    def __init__(self) -> None:
        self.pairs: dict[int, int] = {}

    def match(self, expected: int, actual: Any) -> None:
        assert isinstance(actual, int), (expected, actual)
        if expected in self.pairs:
            assert self.pairs[expected] == actual, f"version {expected} is {self.pairs[expected]} and {actual}"
            return
        for e, a in self.pairs.items():
            assert (e < expected) == (a < actual) and a != actual, f"versions out of order: {e}->{a}, {expected}->{actual}"
        self.pairs[expected] = actual


def compare(expected: Any, actual: Any, versions: Versions, tolerance_ms: int) -> None:
    if isinstance(expected, int) and not isinstance(expected, bool) and expected >= VERSION_FLOOR:
        versions.match(expected, actual)
    elif isinstance(expected, dict) and "remaining-ms" in expected:
        assert isinstance(actual, dict) and "remaining-ms" in actual, (expected, actual)
        assert expected["remaining-ms"] - tolerance_ms <= actual["remaining-ms"] <= expected["remaining-ms"], (expected, actual)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (expected, actual)
        for e, a in zip(expected, actual):
            compare(e, a, versions, tolerance_ms)
    else:
        assert expected == actual


def ttl_result(seconds: float | None) -> Any:
    if seconds is None:
        return "missing"
    if seconds == float("inf"):
        return "forever"
    return {"remaining-ms": round(seconds * 1000)}


def call(cache: nscache.Cache, name: str, args: list[Any]) -> Any:
    """One kit step through the Python API; the result as the kit encodes it."""
    interface, function = name.split(".")
    if interface == "cache":
        scope, rest = args[0], args[1:]
        ks = cache.global_() if scope == "global" else cache.user(scope["user"])
        match function:
            case "get":
                v = ks.get(rest[0])
                return None if v is None else encode(v)
            case "get-many":
                found = ks.get_many(rest[0])
                return [encode(found[k]) if k in found else None for k in rest[0]]
            case "set":
                return ks.set(rest[0], decode(rest[1]), ttl=ttl_arg(rest[2]))
            case "set-many":
                return ks.set_many({k: decode(v) for k, v in rest[0]}, ttl=ttl_arg(rest[1]))
            case "add":
                return ks.add(rest[0], decode(rest[1]), ttl=ttl_arg(rest[2]))
            case "delete":
                return ks.delete(rest[0])
            case "delete-many":
                return ks.delete_many(rest[0])
            case "has-key":
                return ks.has_key(rest[0])
            case "incr":
                return ks.incr(rest[0], rest[1])
            case "decr":
                return ks.decr(rest[0], rest[1])
            case "touch":
                return ks.touch(rest[0], ttl=ttl_arg(rest[1]))
            case "ttl":
                return ttl_result(ks.ttl(rest[0]))
            case "persist":
                return ks.persist(rest[0])
    if name == "locks.lock":
        key, owner, ms = args
        return cache.lock(key, ms / 1000, token=owner) is not None
    if name == "locks.unlock":
        return cache.unlock(args[0], args[1])
    if name == "invalidation.invalidate-user":
        return cache.invalidate_user(args[0])
    if name == "invalidation.invalidate-table":
        return cache.invalidate_table(args[0])
    if name == "invalidation.invalidate-all":
        return cache.invalidate_all()
    if name == "invalidation.version-of":
        return cache.version_of(args[0])
    if name == "invalidation.versions-of":
        return [cache.version_of(u) for u in args[0]]
    raise AssertionError(f"not a public call: {name}")


def error_case(e: nscache.Error, expected: str) -> str:
    if isinstance(e, nscache.InvalidKey):
        # InvalidKey covers two of the component's cases; its message says which.
        return "key-too-long" if "key too long" in str(e) else "invalid-name"
    return ERROR_CASES[type(e)]


def build(scenario: dict[str, Any], url: str, names: Names) -> nscache.Cache:
    options: dict[str, Any] = {}
    first = scenario["steps"][0]
    if first.get("call") == "config.configure":
        s = first["args"][0]
        assert s["key-prefix"] == "revisbali" and s["namespace-root"] == "cache" and s["key-version"] == 1
        options = {
            "default_ttl": s["default-ttl-ms"] / 1000,
            "max_key_bytes": s["max-key-bytes"],
            "max_value_bytes": s["max-value-bytes"],
            "max_reply_bytes": s["max-reply-bytes"],
            "namespace_quota_bytes": s["namespace-quota-bytes"],
            "max_namespace_ttl": s["max-namespace-ttl-ms"] / 1000,
        }
        assert not s["cluster-hash-tags"]
    return nscache.Cache.from_url(url, key_prefix=names.prefix, namespace_root=names.root, **options)


def their_key(ours: str, names: Names) -> str:
    """A storage key of ours, as the kit names it (default prefix and root)."""
    for mine, kit in ((names.prefix + ":", "revisbali:"), (names.root + ":", "cache:"), (names.root + "_", "cache_")):
        if ours.startswith(mine):
            return kit + ours[len(mine):]
    raise AssertionError(f"a key outside the test's names: {ours}")


def compare_store(expected: dict[str, Any], names: Names, versions: Versions, tolerance_ms: int) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    actual: dict[str, Any] = {}
    for raw in names.keys():
        key = their_key(raw.decode(), names)
        value = client.get(raw)
        pttl = client.pttl(raw)
        assert value is not None
        actual[key] = {"value": encode(value), "ttl": "forever" if pttl == -1 else {"remaining-ms": pttl}}
    client.close()

    def numbers(text: str) -> list[int]:
        import re

        return [int(n) for n in re.findall(r"\d{16,}", text)]

    # Version numbers in keys and values: pair them in order, then rename ours.
    expected_numbers = sorted({n for k, v in expected.items() for n in numbers(k) + numbers(json.dumps(v["value"]))})
    actual_numbers = sorted({n for k, v in actual.items() for n in numbers(k) + numbers(json.dumps(v["value"]))})
    assert len(expected_numbers) == len(actual_numbers), (sorted(expected), sorted(actual))
    for e, a in zip(expected_numbers, actual_numbers):
        versions.match(e, a)
    back = {a: str(e) for e, a in versions.pairs.items()}

    def rename(text: str) -> str:
        import re

        return re.sub(r"\d{16,}", lambda m: back.get(int(m.group()), m.group()), text)

    renamed = {rename(k): {**v, "value": rename(v["value"]) if isinstance(v["value"], str) else v["value"]} for k, v in actual.items()}
    assert sorted(renamed) == sorted(expected)
    for key, want in expected.items():
        got = renamed[key]
        assert got["value"] == want["value"], key
        compare(want["ttl"], got["ttl"], versions, tolerance_ms)


@pytest.mark.parametrize("store", ["memory", "redis"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any], store: str, names: Names) -> None:
    tolerance = KIT["ttl-tolerance-ms"]
    cache = build(scenario, "memory://" if store == "memory" else REDIS_URL, names)
    versions = Versions()
    for number, step in enumerate(scenario["steps"], 1):
        if step["call"] == "config.configure":
            continue
        where = f"{scenario['name']} step {number}: {step['call']}{step['args']}"
        expected = step["expect"]
        try:
            result = call(cache, step["call"], step["args"])
        except nscache.Error as e:
            assert "err" in expected, f"{where}: raised {e!r}, expected {expected}"
            assert error_case(e, expected["err"]) == expected["err"], f"{where}: {e!r}"
            continue
        assert "ok" in expected, f"{where}: returned {result!r}, expected {expected}"
        try:
            compare(expected["ok"], result, versions, tolerance)
        except AssertionError as e:
            raise AssertionError(f"{where}: expected {expected['ok']!r}, got {result!r} ({e})") from None
    if store == "redis":
        compare_store(scenario["store"], names, versions, tolerance)
    cache.close()
