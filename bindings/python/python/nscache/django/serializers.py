"""How nscache.django turns Python values into the bytes nscache stores.

Two formats, one per kind of keyspace:

**Global keys: django-redis' format** (``DefaultClient`` + ``PickleSerializer``,
no compression), so that a running django-redis deployment and this backend
read each other's keys:

- an ``int`` (not a ``bool``, not an ``Enum``) is stored as its decimal
  digits, so Redis' ``INCR`` (and nscache's ``incr``) work on it from both
  sides;
- anything else is ``pickle.dumps(value, protocol)`` (``pickle.DEFAULT_PROTOCOL``
  unless ``OPTIONS["PICKLE_VERSION"]``).

Reading does what django-redis does (``int(raw)`` first, then unpickle), with
one addition: bytes that are neither an integer nor a pickle (every pickle of
protocol 2 or later starts with ``0x80``) are returned as ``str`` when they
are UTF-8, else as ``bytes``, so text written by another host (the ``nscache``
CLI, the HTTP API) reads as text instead of failing. The global keyspace is
written only by trusted code (the server's global routes need the service
role), exactly as with django-redis.

**User namespaces: signed values.** Any signed-in user can write raw bytes
into their own namespace over nscache's HTTP API, so a namespaced value is
never unpickled unless its HMAC (keyed from ``SECRET_KEY`` with
:func:`django.utils.crypto.salted_hmac`, bound to the user and the key) is
valid:

- an ``int`` is stored as its digits (read back only if it is exactly
  ``-?[0-9]+``);
- a ``str`` that is not such an integer is stored as its UTF-8 text, and
  ``bytes`` that are not UTF-8 as themselves, so the ``nscache`` CLI and the
  HTTP API read and write the same values;
- everything else (and the ``str``/``bytes`` the two rules above cannot
  store unambiguously) is ``MAGIC + HMAC-SHA256 + pickle``. ``MAGIC`` starts
  with ``0x80``, which no UTF-8 text starts with.

Reading a namespaced value: digits → ``int``; ``MAGIC`` with a valid
signature → unpickled; ``MAGIC`` with a bad or truncated signature →
:class:`BadSignature` (the cache reports a miss, counts it and logs it, and
never unpickles); anything else → ``str`` if it is UTF-8, else ``bytes``.
"""

from __future__ import annotations

import hmac
import logging
import pickle
import re
import threading
from collections.abc import Sequence
from enum import Enum
from typing import Any

from django.utils.crypto import salted_hmac

logger = logging.getLogger("nscache.django")

#: The first bytes of a signed pickle in a user namespace.
MAGIC = b"\x80nscache-signed:1:"
_DIGEST_BYTES = 32  # HMAC-SHA256
_SALT = "nscache.django.namespaced-value"
_STRICT_INT = re.compile(rb"-?[0-9]+\Z")


class BadSignature(Exception):
    """A namespaced value looks signed but its signature is wrong or missing."""


class _Counter:
    """A thread-safe counter (how many forged or damaged values were refused)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


#: Namespaced values refused because their signature was wrong (per process).
bad_signatures = _Counter()


def _is_plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, (bool, Enum))


class GlobalCodec:
    """django-redis' encoding (see the module documentation)."""

    def __init__(self, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        if _is_plain_int(value):
            return str(value).encode("ascii")
        return pickle.dumps(value, self.protocol)

    def loads(self, raw: bytes) -> Any:
        # django-redis: int(raw), else unpickle. A pickle (protocol >= 2)
        # starts with 0x80 and is never an integer: skip the int() attempt.
        if raw[:1] == b"\x80":
            return pickle.loads(raw)
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw


class SignedCodec:
    """The signed format of user namespaces (see the module documentation)."""

    def __init__(
        self,
        secret: str | bytes,
        protocol: int = pickle.DEFAULT_PROTOCOL,
        fallbacks: Sequence[str | bytes] = (),
    ) -> None:
        if not secret:
            raise ValueError("signing namespaced values needs a non-empty SECRET_KEY")
        self._secret = secret
        # Values signed before a key rotation (SECRET_KEY_FALLBACKS) still verify.
        self._verifiers = [secret, *fallbacks]
        self.protocol = protocol

    @staticmethod
    def _mac(secret: str | bytes, user: str, key: str, payload: bytes) -> bytes:
        # The user and the key are length-prefixed so that no two (user, key)
        # pairs give the same message.
        context = f"{len(user)}:{user}{len(key)}:{key}".encode("utf-8", "surrogatepass")
        return salted_hmac(_SALT, context + payload, secret=secret, algorithm="sha256").digest()

    def _verified(self, mac: bytes, user: str, key: str, payload: bytes) -> bool:
        if len(mac) != _DIGEST_BYTES:
            return False
        ok = False
        for secret in self._verifiers:
            # Every secret is tried: the time taken does not tell which matched.
            ok |= hmac.compare_digest(mac, self._mac(secret, user, key, payload))
        return ok

    def dumps(self, value: Any, user: str, key: str) -> bytes:
        if _is_plain_int(value):
            return str(value).encode("ascii")
        if type(value) is str:
            try:
                raw = value.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: pickled
                raw = None
            if raw is not None and not _STRICT_INT.match(raw):
                return raw
        elif type(value) is bytes and value and not value.startswith(MAGIC[:1]):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return value
        payload = pickle.dumps(value, self.protocol)
        return MAGIC + self._mac(self._secret, user, key, payload) + payload

    def loads(self, raw: bytes, user: str, key: str) -> Any:
        if _STRICT_INT.match(raw):
            try:
                return int(raw)
            except ValueError:
                # More digits than Python converts (sys.int_info's limit): a
                # user may write that much into their own namespace, and it
                # must not turn their reads into errors. It is text.
                return raw.decode("ascii")
        if raw.startswith(MAGIC):
            body = raw[len(MAGIC) :]
            mac, payload = body[:_DIGEST_BYTES], body[_DIGEST_BYTES:]
            if not self._verified(mac, user, key, payload):
                bad_signatures.add()
                logger.warning(
                    "nscache.django: refused a namespaced value with a bad signature "
                    "(user %r, key %r): treated as a miss, not unpickled",
                    user,
                    key,
                )
                raise BadSignature(key)
            return pickle.loads(payload)
        if raw == b"":
            return ""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
