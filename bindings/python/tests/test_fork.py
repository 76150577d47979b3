"""Fork safety: a cache used before os.fork() works in the parent and in the
child; the child builds its own runtime and connections and never uses or
closes the parent's."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
import traceback

import nscache
from pyext_support import PrivateRedis


def in_child(body) -> int:  # type: ignore[no-untyped-def]
    """Fork; run `body` in the child and exit with 0 if it passed. Returns the pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:  # noqa: BLE001 - reported on stderr, exit code checked
            traceback.print_exc()
            sys.stderr.flush()
        os._exit(code)
    return pid


def wait_ok(pid: int, limit: float = 120.0) -> None:
    """Wait for the child; a child that hangs (the fault these tests look
    for) is killed after `limit` seconds and fails the test."""
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the child hung for {limit:.0f} s and was killed")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed (see its traceback above)"


def our_clients(server: PrivateRedis) -> set[int]:
    """Ids of the connections to the private Redis, except the test's own."""
    own = server.client.client_id()
    return {int(c["id"]) for c in server.client.client_list()} - {own}


def test_parent_and_child_interleave_1000_ops(redis_cache: nscache.Cache) -> None:
    g = redis_cache.global_()
    u = redis_cache.user(7)
    g.add("counter", b"0", ttl=None)
    u.set("shared", b"parent")
    assert g.get("counter") == b"0"  # the parent's runtime and sockets exist now

    def child() -> None:
        assert g.get("counter") is not None
        assert u.get("shared") == b"parent"
        for i in range(250):
            g.incr("counter")
            u.set(f"child:{i}", str(i).encode())
            assert u.get(f"child:{i}") == str(i).encode()
        assert redis_cache.user(7).get_or_set("from-child", lambda: b"c") == b"c"

    pid = in_child(child)
    for i in range(250):
        g.incr("counter")
        u.set(f"parent:{i}", str(i).encode())
        assert u.get(f"parent:{i}") == str(i).encode()
    wait_ok(pid)
    # 500 increments from each side on one key, none lost; the child's writes
    # are the parent's to read.
    assert g.get("counter") == b"500"
    assert u.get("child:249") == b"249"
    assert u.get("from-child") == b"c"
    # The parent keeps working after the child exited.
    g.incr("counter")
    assert g.get("counter") == b"501"


def test_a_child_can_drop_a_cache_the_parent_used() -> None:
    """A forked worker that exits normally lets go of the caches it inherited:
    dropping the parent's runtime in the child would hang it."""
    holder = [nscache.Cache.memory()]
    holder[0].global_().set("k", b"v")  # the parent's runtime exists now

    def child() -> None:
        holder.clear()
        gc.collect()

    wait_ok(in_child(child), limit=60.0)
    assert holder[0].global_().get("k") == b"v"


def test_child_never_closes_the_parents_connections(private_redis: PrivateRedis) -> None:
    cache = nscache.Cache.from_url(private_redis.url)
    cache.global_().set("k", b"v")
    parents = our_clients(private_redis)
    assert parents, "the parent is connected"

    def child() -> None:
        assert cache.global_().get("k") == b"v"
        cache.global_().set("k", b"child")
        cache.close()  # closes the child's own state only

    wait_ok(in_child(child))
    # Every connection the parent had is still open (the child's are gone or
    # new ones), and the parent goes on using them.
    assert parents <= our_clients(private_redis)
    assert cache.global_().get("k") == b"child"
    assert parents <= our_clients(private_redis)
    cache.close()


def test_fork_chain_and_memory_store() -> None:
    # memory:// is private to a process: a child starts with an empty store.
    cache = nscache.Cache.memory()
    cache.global_().set("k", b"parent")

    def child() -> None:
        assert cache.global_().get("k") is None
        cache.global_().set("k", b"child")
        assert cache.global_().get("k") == b"child"
        wait_ok(in_child(lambda: cache.global_().get_or_set("g", lambda: b"grandchild")))

    wait_ok(in_child(child))
    assert cache.global_().get("k") == b"parent"
