"""The query cache: ``queryset.cache()`` in the user's namespace, the tables
read taken from the compiled query, invalidated by Django's signals after
commit, by ``update()``, and by nscache's Postgres triggers for writes Django
does not see (``psql``)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext, override_settings
from nscache.django.middleware import current_user_cache
from nscache.django.query import tables_of
from nsdj_app.models import Customer, Invoice, Tag

pytestmark = pytest.mark.django_db(transaction=True)

INVOICE = Invoice._meta.db_table
CUSTOMER = Customer._meta.db_table
TAG = Tag._meta.db_table
THROUGH = Invoice.tags.through._meta.db_table


@pytest.fixture
def acme():
    customer = Customer.objects.create(name="ACME", owner_id=1)
    for n in range(3):
        Invoice.objects.create(customer=customer, number=n, total=10 * n)
    return customer


def numbers(qs):
    return sorted(i.number for i in qs)


def queries(fn):
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return result, len(ctx.captured_queries)


# ---- tables read -------------------------------------------------------------


def test_tables_of_joins_m2m_and_subqueries():
    assert tables_of(Invoice.objects.all().query) == {INVOICE}
    assert tables_of(Invoice.objects.filter(customer__name="x").query) == {INVOICE, CUSTOMER}
    assert tables_of(Invoice.objects.filter(tags__label="t").query) == {INVOICE, THROUGH, TAG}
    inner = Customer.objects.filter(name__startswith="A").values("pk")
    assert tables_of(Invoice.objects.filter(customer__in=inner).query) == {INVOICE, CUSTOMER}
    tagged = Tag.objects.filter(invoices=OuterRef("pk"))
    annotated = Invoice.objects.annotate(tagged=Exists(tagged)).filter(tagged=True)
    assert tables_of(annotated.query) == {INVOICE, TAG, THROUGH}
    union = Invoice.objects.filter(number=1).values("pk").union(Tag.objects.values("pk"))
    assert tables_of(union.query) == {INVOICE, TAG}
    assert tables_of(Customer.objects.select_related().filter(invoices__tags__label="x").query) == {
        CUSTOMER,
        INVOICE,
        THROUGH,
        TAG,
    }


# ---- cached and invalidated -----------------------------------------------------


def test_a_cached_queryset_is_served_without_a_query(acme):
    qs = Invoice.objects.filter(customer__name="ACME").order_by("number")
    first, n1 = queries(lambda: list(qs.cache(60, user="u1")))
    again, n2 = queries(lambda: list(qs.cache(60, user="u1")))
    assert (n1, n2) == (1, 0)
    assert [i.number for i in again] == [i.number for i in first] == [0, 1, 2]
    assert again[0].customer_id == acme.pk
    # values() / values_list() are cached as their own entries.
    vals, n3 = queries(lambda: list(qs.values_list("number", flat=True).cache(60, user="u1")))
    vals2, n4 = queries(lambda: list(qs.values_list("number", flat=True).cache(60, user="u1")))
    assert (vals, vals2, n3, n4) == ([0, 1, 2], [0, 1, 2], 1, 0)


def test_two_users_identical_querysets_never_share_an_entry(acme):
    qs = Invoice.objects.filter(customer=acme)
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2]
    # A write Django does not see (no signal, no trigger on this path):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {INVOICE} SET number = number + 100")
    # u2 has no entry of its own: it reads the database.
    (u2, n) = queries(lambda: numbers(qs.cache(60, user="u2")))
    assert (u2, n) == ([100, 101, 102], 1)
    # u1 still has its own (stale, until an invalidation) entry.
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2]


def test_post_save_post_delete_and_update_invalidate(acme):
    qs = Invoice.objects.filter(customer__name="ACME")
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2]
    Invoice.objects.create(customer=acme, number=3)
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2, 3]
    Invoice.objects.get(number=0).delete()
    assert numbers(qs.cache(60, user="u1")) == [1, 2, 3]
    Invoice.objects.filter(number=3).update(number=30)
    assert numbers(qs.cache(60, user="u1")) == [1, 2, 30]
    # A write to a joined table invalidates too.
    Customer.objects.filter(pk=acme.pk).update(name="Other")
    assert numbers(qs.cache(60, user="u1")) == []


def test_m2m_changes_invalidate_queries_over_the_through_table(acme):
    tag = Tag.objects.create(label="paid")
    qs = Invoice.objects.filter(tags__label="paid")
    assert numbers(qs.cache(60, user="u1")) == []
    Invoice.objects.get(number=1).tags.add(tag)
    assert numbers(qs.cache(60, user="u1")) == [1]
    Invoice.objects.get(number=1).tags.clear()
    assert numbers(qs.cache(60, user="u1")) == []


def test_invalidation_waits_for_the_commit(acme):
    qs = Invoice.objects.filter(customer=acme)
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2]

    def read_elsewhere():
        # Another thread: its own connection, outside the transaction.
        try:
            box.append(numbers(qs.cache(60, user="u1")))
        finally:
            connections.close_all()

    with transaction.atomic():
        Invoice.objects.create(customer=acme, number=9)
        box: list = []
        t = threading.Thread(target=read_elsewhere)
        t.start()
        t.join()
        # Not committed: the entry was not invalidated (and nothing dirty was cached).
        assert box == [[0, 1, 2]]
        # Inside the transaction the queryset is not served from the cache.
        assert numbers(qs.cache(60, user="u1")) == [0, 1, 2, 9]
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2, 9]


def test_a_rolled_back_write_invalidates_nothing(acme):
    qs = Invoice.objects.filter(customer=acme)
    assert numbers(qs.cache(60, user="u1")) == [0, 1, 2]
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Invoice.objects.create(customer=acme, number=9)
            raise RuntimeError("rollback")
    (rows, n) = queries(lambda: numbers(qs.cache(60, user="u1")))
    assert (rows, n) == ([0, 1, 2], 0)


def test_the_request_users_namespace_is_used(acme):
    from django.core.cache import caches

    qs = Invoice.objects.filter(customer=acme)
    token = current_user_cache.set(caches["default"].for_user("u9"))
    try:
        assert numbers(qs.cache(60)) == [0, 1, 2]
        (rows, n) = queries(lambda: numbers(qs.cache(60)))
        assert (rows, n) == ([0, 1, 2], 0)
    finally:
        current_user_cache.reset(token)
    # Without a user nothing is cached: every evaluation queries.
    (_, n) = queries(lambda: numbers(qs.cache(60)))
    assert n == 1


def test_a_user_invalidation_drops_their_cached_queries(acme):
    from django.core.cache import caches

    qs = Invoice.objects.filter(customer=acme)
    numbers(qs.cache(60, user="u1"))
    caches["default"].for_user("u1").clear()
    (_, n) = queries(lambda: numbers(qs.cache(60, user="u1")))
    assert n == 1


def test_an_update_from_psql_is_seen_through_the_triggers(server, acme, settings):
    """``nscache watch-table`` installs the triggers; the process's table
    watcher (OPTIONS["WATCH_TABLES_URL"]) hears the psql UPDATE."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    watch = server.cli("watch-table", INVOICE, database_url=url)
    assert watch.returncode == 0, watch.stderr
    settings.CACHES = {
        **settings.CACHES,
        "watched": {
            **settings.CACHES["default"],
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "WATCH_TABLES_URL": url},
        },
    }
    try:
        with override_settings(NSCACHE_QUERY_CACHE_ALIAS="watched"):
            from django.core.cache import caches

            qs = Invoice.objects.filter(customer=acme, number=1)
            user = caches["watched"].for_user("u1")
            assert [i.total for i in qs.cache(60, user=user)] == [10]
            # One UPDATE from psql, then wait for the watcher (a watcher that
            # subscribes late bumps every watched table when it does).
            total = 501
            subprocess.run(
                [
                    "psql",
                    "-h",
                    db["HOST"],
                    "-p",
                    str(db["PORT"]),
                    "-U",
                    db["USER"],
                    "-d",
                    db["NAME"],
                    "-q",
                    "-c",
                    f"UPDATE {INVOICE} SET total = {total} WHERE number = 1",
                ],
                check=True,
                capture_output=True,
            )
            seen = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                seen = [i.total for i in qs.cache(60, user=user)]
                if seen == [total]:
                    break
                time.sleep(0.05)
            assert seen == [total]
    finally:
        server.cli("unwatch-table", INVOICE, database_url=url)
        # Stop this process's watcher (its LISTEN connection holds the test
        # database open); the next cached query starts it again if configured.
        from django.core.cache import caches
        from nscache.django import query

        caches["watched"].nscache.close()
        query._watching.clear()
        _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end(seconds: float = 10.0) -> None:
    """The watcher's connection closes in the background after close()."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(sql)
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


def test_get_and_prefetch_related_on_cached_rows(acme):
    tag = Tag.objects.create(label="t")
    Invoice.objects.get(number=2).tags.add(tag)
    qs = Invoice.objects.filter(customer=acme).cache(60, user="u1")
    first, n1 = queries(lambda: qs.get(number=2).number)
    again, n2 = queries(lambda: qs.get(number=2).number)
    assert (first, again, n1, n2) == (2, 2, 1, 0)
    # Prefetching runs on the cached rows (its own query is not cached).
    rows, n = queries(
        lambda: [(i.number, [t.label for t in i.tags.all()]) for i in qs.prefetch_related("tags").order_by("number")]
    )
    rows2, n2 = queries(
        lambda: [(i.number, [t.label for t in i.tags.all()]) for i in qs.prefetch_related("tags").order_by("number")]
    )
    assert rows == rows2 == [(0, []), (1, []), (2, ["t"])]
    assert (n, n2) == (2, 1)
