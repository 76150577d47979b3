"""``UserCacheMiddleware``: ``request.user_cache`` is the signed-in user's
namespace, or a bypass when their ``cache_enabled`` flag is off; the flag is
the one the nscache server and its admin UI toggle, seen by Django's next
request."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import caches
from django.test import Client, override_settings
from nscache.django.middleware import BypassCache, user_cache_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(db):
    user = User.objects.create(pk=4242, username="alice")
    yield user
    caches["profiled"].for_user("4242").clear()


def get_json(client, path="/mine/"):
    reply = client.get(path)
    assert reply.status_code == 200
    return reply.json()


def set_flag(server, user_id: str, enabled: bool) -> None:
    # The route the admin UI's toggle calls.
    status, body = server.http("PUT", f"/api/v1/users/{user_id}/cache", server.tokens["admin"], {"enabled": enabled})
    assert status == 200, body


def wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@override_settings(NSCACHE_USER_CACHE_ALIAS="profiled")
def test_a_toggle_in_the_admin_ui_is_seen_by_the_next_request(server, alice):
    client = Client()
    client.force_login(alice)
    set_flag(server, "4242", True)

    first = get_json(client)
    assert first == {"enabled": True, "cache": "UserCache", "visits": 1, "note": None}
    assert get_json(client)["visits"] == 2

    # The user's namespace is nscache's: the server sees the same entries.
    key = caches["profiled"].for_user("4242").make_key("note")
    status, _ = server.put_user_value(server.tokens["alice"], "4242", key, b"hello from the API")
    assert status == 200
    assert get_json(client)["note"] == "hello from the API"

    set_flag(server, "4242", False)
    off = get_json(client)
    assert off == {"enabled": False, "cache": "BypassCache", "visits": None, "note": None}
    assert get_json(client)["visits"] is None

    set_flag(server, "4242", True)
    on = get_json(client)
    # Back on: the toggle invalidated the namespace (as the server does), so
    # neither the entries from before nor anything from the "off" requests
    # is served: counting starts again.
    assert on == {"enabled": True, "cache": "UserCache", "visits": 1, "note": None}


@override_settings(NSCACHE_USER_CACHE_ALIAS="profiled")
def test_another_users_toggle_does_not_touch_this_one(server, alice):
    User.objects.create(pk=4343, username="bob")
    set_flag(server, "4242", True)
    set_flag(server, "4343", False)
    client = Client()
    client.force_login(alice)
    assert get_json(client)["cache"] == "UserCache"
    set_flag(server, "4343", True)


def test_anonymous_requests_get_the_bypass_cache(db):
    reply = Client().get("/mine/")
    assert reply.json() == {"enabled": False, "cache": "BypassCache", "visits": None, "note": None}


def test_the_bypass_cache_misses_and_stores_nothing():
    bypass = user_cache_for(AnonymousUser())
    assert isinstance(bypass, BypassCache)
    bypass.set("k", "v")
    assert bypass.get("k", "default") == "default"
    assert bypass.add("k", "v") is True
    assert bypass.get_many(["k"]) == {}


def test_the_user_cache_is_resolved_only_when_used(alice, monkeypatch):
    """A request that never touches request.user_cache costs no flag lookup."""
    calls = []
    backend = caches["default"]
    monkeypatch.setattr(type(backend), "cache_enabled", lambda self, uid: calls.append(uid) or True)
    client = Client()
    client.force_login(alice)
    from django.http import HttpRequest
    from nscache.django.middleware import UserCacheMiddleware

    seen = {}

    def view(request):
        seen["request"] = request
        return None

    request = HttpRequest()
    request.user = alice
    UserCacheMiddleware(view)(request)
    assert calls == []
    assert seen["request"].user_cache.get("nothing") is None
    assert calls == ["4242"]
