//! The query cache on a real Postgres (a schema per test) and the shared Redis:
//! hits, automatic invalidation from table triggers, per-table isolation,
//! per-user isolation, transactions, races, O(1) table invalidation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nscache::profiles::StaticProfiles;
use nscache::query::{CachedTransaction, TableWatcher, unwatch_table, watch_table, watched_tables};
use nscache::{Cache, Expiry};
use nscache_tests::server::PgSchema;
use nscache_tests::{Backend, RedisServer, commands_processed, raw_connection};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
struct Invoice {
    id: i32,
    user_id: String,
    amount: i32,
}

const INVOICES: &str = "SELECT id, user_id, amount FROM invoices WHERE user_id = $1 ORDER BY id";
const EVENTS: &str = "SELECT count(*) FROM calendar WHERE user_id = $1";

async fn schema_with_tables() -> (PgSchema, PgPool) {
    let schema = PgSchema::create().await;
    let pool = schema.pool().await;
    for sql in [
        "CREATE TABLE invoices (id SERIAL PRIMARY KEY, user_id TEXT NOT NULL, amount INT NOT NULL)",
        "CREATE TABLE calendar (id SERIAL PRIMARY KEY, user_id TEXT NOT NULL, title TEXT NOT NULL)",
        "INSERT INTO invoices (user_id, amount) VALUES ('u1', 100), ('u1', 250), ('u2', 75)",
        "INSERT INTO calendar (user_id, title) VALUES ('u1', 'standup'), ('u2', 'review')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    (schema, pool)
}

async fn invoices_of(cache: &Cache, pool: &PgPool, user: &str, loads: &AtomicU64) -> Vec<Invoice> {
    cache
        .user(user)
        .get_or_load_json(
            INVOICES,
            &[user],
            &["invoices"],
            Expiry::secs(300),
            || async {
                loads.fetch_add(1, Ordering::SeqCst);
                sqlx::query_as::<_, Invoice>(INVOICES)
                    .bind(user)
                    .fetch_all(pool)
                    .await
            },
        )
        .await
        .unwrap()
}

async fn direct(pool: &PgPool, user: &str) -> Vec<Invoice> {
    sqlx::query_as::<_, Invoice>(INVOICES)
        .bind(user)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_match_the_database_and_an_update_from_another_connection_reloads() {
    let (schema, pool) = schema_with_tables().await;
    let cache = Backend::Redis.cache().await;
    watch_table(&pool, "invoices", "invoices").await.unwrap();
    watch_table(&pool, "invoices", "invoices").await.unwrap(); // idempotent
    assert_eq!(
        watched_tables(&pool).await.unwrap(),
        vec!["invoices".to_owned()]
    );
    let watcher = TableWatcher::spawn(pool.clone(), cache.clone());
    let started = Instant::now();
    while !watcher.is_listening() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the watcher listens"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let loads = AtomicU64::new(0);
    let first = invoices_of(&cache, &pool, "u1", &loads).await;
    assert_eq!(
        first,
        direct(&pool, "u1").await,
        "the cached result is the database's"
    );
    assert_eq!(invoices_of(&cache, &pool, "u1", &loads).await, first);
    assert_eq!(loads.load(Ordering::SeqCst), 1, "the second call is a hit");

    // psql, another service: a second connection that knows nothing of nscache.
    let mut other = PgConnection::connect_with(&schema.options()).await.unwrap();
    let mut delays = Vec::new();
    for round in 0..20 {
        let before = loads.load(Ordering::SeqCst);
        sqlx::query("UPDATE invoices SET amount = amount + 1 WHERE user_id = 'u1'")
            .execute(&mut other)
            .await
            .unwrap();
        let committed = Instant::now();
        loop {
            let rows = invoices_of(&cache, &pool, "u1", &loads).await;
            if loads.load(Ordering::SeqCst) > before {
                assert_eq!(
                    rows,
                    direct(&pool, "u1").await,
                    "reloaded from the database"
                );
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(5),
                "round {round}: the update never invalidated the cache"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        delays.push(committed.elapsed());
    }
    delays.sort();
    println!(
        "invalidation by trigger after an UPDATE on another connection: median {:?}, p99 {:?} (commit to the first call that reloads)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99)
    );
    // TRUNCATE and DELETE are caught too.
    let before = loads.load(Ordering::SeqCst);
    sqlx::query("TRUNCATE invoices")
        .execute(&mut other)
        .await
        .unwrap();
    let truncated = Instant::now();
    while !invoices_of(&cache, &pool, "u1", &loads).await.is_empty() {
        assert!(
            truncated.elapsed() < Duration::from_secs(5),
            "TRUNCATE did not invalidate"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(loads.load(Ordering::SeqCst) > before);
    assert!(unwatch_table(&pool, "invoices").await.unwrap());
    assert!(!unwatch_table(&pool, "invoices").await.unwrap());
    let triggers: i64 =
        // This test's schema only: other tests watch tables of their own.
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE t.tgname LIKE 'nscache_watch%' AND n.nspname = current_schema()",
        )
        .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(triggers, 0);
    drop(watcher);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listen_connection_bumps_every_watched_table() {
    let (schema, pool) = schema_with_tables().await;
    let cache = Backend::Redis.cache().await;
    watch_table(&pool, "invoices", "invoices").await.unwrap();
    let watcher = TableWatcher::spawn(pool.clone(), cache.clone());
    while !watcher.is_listening() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let loads = AtomicU64::new(0);
    invoices_of(&cache, &pool, "u1", &loads).await;
    invoices_of(&cache, &pool, "u1", &loads).await;
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // Kill the watcher's LISTEN session, as a network cut would.
    let killed: i64 = sqlx::query_scalar("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()) t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(killed >= 1, "found the LISTEN connection");
    let cut = Instant::now();
    loop {
        invoices_of(&cache, &pool, "u1", &loads).await;
        if loads.load(Ordering::SeqCst) > 1 {
            break; // the reconnect bumped the table: a change may have been missed
        }
        assert!(
            cut.elapsed() < Duration::from_secs(10),
            "no bump after the LISTEN connection was lost"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(watcher);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_that_name_no_watched_table_are_dropped_and_the_watcher_carries_on() {
    let (schema, pool) = schema_with_tables().await;
    let cache = Backend::Redis.cache().await;
    watch_table(&pool, "invoices", "invoices").await.unwrap();
    let watcher = TableWatcher::spawn(pool.clone(), cache.clone());
    while !watcher.is_listening() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let loads = AtomicU64::new(0);
    invoices_of(&cache, &pool, "u1", &loads).await;
    // Any role may NOTIFY the channel: an empty name, one longer than the
    // cache takes, an unwatched table, SQL.
    let long = "t".repeat(300);
    for payload in [
        "",
        long.as_str(),
        "not_watched_here",
        "x'); DROP TABLE invoices; --",
    ] {
        sqlx::query("SELECT pg_notify('nscache_table_changes', $1)")
            .bind(payload)
            .execute(&pool)
            .await
            .unwrap();
    }
    let sent = Instant::now();
    while watcher.dropped() < 4 {
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "dropped {}",
            watcher.dropped()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Nothing was retried in a loop, and a real change still invalidates.
    sqlx::query("UPDATE invoices SET amount = amount + 1")
        .execute(&pool)
        .await
        .unwrap();
    let changed = Instant::now();
    while loads.load(Ordering::SeqCst) < 2 {
        invoices_of(&cache, &pool, "u1", &loads).await;
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "the watcher stopped working"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(watcher);

    // A relation changed behind nscache's back is checked again before it
    // goes into SQL.
    sqlx::query("CREATE TABLE victim (id INT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE nscache_watched_tables SET relation = 'invoices; DROP TABLE victim' WHERE name = 'invoices'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        unwatch_table(&pool, "invoices").await,
        Err(nscache::query::WatchError::InvalidName(_))
    ));
    let victim: Option<String> = sqlx::query_scalar("SELECT to_regclass('victim')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(victim.as_deref(), Some("victim"), "nothing was dropped");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_one_table_leaves_queries_over_others_cached() {
    let (schema, pool) = schema_with_tables().await;
    let cache = Backend::Redis.cache().await;
    let (inv_loads, cal_loads) = (AtomicU64::new(0), Arc::new(AtomicU64::new(0)));
    let events = || {
        let (cache, pool, loads) = (cache.clone(), pool.clone(), cal_loads.clone());
        async move {
            cache
                .user("u1")
                .get_or_load_json(
                    EVENTS,
                    &["u1"],
                    &["calendar"],
                    Expiry::secs(300),
                    || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        sqlx::query_scalar::<_, i64>(EVENTS)
                            .bind("u1")
                            .fetch_one(&pool)
                            .await
                    },
                )
                .await
                .unwrap()
        }
    };
    invoices_of(&cache, &pool, "u1", &inv_loads).await;
    assert_eq!(events().await, 1);
    cache.invalidate_table("invoices").await.unwrap();
    invoices_of(&cache, &pool, "u1", &inv_loads).await;
    assert_eq!(events().await, 1);
    assert_eq!(inv_loads.load(Ordering::SeqCst), 2, "invoices reloaded");
    assert_eq!(cal_loads.load(Ordering::SeqCst), 1, "calendar still cached");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_never_share_results_and_a_disabled_user_bypasses_only_their_own() {
    let (schema, pool) = schema_with_tables().await;
    let profiles = Arc::new(StaticProfiles::new());
    let cache = Backend::Redis
        .builder()
        .profiles(profiles.clone())
        .build()
        .await
        .unwrap();
    let q = "SELECT count(*) FROM invoices";
    let count = |user: &'static str, loads: Arc<AtomicU64>| {
        let (cache, pool) = (cache.clone(), pool.clone());
        async move {
            cache
                .user(user)
                .get_or_load_json(q, &(), &["invoices"], Expiry::secs(300), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    sqlx::query_scalar::<_, i64>(q).fetch_one(&pool).await
                })
                .await
                .unwrap()
        }
    };
    let (l1, l2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for _ in 0..3 {
        count("u1", l1.clone()).await;
        count("u2", l2.clone()).await;
    }
    assert_eq!(
        (l1.load(Ordering::SeqCst), l2.load(Ordering::SeqCst)),
        (1, 1),
        "the same query, one entry per user"
    );
    profiles.set_cache_enabled("u1", false);
    for _ in 0..3 {
        count("u1", l1.clone()).await;
        count("u2", l2.clone()).await;
    }
    assert_eq!(
        (l1.load(Ordering::SeqCst), l2.load(Ordering::SeqCst)),
        (4, 1),
        "only u1 bypasses"
    );
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_invalidates_on_commit_and_never_on_rollback() {
    let (schema, pool) = schema_with_tables().await;
    let cache = Backend::Redis.cache().await;
    let loads = AtomicU64::new(0);
    let cached = invoices_of(&cache, &pool, "u1", &loads).await;
    assert_eq!(cached.len(), 2);

    let mut tx = CachedTransaction::begin(&cache, &pool).await.unwrap();
    let tx_loads = AtomicU64::new(0);
    // A clean transaction reads through the cache.
    let seen: Vec<Invoice> = tx
        .get_or_load_json(
            &cache.user("u1"),
            INVOICES,
            &["u1"],
            &["invoices"],
            Expiry::secs(300),
            |conn| {
                tx_loads.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    sqlx::query_as::<_, Invoice>(INVOICES)
                        .bind("u1")
                        .fetch_all(conn)
                        .await
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (seen.len(), tx_loads.load(Ordering::SeqCst)),
        (2, 0),
        "a hit"
    );
    sqlx::query("INSERT INTO invoices (user_id, amount) VALUES ('u1', 999)")
        .execute(tx.connection())
        .await
        .unwrap();
    tx.wrote("invoices");
    assert!(tx.is_dirty());
    // Inside the dirty transaction, reads bypass the cache and see the write.
    let inside: Vec<Invoice> = tx
        .get_or_load_json(
            &cache.user("u1"),
            INVOICES,
            &["u1"],
            &["invoices"],
            Expiry::secs(300),
            |conn| {
                tx_loads.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    sqlx::query_as::<_, Invoice>(INVOICES)
                        .bind("u1")
                        .fetch_all(conn)
                        .await
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(inside.len(), 3);
    // Outside, nothing is invalidated before the commit (and nothing uncommitted leaked).
    assert_eq!(invoices_of(&cache, &pool, "u1", &loads).await, cached);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    tx.rollback().await.unwrap();
    assert_eq!(
        invoices_of(&cache, &pool, "u1", &loads).await,
        cached,
        "a rollback invalidates nothing"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    let mut tx = CachedTransaction::begin(&cache, &pool).await.unwrap();
    sqlx::query("INSERT INTO invoices (user_id, amount) VALUES ('u1', 1)")
        .execute(tx.connection())
        .await
        .unwrap();
    tx.wrote("invoices");
    assert_eq!(
        invoices_of(&cache, &pool, "u1", &loads).await.len(),
        2,
        "still cached until the commit"
    );
    tx.commit().await.unwrap();
    assert_eq!(
        invoices_of(&cache, &pool, "u1", &loads).await.len(),
        3,
        "the commit invalidated"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_that_races_an_invalidation_never_has_its_result_served() {
    let (schema, pool) = schema_with_tables().await;
    let cache = Backend::Redis.cache().await;
    let loads = AtomicU64::new(0);
    // The loader reads, then the table changes (and is invalidated) before it returns.
    let stale: Vec<Invoice> = cache
        .user("u1")
        .get_or_load_json(
            INVOICES,
            &["u1"],
            &["invoices"],
            Expiry::secs(300),
            || async {
                loads.fetch_add(1, Ordering::SeqCst);
                let rows = sqlx::query_as::<_, Invoice>(INVOICES)
                    .bind("u1")
                    .fetch_all(&pool)
                    .await?;
                sqlx::query("UPDATE invoices SET amount = 0 WHERE user_id = 'u1'")
                    .execute(&pool)
                    .await?;
                cache.invalidate_table("invoices").await.unwrap();
                Ok::<_, sqlx::Error>(rows)
            },
        )
        .await
        .unwrap();
    assert!(
        stale.iter().all(|i| i.amount != 0),
        "the caller gets what its loader read"
    );
    let fresh = invoices_of(&cache, &pool, "u1", &loads).await;
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "the raced result was not served"
    );
    assert!(fresh.iter().all(|i| i.amount == 0));
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_a_table_with_10000_cached_queries_costs_the_same_as_with_10() {
    table_invalidation_cost(10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: cargo test -- --ignored"]
async fn invalidating_a_table_with_100000_cached_queries_costs_the_same_as_with_10() {
    table_invalidation_cost(100_000).await;
}

async fn table_invalidation_cost(large: u64) {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    let cache = Cache::builder().redis_url(&url).build().await.unwrap();
    async fn fill(cache: &Cache, table: &'static str, n: u64) {
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (cache, next) = (cache.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let user = cache.user(format!("u{}", i % 100));
                        user.get_or_load(
                            "SELECT * FROM t WHERE id = $1",
                            &i.to_be_bytes(),
                            &[table],
                            Expiry::secs(600),
                            || async { Ok::<_, ()>(b"row".to_vec()) },
                        )
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    fill(&cache, "small", 10).await;
    fill(&cache, "large", large).await;
    let mut raw = raw_connection(&url).await;
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert!(keys >= large + 10, "{keys} keys");
    let mut cost = Vec::new();
    for table in ["small", "large"] {
        let before = commands_processed(&mut raw).await;
        cache.invalidate_table(table).await.unwrap();
        cost.push(commands_processed(&mut raw).await - before);
    }
    assert_eq!(
        cost[0], cost[1],
        "Redis commands for 10 and {large} cached queries"
    );
    println!(
        "invalidating a table: {} Redis commands with 10 cached queries, {} with {large}",
        cost[0], cost[1]
    );
    // Every query over `large` is a miss now.
    let reloads = Arc::new(AtomicU64::new(0));
    for i in [0u64, large - 1] {
        let reloads = reloads.clone();
        cache
            .user(format!("u{}", i % 100))
            .get_or_load(
                "SELECT * FROM t WHERE id = $1",
                &i.to_be_bytes(),
                &["large"],
                Expiry::secs(600),
                || async move {
                    reloads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(b"row".to_vec())
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(reloads.load(Ordering::SeqCst), 2);
}
