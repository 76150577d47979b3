#!/usr/bin/env python3
"""nscache.django against django-redis, in one run, on the same Redis.

    python bench_django.py [--redis-url redis://127.0.0.1:6379/15] [--rounds 21] [--ops 1000]

Needs the nscache extension (a release build: ``pip install ./bindings/python``),
Django and django-redis (``tests/requirements.txt``). Measures, through
Django's cache API (``caches[alias].get/set``):

- ``get``: a hit on a global key (a 100-character str value);
- ``set``: the same key and value, TTL 300 s;
- ``namespaced get``: nscache only, a hit in a user's namespace
  (``for_user(id).get``), compared with django-redis' plain ``get``;

each with 1 thread and with 8 threads (operations per second over all threads),
as the median of ``--rounds`` rounds of ``--ops`` operations per thread.
Writes only keys under a prefix unique to the run, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid


def configure(redis_url: str, prefix: str, root: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench-" + uuid.uuid4().hex,
        CACHES={
            "nscache": {
                "BACKEND": "nscache.django.NsCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": prefix,
                "OPTIONS": {"NAMESPACE_ROOT": root},
            },
            "django_redis": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": prefix,
                "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
            },
        },
    )
    django.setup()


def run(op, threads: int, ops: int) -> float:
    """Operations per second of ``op(i)`` over ``threads`` threads."""
    barrier = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)

    def worker():
        barrier.wait()
        for i in range(ops):
            op(i)
        done.wait()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    done.wait()
    elapsed = time.perf_counter() - start
    for t in pool:
        t.join()
    return threads * ops / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("NSCACHE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--ops", type=int, default=1000, help="operations per thread and round")
    parser.add_argument("--threads", default="1,8")
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    prefix, root = f"bench{run_id}", f"benchr{run_id}"
    configure(args.redis_url, prefix, root)
    from django.core.cache import caches

    value = "v" * 100
    caches["nscache"].set("k", value, 300)
    caches["nscache"].for_user("bench-user").set("k", value, 300)

    # Per-thread backend objects, as Django gives them (caches[alias] is thread-local).
    def get(alias):
        return lambda i: caches[alias].get("k")

    def set_(alias):
        return lambda i: caches[alias].set("k", value, 300)

    def user_get(i):
        return caches["nscache"].for_user("bench-user").get("k")

    cases = [
        ("get", get("django_redis"), get("nscache")),
        ("set", set_("django_redis"), set_("nscache")),
        ("namespaced get", get("django_redis"), user_get),
    ]
    threads = [int(t) for t in args.threads.split(",")]
    # Warm up both (connections, component instances, pickling paths).
    for _, theirs, ours in cases:
        run(theirs, 1, 500)
        run(ours, 1, 500)
    assert caches["nscache"].for_user("bench-user").get("k") == value
    assert caches["django_redis"].get("k") == value

    print(
        f"redis {args.redis_url}; median of {args.rounds} rounds x {args.ops} ops per thread (ratio: median of paired rounds)"
    )
    print(f"{'operation':<16}{'threads':>8}{'django-redis ops/s':>20}{'nscache ops/s':>16}{'ratio':>8}")
    for name, theirs, ours in cases:
        for n in threads:
            theirs_rounds, ours_rounds = [], []
            for _ in range(args.rounds):
                # Interleaved, so that load on the machine hits both alike.
                theirs_rounds.append(run(theirs, n, args.ops))
                ours_rounds.append(run(ours, n, args.ops))
            t, o = statistics.median(theirs_rounds), statistics.median(ours_rounds)
            # Each round pair ran back to back: the median of their ratios is
            # steadier than the ratio of medians on a loaded machine.
            ratio = statistics.median(b / a for a, b in zip(theirs_rounds, ours_rounds, strict=True))
            label = name if name != "namespaced get" else "namespaced get*"
            print(f"{label:<16}{n:>8}{t:>20,.0f}{o:>16,.0f}{ratio:>7.2f}x")
    print("* nscache's namespaced get (for_user(id).get) against django-redis' plain get")

    import redis

    client = redis.Redis.from_url(args.redis_url)
    for pattern in (f"{prefix}*", f"{root}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


if __name__ == "__main__":
    main()
