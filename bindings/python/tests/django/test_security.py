"""Namespaced values come from untrusted users: a pickle planted through
nscache's HTTP API into a user's own namespace is never unpickled.
"""

from __future__ import annotations

import os
import pickle
import tempfile

import nscache.django
import pytest
from django.core.cache import caches
from nscache.django.serializers import MAGIC, SignedCodec


class Evil:
    """Unpickling this creates ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def marker():
    path = os.path.join(tempfile.mkdtemp(prefix="nscache-pwn-"), "pwned")
    yield path
    if os.path.exists(path):
        os.remove(path)


def test_a_pickle_planted_over_http_is_never_unpickled(server, marker):
    """The attack: a signed-in user writes bytes into their own namespace over
    the HTTP API, at the key Django reads; Django's get must return the
    default and run nothing."""
    # The payload really is dangerous: unpickling it creates the file.
    payload = pickle.dumps(Evil(marker))
    pickle.loads(payload).close()
    assert os.path.exists(marker)
    os.remove(marker)

    user_cache = caches["default"].for_user("4242")
    key = user_cache.make_key("profile")
    token = server.tokens["alice"]
    before = nscache.django.bad_signatures.value

    # 1. A frame with the signed format's magic and a forged signature.
    forged = MAGIC + b"\x00" * 32 + payload
    status, body = server.put_user_value(token, "4242", key, forged)
    assert status == 200, body
    assert user_cache.get("profile", "default") == "default"
    assert user_cache.get_many(["profile"]) == {}
    assert user_cache.get_or_set("profile", lambda: "computed") == "computed"
    assert not os.path.exists(marker)
    assert nscache.django.bad_signatures.value >= before + 3

    # 2. A frame with a truncated signature.
    status, _ = server.put_user_value(token, "4242", key, MAGIC + b"\x01\x02")
    assert status == 200
    assert user_cache.get("profile", "default") == "default"

    # 3. A bare pickle: data, never code (returned as the bytes it is).
    status, _ = server.put_user_value(token, "4242", key, payload)
    assert status == 200
    assert user_cache.get("profile") == payload
    assert not os.path.exists(marker)

    # 4. A value Django signed, replayed at another key: refused.
    user_cache.set("avatar", {"url": "/a.png"})
    signed = user_cache.keyspace.get(user_cache.make_key("avatar"))
    assert signed.startswith(MAGIC)
    status, _ = server.put_user_value(token, "4242", key, signed)
    assert status == 200
    assert user_cache.get("profile", "default") == "default"
    assert user_cache.get("avatar") == {"url": "/a.png"}

    # 5. Another user cannot write into alice's namespace at all.
    status, _ = server.put_user_value(server.tokens["bob"], "4242", key, forged)
    assert status == 403
    assert not os.path.exists(marker)


def test_signatures_bind_user_and_key_and_secret():
    codec = SignedCodec("secret-1")
    raw = codec.dumps({"a": 1}, "42", "k")
    assert raw.startswith(MAGIC)
    assert codec.loads(raw, "42", "k") == {"a": 1}
    for user, key in [("43", "k"), ("42", "k2"), ("4", "2k")]:
        with pytest.raises(nscache.django.BadSignature):
            codec.loads(raw, user, key)
    with pytest.raises(nscache.django.BadSignature):
        SignedCodec("secret-2").loads(raw, "42", "k")
    # A rotated key still verifies through SECRET_KEY_FALLBACKS.
    assert SignedCodec("secret-2", fallbacks=["secret-1"]).loads(raw, "42", "k") == {"a": 1}
    # One flipped bit anywhere in the payload: refused.
    tampered = bytearray(raw)
    tampered[-2] ^= 1
    with pytest.raises(nscache.django.BadSignature):
        codec.loads(bytes(tampered), "42", "k")


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "",
        "42",
        "-7",
        "\udcff",
        b"\xff\xfe",
        b"plain",
        b"",
        b"\x80abc",
        MAGIC + b"x",
        42,
        -3,
        0,
        True,
        None,
        1.5,
        [1, "a"],
        {"k": b"v"},
    ],
)
def test_every_value_comes_back_as_it_went_in(value):
    codec = SignedCodec("s")
    got = codec.loads(codec.dumps(value, "u", "k"), "u", "k")
    assert got == value and type(got) is type(value)


def test_text_bytes_and_integers_are_stored_as_themselves():
    """So that the nscache CLI and the HTTP API read and write them."""
    codec = SignedCodec("s")
    assert codec.dumps("héllo", "u", "k") == "héllo".encode()
    assert codec.dumps(b"\xff\x00", "u", "k") == b"\xff\x00"
    assert codec.dumps(1234, "u", "k") == b"1234"
    # Raw values from other hosts are data: text, bytes or integers.
    assert codec.loads(b"from-cli", "u", "k") == "from-cli"
    assert codec.loads(b"\xff\x00", "u", "k") == b"\xff\x00"
    assert codec.loads(b"-12", "u", "k") == -12
    assert codec.loads(b" 12", "u", "k") == " 12"


def test_a_user_cannot_break_their_reads_with_a_huge_integer():
    """Python refuses int() of more than 4300 digits: such a value, written
    by a user into their own namespace, reads back as text, not as an error."""
    codec = SignedCodec("s")
    digits = b"9" * 5000
    assert codec.loads(digits, "u", "k") == digits.decode()
    assert codec.loads(b"-" + digits, "u", "k") == "-" + digits.decode()
