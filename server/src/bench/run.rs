//! Running the scenarios.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;

use super::{BenchOptions, Machine, Report, Row, plot};
use nscache::store::{
    ClusterOptions, ClusterStore, L1Options, RedisOptions, RedisStore, Store, is_cluster_url,
};
use nscache::{Cache, CacheError, Expiry, Keyspace};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The cache could not be built or failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// An operation failed during a measurement.
    #[error("{0}")]
    Failed(String),
    /// Writing the JSON or the plot failed.
    #[error("writing {0}: {1}")]
    Io(String, std::io::Error),
}

/// The raw redis-rs baseline: one server, or a cluster.
enum Raw {
    One(RedisStore),
    Cluster(ClusterStore),
}

/// A raw connection of either kind.
#[derive(Clone)]
enum RawConn {
    One(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for RawConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RawConn::One(c) => c.req_packed_command(cmd),
            RawConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RawConn::One(c) => c.req_packed_commands(cmd, offset, count),
            RawConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RawConn::One(c) => c.get_db(),
            RawConn::Cluster(c) => c.get_db(),
        }
    }
}

impl Raw {
    fn connection(&self) -> RawConn {
        match self {
            Raw::One(store) => RawConn::One(store.connection()),
            Raw::Cluster(store) => RawConn::Cluster(store.connection()),
        }
    }

    fn store(&self) -> &dyn Store {
        match self {
            Raw::One(store) => store,
            Raw::Cluster(store) => store,
        }
    }

    fn url(&self) -> &str {
        match self {
            Raw::One(store) => store.url(),
            Raw::Cluster(store) => store.url(),
        }
    }

    /// The text of `INFO section` from every server (each primary of a
    /// cluster).
    async fn info(&self, section: &str) -> Result<Vec<String>, BenchError> {
        match self {
            Raw::One(store) => Ok(vec![
                redis::cmd("INFO")
                    .arg(section)
                    .query_async(&mut store.connection())
                    .await?,
            ]),
            Raw::Cluster(store) => {
                let mut out = Vec::new();
                for address in store.primaries().await.map_err(failed)? {
                    let mut cmd = redis::cmd("INFO");
                    cmd.arg(section);
                    let value = store.on_node(&address, cmd).await.map_err(failed)?;
                    out.push(redis::from_redis_value(value).map_err(failed)?);
                }
                Ok(out)
            }
        }
    }
}

/// The three implementations, on one Redis (two on a cluster: no L1 there).
struct Setup {
    raw: Raw,
    nscache: Cache,
    l1: Option<Cache>,
    /// A user id as the layout writes it (in a hash tag on a cluster).
    tag: fn(&str) -> String,
    prefix: String,
    root: String,
    /// The storage key of each Zipf user's entry (for raw-redis), when that
    /// scenario runs.
    zipf_keys: Vec<String>,
}

fn raw_conn(setup: &Setup) -> RawConn {
    setup.raw.connection()
}

/// What one cell measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Operations per second in the measured part.
    ops_per_sec: f64,
    /// Median latency, µs.
    p50_us: f64,
    /// 99th percentile latency, µs.
    p99_us: f64,
    /// Operations run in all, warm-up included (what Redis saw).
    ops: u64,
}

/// Run `op(task, i)` from `concurrency` tasks for `warmup + duration`;
/// latencies and throughput over the measured part.
async fn measure<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    op: F,
) -> Result<Measured, BenchError>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + duration;
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let (op, failed) = (op.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut i = 0u64;
            let mut warm = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= stop || failed.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = op(task, i).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                if t0 >= measure_from {
                    samples.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    warm += 1;
                }
                i += 1;
            }
            Ok((samples, warm))
        }));
    }
    let mut all = Vec::new();
    let mut warm = 0;
    for t in tasks {
        let (samples, warmup_ops) = t
            .await
            .map_err(|e| BenchError::Failed(format!("bench task panicked: {e}")))?
            .map_err(BenchError::Failed)?;
        all.extend(samples);
        warm += warmup_ops;
    }
    if all.is_empty() {
        return Err(BenchError::Failed(
            "no operation completed in the measured time".into(),
        ));
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize] as f64;
    Ok(Measured {
        ops_per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        ops: all.len() as u64 + warm,
    })
}

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const VALUE: [u8; 100] = [b'x'; 100];

/// The scenarios measured at every concurrency, in order.
const OP_SCENARIOS: [&str; 8] = [
    "get-hit",
    "get-miss",
    "set",
    "incr",
    "add",
    "namespaced-get",
    "namespaced-get-zipf",
    "get-or-set-contended",
];

/// Users the `namespaced-get-zipf` scenario reads, each holding one entry;
/// user `n` is read with probability ∝ 1/(n+1) (Zipf, s = 1).
const ZIPF_USERS: usize = 10_000;

/// The Zipf distribution's cumulative weights over [`ZIPF_USERS`].
fn zipf_cdf() -> Vec<f64> {
    let weights: Vec<f64> = (1..=ZIPF_USERS).map(|n| 1.0 / n as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

/// The user the `i`-th read of task `t` asks for: a Zipf draw from a
/// splitmix64 hash of (t, i), the same sequence for every implementation.
fn zipf_user(cdf: &[f64], t: usize, i: u64) -> usize {
    let mut z = ((t as u64) << 40 ^ i).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = (z >> 11) as f64 / (1u64 << 53) as f64;
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

/// What one cell runs with: the implementations, the clients, the timing.
#[derive(Clone)]
struct Cell {
    setup: Arc<Setup>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
}

impl Cell {
    /// Measure a raw redis-rs command, built for each (task, iteration).
    async fn raw<C>(&self, command: C) -> Result<Measured, BenchError>
    where
        C: Fn(usize, u64) -> redis::Cmd + Clone + Send + Sync + 'static,
    {
        let setup = self.setup.clone();
        measure(self.clients, self.warmup, self.duration, move |t, i| {
            let (mut conn, command) = (raw_conn(&setup), command(t, i));
            async move {
                command
                    .query_async::<redis::Value>(&mut conn)
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// Measure an operation on `keyspace`, for each (task, iteration).
    async fn on<F, Fut>(&self, keyspace: Keyspace, op: F) -> Result<Measured, BenchError>
    where
        F: Fn(Keyspace, usize, u64) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), CacheError>> + Send,
    {
        measure(self.clients, self.warmup, self.duration, move |t, i| {
            let op = op.clone();
            let keyspace = keyspace.clone();
            async move { op(keyspace, t, i).await.map_err(err) }
        })
        .await
    }
}

/// A raw `GET key`.
fn get_command(key: &str) -> redis::Cmd {
    let mut command = redis::cmd("GET");
    command.arg(key);
    command
}

/// A raw `SET key VALUE PX 300000` (the default TTL).
fn set_command(key: &str) -> redis::Cmd {
    let mut command = redis::cmd("SET");
    command.arg(key).arg(&VALUE[..]).arg("PX").arg(300_000);
    command
}

/// Measure `scenario` on implementation `imp` with `clients` clients.
async fn cell(
    setup: &Arc<Setup>,
    scenario: &str,
    imp: &str,
    clients: usize,
    o: &BenchOptions,
) -> Result<Measured, BenchError> {
    let cell = Cell {
        setup: setup.clone(),
        clients,
        warmup: o.warmup,
        duration: o.duration,
    };
    let cache = match (&setup.l1, imp) {
        (Some(l1), "nscache-l1") => l1.clone(),
        (None, "nscache-l1") => {
            return Err(BenchError::Failed(
                "no L1 on Redis Cluster: --impl raw-redis,nscache".into(),
            ));
        }
        _ => setup.nscache.clone(),
    };
    let prefix = setup.prefix.clone();
    match (scenario, imp == "raw-redis") {
        ("get-hit", true) => {
            let key = format!("{prefix}:1:bench:hit");
            cell.raw(move |_, _| get_command(&key)).await
        }
        ("get-hit", false) => {
            cell.on(cache.global(), |g, _, _| async move {
                g.get("bench:hit").await.map(drop)
            })
            .await
        }
        ("get-miss", true) => {
            cell.raw(move |t, _| get_command(&format!("{prefix}:1:bench:miss:{t}")))
                .await
        }
        ("get-miss", false) => {
            let op = |g: Keyspace, t: usize, _| async move {
                g.get(&format!("bench:miss:{t}")).await.map(drop)
            };
            cell.on(cache.global(), op).await
        }
        ("set", true) => {
            cell.raw(move |t, _| set_command(&format!("{prefix}:1:bench:set:{t}")))
                .await
        }
        ("set", false) => {
            let op = |g: Keyspace, t: usize, _| async move {
                g.set(&format!("bench:set:{t}"), VALUE, Expiry::Default)
                    .await
            };
            cell.on(cache.global(), op).await
        }
        ("incr", true) => {
            let key = format!("{prefix}:1:bench:ctr");
            cell.raw(move |_, _| {
                let mut command = redis::cmd("INCRBY");
                command.arg(&key).arg(1);
                command
            })
            .await
        }
        ("incr", false) => {
            cell.on(cache.global(), |g, _, _| async move {
                g.incr("bench:ctr", 1).await.map(drop)
            })
            .await
        }
        ("add", raw) => add(&cell, &cache, imp, raw).await,
        ("namespaced-get", true) => {
            let version = setup
                .nscache
                .version_of("bench-user")
                .await?
                .ok_or_else(|| BenchError::Failed("bench-user has no namespace".into()))?;
            let key = format!(
                "{}:{}:v{version}:data:hit",
                setup.root,
                (setup.tag)("bench-user")
            );
            cell.raw(move |_, _| get_command(&key)).await
        }
        ("namespaced-get-zipf", true) => {
            let keys = Arc::new(setup.zipf_keys.clone());
            let cdf = Arc::new(zipf_cdf());
            cell.raw(move |t, i| get_command(&keys[zipf_user(&cdf, t, i)]))
                .await
        }
        ("namespaced-get-zipf", false) => {
            let cdf = Arc::new(zipf_cdf());
            let cache = cache.clone();
            cell.on(cache.global(), move |_, t, i| {
                let user = cache.user(format!("zipf{}", zipf_user(&cdf, t, i)));
                async move { user.get("hit").await.map(drop) }
            })
            .await
        }
        ("namespaced-get", false) => {
            cell.on(cache.user("bench-user"), |u, _, _| async move {
                u.get("hit").await.map(drop)
            })
            .await
        }
        ("get-or-set-contended", raw) => contended(&cell, &cache, raw).await,
        (other, _) => Err(BenchError::Failed(format!("unknown scenario {other}"))),
    }
}

/// `add` of a fresh key each time (raw: `SET NX PX`).
async fn add(cell: &Cell, cache: &Cache, imp: &str, raw: bool) -> Result<Measured, BenchError> {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    if raw {
        let prefix = cell.setup.prefix.clone();
        return cell
            .raw(move |t, i| {
                let mut command = redis::cmd("SET");
                command.arg(format!("{prefix}:1:bench:add:raw:{run}:{t}:{i}"));
                command.arg("1").arg("NX").arg("PX").arg(60_000);
                command
            })
            .await;
    }
    let tag = imp.to_owned();
    cell.on(cache.global(), move |g, t, i| {
        let key = format!("bench:add:{tag}:{run}:{t}:{i}");
        async move { g.add(&key, "1", Expiry::secs(60)).await.map(drop) }
    })
    .await
}

/// `get_or_set` on 8 hot keys with a loader that takes 1 ms, while the
/// namespace (or, for raw-redis, the 8 keys) is invalidated every 50 ms.
async fn contended(cell: &Cell, cache: &Cache, raw: bool) -> Result<Measured, BenchError> {
    let prefix = cell.setup.prefix.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let invalidator = {
        let (stop, setup, cache, prefix) = (
            stop.clone(),
            cell.setup.clone(),
            cache.clone(),
            prefix.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if raw {
                    let keys: Vec<String> = (0..8)
                        .map(|k| format!("{prefix}:1:bench:gos:{k}"))
                        .collect();
                    let _: Result<i64, _> = redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async(&mut raw_conn(&setup))
                        .await;
                } else {
                    let _ = cache.invalidate_user("bench-gos").await;
                }
            }
        })
    };
    let result = if raw {
        let setup = cell.setup.clone();
        measure(cell.clients, cell.warmup, cell.duration, move |t, i| {
            let mut conn = raw_conn(&setup);
            let key = format!("{prefix}:1:bench:gos:{}", (t as u64 + i) % 8);
            async move {
                let hit: Option<Vec<u8>> = get_command(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                if hit.is_none() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    set_command(&key)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(err)?;
                }
                Ok(())
            }
        })
        .await
    } else {
        cell.on(cache.user("bench-gos"), |u, t, i| async move {
            let load = || async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, std::convert::Infallible>(VALUE.to_vec())
            };
            let key = format!("gos:{}", (t as u64 + i) % 8);
            u.get_or_set(&key, Expiry::Default, load)
                .await
                .map(drop)
                .map_err(|e| match e {
                    nscache::GetOrSetError::Cache(e) => e,
                    nscache::GetOrSetError::Load(never) => match never {},
                })
        })
        .await
    };
    stop.store(true, Ordering::Relaxed);
    let _ = invalidator.await;
    result
}

async fn fill(cache: &Cache, user: &str, n: u64) -> Result<(), BenchError> {
    let ks = cache.user(user);
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let entries: Vec<(String, &[u8])> = (i..end)
            .map(|k| (format!("entry:{k}"), &VALUE[..32]))
            .collect();
        ks.set_many(&entries, Expiry::secs(900)).await?;
        i = end;
    }
    Ok(())
}

/// django-redis' `delete_pattern`: SCAN + UNLINK per page (on a cluster:
/// SCAN of each primary, each page's UNLINK split per slot by redis-rs).
async fn scan_del(raw: &Raw, pattern: &str) -> Result<u64, BenchError> {
    let mut deleted = 0;
    let nodes: Vec<Option<String>> = match raw {
        Raw::One(_) => vec![None],
        Raw::Cluster(store) => store
            .primaries()
            .await
            .map_err(failed)?
            .into_iter()
            .map(Some)
            .collect(),
    };
    let mut conn = raw.connection();
    for node in nodes {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) = match (&node, raw) {
                (Some(address), Raw::Cluster(store)) => {
                    redis::from_redis_value(store.on_node(address, scan).await.map_err(failed)?)
                        .map_err(failed)?
                }
                _ => scan.query_async(&mut conn).await?,
            };
            if !keys.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await?;
                deleted += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(deleted)
}

async fn invalidation_rows(
    setup: &Setup,
    sizes: &[u64],
    progress: &mut impl Write,
) -> Result<Vec<Row>, BenchError> {
    // Warm every pooled connection first, so that the smallest size does not
    // pay for connecting.
    for _ in 0..200 {
        setup.nscache.invalidate_user("bench-warm-up").await?;
    }
    let mut rows = Vec::new();
    for &n in sizes {
        let user = format!("bench-inv-{n}");
        let _ = write!(
            progress,
            "\r  invalidate-user: filling {n} keys...                    "
        );
        let _ = progress.flush();
        fill(&setup.nscache, &user, n).await?;
        let mut times = Vec::new();
        // Let Redis settle after the fill (it may still be expiring or freeing).
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..21 {
            let t0 = Instant::now();
            setup.nscache.invalidate_user(&user).await?;
            times.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        rows.push(Row {
            scenario: "invalidate-user".into(),
            implementation: "nscache".into(),
            concurrency: 1,
            keys: n,
            ops_per_sec: 1e6 / times[10],
            p50_us: times[10],
            p99_us: times[20],
            ..Row::default()
        });
        let _ = write!(
            progress,
            "\r  invalidate-user: scan-del of {n} keys...                "
        );
        let _ = progress.flush();
        let t0 = Instant::now();
        let deleted = scan_del(
            &setup.raw,
            &format!("{}:{}:*", setup.root, (setup.tag)(&user)),
        )
        .await?;
        let us = t0.elapsed().as_secs_f64() * 1e6;
        if deleted < n {
            return Err(BenchError::Failed(format!(
                "scan-del found {deleted} of {n} keys"
            )));
        }
        rows.push(Row {
            scenario: "invalidate-user".into(),
            implementation: "scan-del".into(),
            concurrency: 1,
            keys: n,
            ops_per_sec: 1e6 / us,
            p50_us: us,
            p99_us: us,
            ..Row::default()
        });
    }
    Ok(rows)
}

/// The three implementations on `options`' Redis, under fresh names, with
/// the data every read scenario finds.
async fn setup(options: &BenchOptions) -> Result<Arc<Setup>, BenchError> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let (prefix, root) = (
        format!("benchp{}x{stamp}", std::process::id()),
        format!("benchns{}x{stamp}", std::process::id()),
    );
    let cluster = is_cluster_url(&options.redis_url);
    let raw = if cluster {
        let mut o = ClusterOptions::new(options.redis_url.clone());
        o.pool_size = options.pool_size;
        Raw::Cluster(ClusterStore::new(&o).map_err(|e| BenchError::Failed(e.to_string()))?)
    } else {
        let mut o = RedisOptions::new(options.redis_url.clone());
        o.pool_size = options.pool_size;
        Raw::One(RedisStore::new(&o).map_err(|e| BenchError::Failed(e.to_string()))?)
    };
    let base = nscache::Settings {
        redis_url: Some(options.redis_url.clone()),
        pool_size: options.pool_size,
        ..nscache::Settings::default()
    };
    let builder = || {
        Cache::builder()
            .settings(base.clone())
            .key_prefix(&prefix)
            .namespace_root(&root)
    };
    let nscache = builder().build().await?;
    let l1 = if cluster {
        None
    } else {
        Some(builder().l1(L1Options::default()).build().await?)
    };
    raw.store()
        .ping()
        .await
        .map_err(|e| BenchError::Failed(format!("Redis at {}: {e}", raw.url())))?;
    tokio::time::sleep(Duration::from_millis(200)).await; // the L1's subscription comes up
    let global = nscache.global();
    global.set("bench:hit", VALUE, Expiry::Never).await?;
    global.set("bench:ctr", "0", Expiry::Never).await?;
    nscache
        .user("bench-user")
        .set("hit", VALUE, Expiry::Never)
        .await?;
    let tag: fn(&str) -> String = if cluster {
        |user| format!("{{{user}}}")
    } else {
        |user| user.to_owned()
    };
    let zipf_keys = if options.selects("namespaced-get-zipf") {
        zipf_users(&nscache, &root, tag).await?
    } else {
        Vec::new()
    };
    Ok(Arc::new(Setup {
        raw,
        nscache,
        l1,
        tag,
        prefix,
        root,
        zipf_keys,
    }))
}

/// Give each Zipf user an entry; their storage keys, in order.
async fn zipf_users(
    cache: &Cache,
    root: &str,
    tag: fn(&str) -> String,
) -> Result<Vec<String>, BenchError> {
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for n in (t..ZIPF_USERS).step_by(16) {
                    let user = cache.user(format!("zipf{n}"));
                    user.set("hit", VALUE, Expiry::Never).await?;
                    let version = cache.version_of(&format!("zipf{n}")).await?;
                    versions.push((n, version));
                }
                Ok::<_, CacheError>(versions)
            })
        })
        .collect();
    let mut keys = vec![String::new(); ZIPF_USERS];
    for t in tasks {
        let versions = t
            .await
            .map_err(|e| BenchError::Failed(format!("filling the Zipf users: {e}")))??;
        for (n, version) in versions {
            let version =
                version.ok_or_else(|| BenchError::Failed(format!("zipf{n} has no namespace")))?;
            keys[n] = format!("{root}:{}:v{version}:data:hit", tag(&format!("zipf{n}")));
        }
    }
    Ok(keys)
}

/// Redis' own counters per command: (calls, µs spent).
async fn command_stats(
    setup: &Setup,
) -> Result<std::collections::BTreeMap<String, (u64, u64)>, BenchError> {
    let infos = setup.raw.info("commandstats").await?;
    let mut stats = std::collections::BTreeMap::new();
    for line in infos.iter().flat_map(|info| info.lines()) {
        let Some((name, fields)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // Summed over a cluster's primaries.
        let entry = stats.entry(name.to_owned()).or_insert((0, 0));
        entry.0 += field("calls");
        entry.1 += field("usec");
    }
    Ok(stats)
}

/// What Redis spent on a cell: µs per client operation, and the commands
/// behind it (`mget 1.00×1.2µs`: calls per operation × µs per call), from
/// two `INFO commandstats` readings (never `CONFIG RESETSTAT`: the Redis
/// may be shared).
fn server_side(
    before: &std::collections::BTreeMap<String, (u64, u64)>,
    after: &std::collections::BTreeMap<String, (u64, u64)>,
    ops: u64,
) -> (f64, String) {
    let ops = ops.max(1) as f64;
    let mut used: Vec<(String, u64, u64)> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .filter_map(|(name, &(calls, usec))| {
            let (c0, u0) = before.get(name).copied().unwrap_or((0, 0));
            let calls = calls.saturating_sub(c0);
            (calls as f64 / ops >= 0.01).then(|| (name.clone(), calls, usec.saturating_sub(u0)))
        })
        .collect();
    used.sort_by_key(|(_, calls, _)| std::cmp::Reverse(*calls));
    let total: u64 = used.iter().map(|(_, _, usec)| usec).sum();
    let commands = used
        .iter()
        .map(|(name, calls, usec)| {
            format!(
                "{name} {:.2}×{:.1}µs",
                *calls as f64 / ops,
                *usec as f64 / (*calls).max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    (total as f64 / ops, commands)
}

/// Every selected (scenario, concurrency, implementation) cell, in order.
async fn op_rows(
    setup: &Arc<Setup>,
    options: &BenchOptions,
    progress: &mut impl Write,
) -> Result<Vec<Row>, BenchError> {
    let scenarios: Vec<&str> = OP_SCENARIOS
        .iter()
        .copied()
        .filter(|s| options.selects(s))
        .collect();
    let implementations: Vec<&str> = ["raw-redis", "nscache", "nscache-l1"]
        .into_iter()
        .filter(|i| {
            options.implementations.is_empty() || options.implementations.iter().any(|o| o == i)
        })
        // No L1 on a cluster.
        .filter(|&i| i != "nscache-l1" || setup.l1.is_some())
        .collect();
    let total = scenarios.len() * options.concurrency.len() * implementations.len();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        for &c in &options.concurrency {
            for &imp in &implementations {
                let _ = write!(
                    progress,
                    "\r[{:>3}/{total}] {scenario:<22} {imp:<11} c={c:<3}                 ",
                    rows.len() + 1
                );
                let _ = progress.flush();
                let cache = match (&setup.l1, imp) {
                    (Some(l1), "nscache-l1") => l1,
                    _ => &setup.nscache,
                };
                let (redis_before, reads_before) =
                    (command_stats(setup).await?, cache.store_stats());
                let m = cell(setup, scenario, imp, c, options).await?;
                let (redis_after, reads_after) = (command_stats(setup).await?, cache.store_stats());
                let (redis_us, commands) = server_side(&redis_before, &redis_after, m.ops);
                let plain = reads_after.plain_reads - reads_before.plain_reads;
                let scripted = reads_after.scripted_reads - reads_before.scripted_reads;
                rows.push(Row {
                    scenario: (*scenario).to_owned(),
                    implementation: imp.to_owned(),
                    concurrency: c,
                    keys: 0,
                    ops_per_sec: m.ops_per_sec,
                    p50_us: m.p50_us,
                    p99_us: m.p99_us,
                    redis_us_per_op: Some(redis_us),
                    redis_commands: Some(commands),
                    plain_read_share: (imp != "raw-redis"
                        && scenario.starts_with("namespaced")
                        && plain + scripted > 0)
                        .then(|| plain as f64 / (plain + scripted) as f64),
                });
            }
        }
    }
    Ok(rows)
}

/// What the results were measured on.
async fn machine(setup: &Setup, options: &BenchOptions) -> Result<Machine, BenchError> {
    let info = setup.raw.info("server").await?.join("\n");
    let redis_version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let os = std::fs::read_to_string("/proc/version")
        .map(|v| v.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| std::env::consts::OS.to_owned());
    Ok(Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os,
        redis_version,
        nscache_version: env!("CARGO_PKG_VERSION"),
        unix_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        duration_secs: options.duration.as_secs_f64(),
    })
}

/// Write the report as JSON and as a plot where the options say.
fn write_outputs(report: &Report, options: &BenchOptions) -> Result<(), BenchError> {
    if let Some(path) = &options.json {
        let text =
            serde_json::to_string_pretty(report).map_err(|e| BenchError::Failed(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| BenchError::Io(path.display().to_string(), e))?;
    }
    if let Some(path) = &options.plot {
        std::fs::write(path, plot::svg(report))
            .map_err(|e| BenchError::Io(path.display().to_string(), e))?;
    }
    Ok(())
}

/// Run the benchmark; progress goes to `progress`.
pub async fn run(options: BenchOptions, progress: &mut impl Write) -> Result<Report, BenchError> {
    let setup = setup(&options).await?;
    let mut rows = op_rows(&setup, &options, progress).await?;
    if options.selects("invalidate-user") {
        rows.extend(invalidation_rows(&setup, &options.invalidation_keys, progress).await?);
    }
    let _ = writeln!(
        progress,
        "\r  cleaning up...                                              "
    );
    scan_del(&setup.raw, &format!("{}:*", setup.prefix)).await?;
    scan_del(&setup.raw, &format!("{}*", setup.root)).await?;
    let report = Report {
        machine: machine(&setup, &options).await?,
        rows,
    };
    write_outputs(&report, &options)?;
    Ok(report)
}
