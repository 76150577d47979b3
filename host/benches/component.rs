//! Criterion benches of the host, each beside its baseline in the same group:
//! - `call-overhead`: a global `get` through the component (memory store)
//!   beside the same logic compiled natively (`nscache-core` over its `MapHost`);
//! - `namespaced-get`: a user `get` through nscache on Redis beside a raw
//!   redis-rs `GET` of the same storage key, and with the L1 (needs Redis at
//!   `NSCACHE_BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/14`; skipped
//!   when it does not answer).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nscache::store::{L1Options, RedisOptions, RedisStore, Store};
use nscache::{Cache, Expiry};

fn call_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = rt.block_on(Cache::memory()).unwrap();
    rt.block_on(cache.global().set("k", "value", Expiry::Never))
        .unwrap();
    let host = nscache_core::MapHost::new();
    let native = nscache_core::Cache::default();
    native
        .set(
            &host,
            &nscache_core::Scope::Global,
            "k",
            b"value",
            nscache_core::Expiry::Never,
        )
        .unwrap();

    let mut group = c.benchmark_group("call-overhead");
    group.bench_function("native-core-get", |b| {
        b.iter(|| {
            native
                .get(&host, &nscache_core::Scope::Global, black_box("k"))
                .unwrap()
        })
    });
    let g = cache.global();
    group.bench_function("component-get-memory-store", |b| {
        b.iter(|| rt.block_on(g.get(black_box("k"))).unwrap())
    });
    let u = cache.user("42");
    rt.block_on(u.set("k", "value", Expiry::Never)).unwrap();
    group.bench_function("component-namespaced-get-memory-store", |b| {
        b.iter(|| rt.block_on(u.get(black_box("k"))).unwrap())
    });
    // The alternative to the instance pool: a fresh instance for every call.
    let fresh = rt
        .block_on(Cache::builder().max_idle_instances(0).build())
        .unwrap();
    rt.block_on(fresh.global().set("k", "value", Expiry::Never))
        .unwrap();
    let fg = fresh.global();
    group.bench_function("component-get-new-instance-per-call", |b| {
        b.iter(|| rt.block_on(fg.get(black_box("k"))).unwrap())
    });
    group.finish();
}

fn namespaced_get(c: &mut Criterion) {
    let url = std::env::var("NSCACHE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/14".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let raw = RedisStore::new(&RedisOptions::new(&url)).unwrap();
    if rt.block_on(raw.ping()).is_err() {
        eprintln!("namespaced-get: no Redis at {url}, skipped");
        return;
    }
    let root = format!("cbench{}", std::process::id());
    let cache = rt
        .block_on(
            Cache::builder()
                .redis_url(&url)
                .namespace_root(&root)
                .build(),
        )
        .unwrap();
    let l1 = rt
        .block_on(
            Cache::builder()
                .redis_url(&url)
                .namespace_root(&root)
                .l1(L1Options::default())
                .build(),
        )
        .unwrap();
    rt.block_on(cache.user("42").set("page", "value", Expiry::secs(600)))
        .unwrap();
    let version = rt.block_on(cache.version_of("42")).unwrap().unwrap();
    let key = format!("{root}:42:v{version}:data:page");

    let mut group = c.benchmark_group("namespaced-get");
    group.bench_function("raw-redis-get", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut conn = raw.connection();
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<Vec<u8>>>(&mut conn)
                    .await
                    .unwrap()
            })
        })
    });
    let u = cache.user("42");
    group.bench_function("nscache", |b| {
        b.iter(|| rt.block_on(u.get("page")).unwrap())
    });
    let ul1 = l1.user("42");
    group.bench_function("nscache-l1", |b| {
        b.iter(|| rt.block_on(ul1.get("page")).unwrap())
    });
    group.finish();
}

/// A cached query result beside the same query run on Postgres directly
/// (needs Postgres at `NSCACHE_BENCH_DATABASE_URL`, default the test database,
/// and Redis as above; skipped when either does not answer).
fn queries(c: &mut Criterion) {
    let pg = std::env::var("NSCACHE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis_url = std::env::var("NSCACHE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/14".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let Ok(pool) = rt.block_on(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&pg),
    ) else {
        eprintln!("queries: no Postgres at {pg}, skipped");
        return;
    };
    let table = format!("bench_invoices_{}", std::process::id());
    rt.block_on(async {
        sqlx::query(&format!("CREATE TABLE {table} (id SERIAL PRIMARY KEY, user_id TEXT NOT NULL, amount INT NOT NULL)")).execute(&pool).await.unwrap();
        sqlx::query(&format!("INSERT INTO {table} (user_id, amount) SELECT 'u' || (i % 100), i FROM generate_series(1, 10000) i")).execute(&pool).await.unwrap();
    });
    let sql = format!("SELECT id, amount FROM {table} WHERE user_id = $1 ORDER BY id");
    let cache = rt
        .block_on(
            Cache::builder()
                .redis_url(&redis_url)
                .namespace_root(format!("qbench{}", std::process::id()))
                .build(),
        )
        .unwrap();
    let load = || async {
        let rows: Vec<(i32, i32)> = sqlx::query_as(&sql).bind("u7").fetch_all(&pool).await?;
        Ok::<_, sqlx::Error>(rows)
    };
    let mut group = c.benchmark_group("query-cache");
    group.bench_function("postgres-direct", |b| {
        b.iter(|| rt.block_on(load()).unwrap())
    });
    let u = cache.user("u7");
    let tables = [table.as_str()];
    group.bench_function("nscache-hit", |b| {
        b.iter(|| {
            rt.block_on(u.get_or_load_json::<Vec<(i32, i32)>, _, _, _, _>(
                &sql,
                &["u7"],
                &tables,
                Expiry::secs(600),
                load,
            ))
            .unwrap()
        })
    });
    group.bench_function("nscache-miss", |b| {
        b.iter(|| {
            rt.block_on(async {
                cache.invalidate_table(&table).await.unwrap();
                u.get_or_load_json::<Vec<(i32, i32)>, _, _, _, _>(
                    &sql,
                    &["u7"],
                    &tables,
                    Expiry::secs(600),
                    load,
                )
                .await
                .unwrap()
            })
        })
    });
    group.finish();
    rt.block_on(sqlx::query(&format!("DROP TABLE {table}")).execute(&pool))
        .unwrap();
}

criterion_group!(benches, call_overhead, namespaced_get, queries);
criterion_main!(benches);
