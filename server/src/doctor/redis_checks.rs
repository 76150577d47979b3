//! The Redis, database-allocation and key checks of the doctor.
//!
//! Everything but the key checks reads `INFO` (one command) and 100 `PING`s;
//! `CONFIG GET` is tried for what `INFO` does not tell (the snapshot
//! schedule) and its refusal is reported, not fatal. The key checks `SCAN`
//! nscache's database once (`COUNT 1000`), classify every key with the
//! component's layout code ([`Layout::classify`]) and then read only the
//! counters, locks and a sample of version keys.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nscache::Settings;
use nscache::store::ClusterOptions;
use nscache_core::layout::{KeyClass, Layout};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};

use super::Check;

/// Every check of this file, in the order they are reported.
const REDIS_IDS: &[&str] = &[
    "redis.reachable",
    "redis.version",
    "redis.config",
    "redis.maxmemory",
    "redis.eviction_policy",
    "redis.persistence",
    "redis.maxclients",
    "redis.latency",
    "redis.cluster",
    "db.allocation",
    "db.tests",
];

const KEY_IDS: &[&str] = &[
    "keys.collisions",
    "keys.invoice_sequences",
    "keys.cron_locks",
    "keys.counters_persistence",
];

/// Versions nscache draws are microseconds of Redis' clock (about 1.7e15 in
/// 2026); a version key below this was written by another system.
const FOREIGN_VERSION_BELOW: u64 = 1_000_000_000_000;

/// Most keys of each kind read back after the scan.
const READ_BACK: usize = 1000;

/// Why Redis could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedisError(pub String);

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> Self {
        RedisError(e.to_string())
    }
}

/// One connection to database `db` of the Redis at `url` (with `tls` for
/// `rediss://`), with `timeout` to connect and per reply. For maintenance
/// commands (doctor, flush, purge), not for the cache's traffic.
pub async fn connect_redis(
    url: &str,
    tls: &nscache::store::RedisTls,
    db: u32,
    timeout: Duration,
) -> Result<MultiplexedConnection, RedisError> {
    let info = url
        .into_connection_info()
        .map_err(|e| RedisError(format!("bad REDIS_URL: {e}")))?;
    let settings = info.redis_settings().clone().set_db(i64::from(db));
    let client = tls
        .client(info.set_redis_settings(settings))
        .map_err(|e| RedisError(e.to_string()))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

/// `INFO` as `field → value`.
fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The keys in database `n` (`INFO keyspace`'s `dbN:keys=…`).
fn keys_in_db(info: &HashMap<String, String>, n: u32) -> u64 {
    info.get(&format!("db{n}"))
        .and_then(|v| v.split(',').find_map(|p| p.strip_prefix("keys=")))
        .and_then(|k| k.parse().ok())
        .unwrap_or(0)
}

/// What the Redis checks learned, for the key checks.
#[derive(Debug, Default)]
struct Facts {
    policy: String,
    /// `Some(true)`: AOF or RDB snapshots on; `Some(false)`: neither;
    /// `None`: unknown (CONFIG refused and AOF off).
    persistent: Option<bool>,
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Run the checks against `settings`' Redis, pushing one [`Check`] per id.
pub(super) async fn run(settings: &Settings, layout: &Layout, scan: bool, out: &mut Vec<Check>) {
    let skip_rest = |out: &mut Vec<Check>, from: usize, why: &str| {
        for id in &REDIS_IDS[from..] {
            out.push(Check::skip(id, why));
        }
        for id in KEY_IDS {
            out.push(Check::skip(id, why).scanning());
        }
    };
    if let Some(options) = settings.cluster_options() {
        return run_cluster(settings, &options, layout, scan, out).await;
    }
    let (Some(url), Some(db)) = (&settings.redis_url, settings.redis_database()) else {
        out.push(Check::warn(
            "redis.reachable",
            "REDIS_URL is not set: the embedded memory store, private to this process (nothing shared between processes, lost at exit)",
            "REDIS_URL=redis://HOST:6379/1 (or --redis-url)",
        ));
        skip_rest(out, 1, "no Redis configured");
        return;
    };
    let shown = nscache::settings::redact_url(url);
    let mut conn = match connect_redis(url, &settings.redis_tls(), db, settings.connect_timeout)
        .await
    {
        Ok(conn) => conn,
        Err(e) => {
            out.push(Check::fail(
                "redis.reachable",
                format!("cannot connect to {shown}: {e}"),
                format!("start Redis or correct REDIS_URL, then: redis-cli -u '{shown}' PING (expect PONG)"),
            ));
            skip_rest(out, 1, "Redis is unreachable");
            return;
        }
    };
    node_checks(&mut conn, settings, &shown, Some(db), layout, scan, out).await;
}

/// The checks of one server (`db`: its database; `None` on a cluster node,
/// which has none), after connecting to it.
async fn node_checks(
    conn: &mut MultiplexedConnection,
    settings: &Settings,
    shown: &str,
    db: Option<u32>,
    layout: &Layout,
    scan: bool,
    out: &mut Vec<Check>,
) {
    let shown = shown.to_owned();
    let skip_rest = |out: &mut Vec<Check>, from: usize, why: &str| {
        for id in &REDIS_IDS[from..] {
            out.push(Check::skip(id, why));
        }
        for id in KEY_IDS {
            out.push(Check::skip(id, why).scanning());
        }
    };
    let info: String = match redis::cmd("INFO").query_async(conn).await {
        Ok(info) => info,
        Err(e) => {
            out.push(Check::fail(
                "redis.reachable",
                format!("{shown} answers, but INFO fails: {e}"),
                "grant this user INFO (ACL: +info), or use an account that has it",
            ));
            skip_rest(out, 1, "INFO is refused");
            return;
        }
    };
    let info = parse_info(&info);
    let get = |k: &str| info.get(k).map(String::as_str).unwrap_or("");
    out.push(Check::ok(
        "redis.reachable",
        match db {
            Some(db) => format!("{shown} answers (database {db})"),
            None => format!("{shown} answers"),
        },
    ));
    let mut facts = Facts::default();

    // Version.
    let version = get("redis_version").to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    out.push(if major >= 7 {
        Check::ok("redis.version", format!("Redis {version}"))
    } else if (major, minor) >= (6, 2) {
        Check::warn(
            "redis.version",
            format!("Redis {version}: nscache is tested with 7.x; 6.2 lacks EXPIRE NX/XX/GT/LT, Functions, sharded pub/sub and LFU-safe OBJECT FREQ fixes"),
            "upgrade to Redis 7 (or a managed service's 7.x)",
        )
    } else {
        Check::fail(
            "redis.version",
            format!("Redis {version}: older than 6.2, it lacks GETEX, SET … GET, PXAT and the ACL and RESP3 nscache is tested with"),
            "upgrade to Redis 7 (or a managed service's 7.x)",
        )
    });

    // CONFIG, for what INFO does not say.
    let config: Result<Vec<String>, redis::RedisError> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query_async(conn)
        .await;
    let save_schedule = match &config {
        Ok(pairs) => {
            out.push(Check::ok(
                "redis.config",
                "CONFIG GET answers (settings read from INFO and CONFIG)",
            ));
            Some(pairs.get(1).cloned().unwrap_or_default())
        }
        Err(e) => {
            out.push(Check::warn(
                "redis.config",
                format!("CONFIG is disabled on this server ({}): settings were read from INFO; the snapshot schedule is unknown", e.to_string().trim()),
                "nothing to change if your provider disables CONFIG (managed services do): read its persistence setting in its console; every other check used INFO",
            ));
            None
        }
    };

    // Memory.
    let maxmemory: u64 = get("maxmemory").parse().unwrap_or(0);
    let used: u64 = get("used_memory").parse().unwrap_or(0);
    out.push(if maxmemory == 0 {
        Check::warn(
            "redis.maxmemory",
            format!("no maxmemory ({} used): Redis grows until the machine runs out; namespaced entries expire, but version keys, counters and locks have no TTL", human_bytes(used)),
            format!("redis-cli -u '{shown}' CONFIG SET maxmemory 1gb (size it to the machine; also `maxmemory 1gb` in redis.conf)"),
        )
    } else {
        Check::ok(
            "redis.maxmemory",
            format!("{} of {} used ({:.0}%)", human_bytes(used), human_bytes(maxmemory), used as f64 * 100.0 / maxmemory as f64),
        )
    });
    let policy = get("maxmemory_policy").to_owned();
    facts.policy = policy.clone();
    out.push(match policy.as_str() {
        "noeviction" => Check::warn(
            "redis.eviction_policy",
            "maxmemory-policy noeviction: once memory is full every write fails — nscache then skips `set` (counted as degraded) and `add`, `incr`, locks and invalidation fail",
            format!("redis-cli -u '{shown}' CONFIG SET maxmemory-policy allkeys-lru (and `maxmemory-policy allkeys-lru` in redis.conf)"),
        ),
        p if p.starts_with("allkeys-") => Check::ok(
            "redis.eviction_policy",
            format!("maxmemory-policy {p}: any key may be evicted, version keys (no TTL) too — nscache re-creates a lost version with a number never used, so no old entry comes back; an evicted counter or lock is lost like any key"),
        ),
        p if p.starts_with("volatile-") => Check::ok(
            "redis.eviction_policy",
            format!("maxmemory-policy {p}: only keys with a TTL are evicted — namespaced entries always have one, version keys, counters and locks are kept; if keys without TTL fill memory, writes fail as under noeviction"),
        ),
        p => Check::warn(
            "redis.eviction_policy",
            format!("maxmemory-policy {p:?} is not one nscache knows"),
            format!("redis-cli -u '{shown}' CONFIG SET maxmemory-policy allkeys-lru"),
        ),
    });

    // Persistence.
    let aof = get("aof_enabled") == "1";
    let rdb = save_schedule.as_ref().map(|s| !s.trim().is_empty());
    facts.persistent = match (aof, rdb) {
        (true, _) => Some(true),
        (false, Some(rdb)) => Some(rdb),
        (false, None) => None,
    };
    out.push(match (aof, &save_schedule) {
        (true, _) => Check::ok("redis.persistence", "AOF on: a restart keeps counters, locks and versions"),
        (false, Some(s)) if !s.trim().is_empty() => Check::ok(
            "redis.persistence",
            format!("RDB snapshots (save {s}), AOF off: a restart loses the writes since the last snapshot"),
        ),
        (false, Some(_)) => Check::warn(
            "redis.persistence",
            "no persistence (no RDB schedule, AOF off): a restart empties Redis — cached entries are fine to lose, invoice sequences and cursors restart",
            format!("redis-cli -u '{shown}' CONFIG SET appendonly yes && redis-cli -u '{shown}' CONFIG REWRITE"),
        ),
        (false, None) => Check::warn(
            "redis.persistence",
            format!("AOF off; whether RDB snapshots are scheduled is unknown (CONFIG is disabled); last snapshot: {}", match get("rdb_saves") { "0" | "" => "none since start".to_owned(), n => format!("{n} since start") }),
            "turn on AOF or snapshots in your provider's console (or `appendonly yes` in redis.conf)",
        ),
    });

    // Clients.
    let maxclients: u64 = get("maxclients").parse().unwrap_or(0);
    let connected: u64 = get("connected_clients").parse().unwrap_or(0);
    let needed = settings.pool_size as u64 * u64::from(settings.processes);
    let sizing = format!(
        "pool-size {} × processes {} = {needed} connections; maxclients {maxclients}, {connected} connected now",
        settings.pool_size, settings.processes
    );
    let clients_fix = format!(
        "raise maxclients (redis-cli -u '{shown}' CONFIG SET maxclients {}; `maxclients` in redis.conf) or lower --pool-size; --processes says how many processes share this Redis",
        (needed * 2).max(maxclients)
    );
    out.push(if maxclients == 0 {
        Check::warn(
            "redis.maxclients",
            "INFO does not report maxclients",
            "check the server's `maxclients` by hand",
        )
    } else if needed > maxclients {
        Check::fail(
            "redis.maxclients",
            format!("{sizing}: connections beyond maxclients are refused"),
            clients_fix,
        )
    } else if needed * 10 > maxclients * 8 {
        Check::warn(
            "redis.maxclients",
            format!("{sizing}: more than 80% of maxclients"),
            clients_fix,
        )
    } else {
        Check::ok("redis.maxclients", sizing)
    });

    // Latency: 100 PINGs, one after the other.
    let mut times = Vec::with_capacity(100);
    let mut ping_error = None;
    for _ in 0..100 {
        let t0 = Instant::now();
        match redis::cmd("PING").query_async::<String>(conn).await {
            Ok(_) => times.push(t0.elapsed()),
            Err(e) => {
                ping_error = Some(e.to_string());
                break;
            }
        }
    }
    times.sort();
    out.push(match ping_error {
        Some(e) => Check::fail("redis.latency", format!("PING failed: {e}"), "check the network to Redis"),
        None => {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let (p50, p99) = (times[49], times[98]);
            let text = format!("100 PINGs: p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99));
            if p99 > Duration::from_millis(5) {
                Check::warn("redis.latency", format!("{text}: over the reference's 5 ms, every cache call waits this long"), "run nscache next to Redis (same host or zone); compare with redis-cli --latency")
            } else {
                Check::ok("redis.latency", text)
            }
        }
    });

    // Cluster (a cluster's own checks are in `run_cluster`).
    let Some(db) = db else {
        if scan {
            key_checks(conn, layout, &facts, &shown, 0, out).await;
        } else {
            for id in KEY_IDS {
                out.push(
                    Check::skip(
                        id,
                        "keys not scanned (run `nscache doctor`: one SCAN of each primary)",
                    )
                    .scanning(),
                );
            }
        }
        return;
    };
    out.push(if get("cluster_enabled") == "1" {
        Check::fail(
            "redis.cluster",
            "this server is a Redis Cluster node, named with redis://: one node serves only its slots",
            "name the cluster: REDIS_URL=redis+cluster://HOST:PORT,HOST:PORT/ (the hash-tagged layout follows)",
        )
    } else {
        Check::ok("redis.cluster", format!("{} (databases available)", match get("redis_mode") { "" => "standalone", m => m }))
    });

    // Databases.
    let queue = settings.task_queue_db;
    out.push(if db == queue {
        Check::fail(
            "db.allocation",
            format!("REDIS_URL selects database {db}, the task queue's (--task-queue-db {queue}): flush and purge would touch its keys"),
            "REDIS_URL=redis://HOST:6379/1 (the reference: 0 task queue, 1 cache, 2 cacheops, 15 tests); if the queue lives elsewhere, say so with --task-queue-db N",
        )
    } else if db == 15 {
        Check::warn(
            "db.allocation",
            "REDIS_URL selects database 15, the tests' database: test runs flush it",
            "REDIS_URL=redis://HOST:6379/1",
        )
    } else {
        Check::ok(
            "db.allocation",
            format!("cache and cached queries in database {db} ({} keys; query results are namespace entries of kind `cacheops`), task queue in database {queue} ({} keys), untouched", keys_in_db(&info, db), keys_in_db(&info, queue)),
        )
    });
    let test_keys = keys_in_db(&info, 15);
    out.push(if db != 15 && test_keys > 0 {
        Check::warn(
            "db.tests",
            format!("database 15 (tests) holds {test_keys} keys on this server: tests run against production data's server"),
            format!("run tests against another Redis; if these are leftovers: redis-cli -u '{shown}' -n 15 FLUSHDB"),
        )
    } else if db == 15 {
        Check::skip("db.tests", "nscache itself uses database 15")
    } else {
        Check::ok("db.tests", "database 15 (tests) is empty")
    });

    if scan {
        key_checks(conn, layout, &facts, &shown, db, out).await;
    } else {
        for id in KEY_IDS {
            out.push(
                Check::skip(
                    id,
                    "keys not scanned (run `nscache doctor`: one SCAN of the database)",
                )
                .scanning(),
            );
        }
    }
}

/// The primaries of the cluster `options` names, each as its address and a
/// maintenance connection, from `CLUSTER NODES` as the first seed node that
/// answers sees it (failed nodes left out).
pub async fn cluster_primaries(
    options: &ClusterOptions,
    timeout: Duration,
) -> Result<Vec<(String, MultiplexedConnection)>, RedisError> {
    let seeds = options.node_urls().map_err(|e| RedisError(e.to_string()))?;
    // TLS files are refused with cluster URLs (`Settings::validate`).
    let plain = nscache::store::RedisTls::default();
    let mut last = RedisError("no seed node".into());
    for seed in &seeds {
        let mut conn = match connect_redis(seed, &plain, 0, timeout).await {
            Ok(conn) => conn,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let nodes: String = match redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
        {
            Ok(nodes) => nodes,
            Err(e) => {
                last = e.into();
                continue;
            }
        };
        // The seed's scheme and credentials, with each primary's address.
        let base = seed
            .rsplit_once('@')
            .map_or_else(|| "redis://".to_owned(), |(head, _)| format!("{head}@"));
        let mut primaries = Vec::new();
        for address in nscache::store::cluster_primaries(&nodes) {
            let conn = connect_redis(&format!("{base}{address}"), &plain, 0, timeout).await?;
            primaries.push((address, conn));
        }
        return Ok(primaries);
    }
    Err(last)
}

fn severity(status: super::Status) -> u8 {
    match status {
        super::Status::Skip => 0,
        super::Status::Ok => 1,
        super::Status::Warn => 2,
        super::Status::Fail => 3,
    }
}

/// The checks on a Redis Cluster: every server check on each primary (each
/// check reports its worst node, named), the cluster's own state and
/// replicas, and the key checks with one SCAN of each primary.
async fn run_cluster(
    settings: &Settings,
    options: &ClusterOptions,
    layout: &Layout,
    scan: bool,
    out: &mut Vec<Check>,
) {
    let shown = nscache::settings::redact_url(&options.url);
    let mut primaries = match cluster_primaries(options, settings.connect_timeout).await {
        Ok(primaries) if !primaries.is_empty() => primaries,
        found => {
            let why = match found {
                Err(e) => e.to_string(),
                Ok(_) => "CLUSTER NODES lists no primary".into(),
            };
            out.push(Check::fail(
                "redis.reachable",
                format!("cannot reach the cluster {shown}: {why}"),
                "start the cluster or correct REDIS_URL (redis+cluster://HOST:PORT,HOST:PORT/), then: redis-cli -c -h HOST -p PORT CLUSTER INFO",
            ));
            for id in &REDIS_IDS[1..] {
                out.push(Check::skip(id, "the cluster is unreachable"));
            }
            for id in KEY_IDS {
                out.push(Check::skip(id, "the cluster is unreachable").scanning());
            }
            return;
        }
    };
    let mut merged: Vec<Check> = Vec::new();
    let mut replicas = Vec::new();
    let mut state = String::new();
    for (address, conn) in &mut primaries {
        let mut node = Vec::new();
        node_checks(conn, settings, address, None, layout, scan, &mut node).await;
        for mut check in node {
            if !check.message.starts_with(address.as_str()) {
                check.message = format!("{address}: {}", check.message);
            }
            match merged.iter_mut().find(|c| c.id == check.id) {
                Some(c) if severity(check.status) > severity(c.status) => *c = check,
                Some(_) => {}
                None => merged.push(check),
            }
        }
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(conn)
            .await
            .unwrap_or_default();
        let linked = parse_info(&info)
            .get("connected_slaves")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        replicas.push((address.clone(), linked));
        if state.is_empty() {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(conn)
                .await
                .unwrap_or_default();
            state = parse_info(&info)
                .get("cluster_state")
                .cloned()
                .unwrap_or_default();
        }
    }
    let names: Vec<&str> = primaries.iter().map(|(a, _)| a.as_str()).collect();
    let wait = settings.cluster_wait_replicas;
    let short: Vec<String> = replicas
        .iter()
        .filter(|(_, n)| *n < wait.max(1))
        .map(|(a, n)| format!("{a} ({n})"))
        .collect();
    let cluster = if state != "ok" {
        Check::fail(
            "redis.cluster",
            format!("cluster_state is {state:?}, not ok: slots are not all served"),
            "redis-cli --cluster check HOST:PORT, then redis-cli --cluster fix HOST:PORT",
        )
    } else if !short.is_empty() && wait > 0 {
        Check::fail(
            "redis.cluster",
            format!(
                "primaries with fewer than {wait} linked replicas: {}: invalidations on their slots fail (WAIT {wait} cannot be confirmed)",
                short.join(", ")
            ),
            "add a replica to each (redis-cli --cluster add-node NEW:PORT HOST:PORT --cluster-slave), or accept losing invalidations at a failover with --cluster-wait-replicas 0",
        )
    } else if wait == 0 {
        Check::warn(
            "redis.cluster",
            format!(
                "Redis Cluster, {} primaries; --cluster-wait-replicas 0: an invalidation is acknowledged before any replica has it, so a failover can undo it and old entries come back",
                names.len()
            ),
            "--cluster-wait-replicas 1 (the default), with a replica per primary",
        )
    } else {
        Check::ok(
            "redis.cluster",
            format!(
                "Redis Cluster, state ok, {} primaries, each with at least {wait} linked replica(s): invalidations are confirmed by WAIT {wait}",
                names.len()
            ),
        )
    };
    let mut by_id = |id: &str| -> Option<Check> {
        let at = merged.iter().position(|c| c.id == id)?;
        Some(merged.remove(at))
    };
    for id in REDIS_IDS {
        let check = match *id {
            "redis.reachable" => Check::ok(
                "redis.reachable",
                format!(
                    "{shown}: {} primaries answer ({})",
                    names.len(),
                    names.join(", ")
                ),
            ),
            "redis.cluster" => cluster.clone(),
            "db.allocation" => Check::ok(
                "db.allocation",
                format!(
                    "Redis Cluster has no databases: nscache's keys ({}:*, {}*) share the cluster's one keyspace, told apart by prefix; keep the task queue on another Redis",
                    layout.global_scan_pattern().trim_end_matches(":*"),
                    layout
                        .namespace_scan_patterns()
                        .first()
                        .map_or("", |p| p.trim_end_matches(":*"))
                ),
            ),
            "db.tests" => Check::skip(
                "db.tests",
                "no databases on a cluster: tests isolate by key prefix",
            ),
            other => {
                by_id(other).unwrap_or_else(|| Check::skip(other, "not reported by any primary"))
            }
        };
        out.push(check);
    }
    for id in KEY_IDS {
        out.push(
            by_id(id).unwrap_or_else(|| Check::skip(id, "not reported by any primary").scanning()),
        );
    }
}

/// What one SCAN found.
#[derive(Debug, Default)]
struct Census {
    total: u64,
    nscache: u64,
    global: u64,
    cacheops: Vec<String>,
    cacheops_count: u64,
    other: Vec<String>,
    other_count: u64,
    version_keys: Vec<String>,
    /// (redis key, application key)
    sequences: Vec<(String, String)>,
    cursors: Vec<(String, String)>,
    locks: Vec<(String, String)>,
}

fn is_cacheops(key: &str) -> bool {
    ["q:", "conj:", "schemes:", "family:"]
        .iter()
        .any(|p| key.starts_with(p))
}

fn is_lock(app_key: &str) -> bool {
    app_key.starts_with("cron:") && app_key.ends_with("lock")
}

fn is_sequence(app_key: &str) -> bool {
    app_key.starts_with("invoice_seq:")
}

fn is_cursor(app_key: &str) -> bool {
    app_key.ends_with(":stream:cursor")
}

async fn census(conn: &mut MultiplexedConnection, layout: &Layout) -> Result<Census, RedisError> {
    let mut census = Census::default();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        for key in keys {
            census.total += 1;
            match layout.classify(&key) {
                Some(KeyClass::Global(app)) => {
                    census.global += 1;
                    if census.locks.len() < READ_BACK && is_lock(&app) {
                        census.locks.push((key, app));
                    } else if census.sequences.len() < READ_BACK && is_sequence(&app) {
                        census.sequences.push((key, app));
                    } else if census.cursors.len() < READ_BACK && is_cursor(&app) {
                        census.cursors.push((key, app));
                    }
                }
                Some(KeyClass::UserVersion(_)) => {
                    census.nscache += 1;
                    if census.version_keys.len() < READ_BACK {
                        census.version_keys.push(key);
                    }
                }
                Some(_) => census.nscache += 1,
                None if is_cacheops(&key) => {
                    census.cacheops_count += 1;
                    if census.cacheops.len() < 3 {
                        census.cacheops.push(key);
                    }
                }
                None => {
                    census.other_count += 1;
                    if census.other.len() < 3 {
                        census.other.push(key);
                    }
                }
            }
        }
        if next == 0 {
            return Ok(census);
        }
        cursor = next;
    }
}

async fn mget(
    conn: &mut MultiplexedConnection,
    keys: &[String],
) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
    let mut values = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let part: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(chunk).query_async(conn).await?;
        values.extend(part);
    }
    Ok(values)
}

async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> Result<i64, RedisError> {
    Ok(redis::cmd("PTTL").arg(key).query_async(conn).await?)
}

fn shown_value(v: &[u8]) -> String {
    let text = String::from_utf8_lossy(v);
    let mut s: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        s.push('…');
    }
    format!("{s:?}")
}

async fn key_checks(
    conn: &mut MultiplexedConnection,
    layout: &Layout,
    facts: &Facts,
    shown: &str,
    db: u32,
    out: &mut Vec<Check>,
) {
    let census = match census(conn, layout).await {
        Ok(c) => c,
        Err(e) => {
            for id in KEY_IDS {
                out.push(
                    Check::fail(
                        id,
                        format!("SCAN failed: {e}"),
                        "grant this user SCAN (ACL: +scan), then run `nscache doctor` again",
                    )
                    .scanning(),
                );
            }
            return;
        }
    };
    let results = key_verdicts(conn, layout, facts, shown, db, &census).await;
    match results {
        Ok(checks) => out.extend(checks.into_iter().map(Check::scanning)),
        Err(e) => {
            for id in KEY_IDS {
                out.push(
                    Check::fail(
                        id,
                        format!("reading keys failed: {e}"),
                        "run `nscache doctor` again",
                    )
                    .scanning(),
                );
            }
        }
    }
}

async fn key_verdicts(
    conn: &mut MultiplexedConnection,
    layout: &Layout,
    facts: &Facts,
    shown: &str,
    db: u32,
    c: &Census,
) -> Result<Vec<Check>, RedisError> {
    let mut checks = Vec::new();

    // Collisions.
    let versions = mget(conn, &c.version_keys).await?;
    let foreign_versions: Vec<String> = c
        .version_keys
        .iter()
        .zip(&versions)
        .filter_map(|(k, v)| {
            let v = v.as_deref()?;
            match std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(n) if n >= FOREIGN_VERSION_BELOW => None,
                _ => Some(format!("{k} = {}", shown_value(v))),
            }
        })
        .collect();
    let summary = format!(
        "{} keys in database {db}: {} nscache namespace keys, {} global keys under {}",
        c.total,
        c.nscache,
        c.global,
        layout.global_scan_pattern()
    );
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if !foreign_versions.is_empty() {
        problems.push(format!(
            "{} version keys hold numbers nscache never draws (a previous hybrid cache's), e.g. {}: their namespaces' old entries (pickled by django-redis) would be read back",
            foreign_versions.len(),
            foreign_versions.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ));
        fixes.push("nscache flush --cache (removes every namespace; global keys stay)".to_owned());
    }
    if c.cacheops_count > 0 {
        problems.push(format!(
            "{} cacheops keys (q:*, conj:*, …), e.g. {}",
            c.cacheops_count,
            c.cacheops.join(", ")
        ));
        fixes.push(format!("after removing cacheops from the application: redis-cli -u '{shown}' -n {db} --scan --pattern 'conj:*' | xargs -r -n 500 redis-cli -u '{shown}' -n {db} UNLINK (and the same for 'q:*')"));
    }
    if c.other_count > 0 {
        problems.push(format!(
            "{} keys nscache does not own (another prefix or application), e.g. {}",
            c.other_count,
            c.other.join(", ")
        ));
        fixes.push("give nscache a database of its own (REDIS_URL=redis://HOST:6379/N with N empty), or move the other application's keys out".to_owned());
    }
    checks.push(if problems.is_empty() {
        Check::ok("keys.collisions", format!("{summary}; no foreign keys"))
    } else {
        Check::warn(
            "keys.collisions",
            format!("{summary}; {}", problems.join("; ")),
            fixes.join("\n"),
        )
    });

    // Invoice sequences (and stream cursors): integers, no expiry.
    let counters: Vec<&(String, String)> = c.sequences.iter().chain(&c.cursors).collect();
    let keys: Vec<String> = counters.iter().map(|(k, _)| k.clone()).collect();
    let values = mget(conn, &keys).await?;
    let mut bad = Vec::new();
    let mut expiring = Vec::new();
    for ((key, app), value) in counters.iter().zip(&values) {
        let Some(value) = value else { continue };
        let integer = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .is_some();
        if !integer {
            bad.push((app.clone(), shown_value(value)));
        } else if pttl(conn, key).await? >= 0 {
            expiring.push((app.clone(), String::from_utf8_lossy(value).into_owned()));
        }
    }
    checks.push(if let Some((app, value)) = bad.first() {
        Check::fail(
            "keys.invoice_sequences",
            format!(
                "{} counters are not integers: {}: `incr` fails on them",
                bad.len(),
                bad.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
            ),
            format!("nscache set {app} N --ttl none   (N: the last number issued, from the invoices table; now {value})"),
        )
    } else if let Some((app, value)) = expiring.first() {
        Check::warn(
            "keys.invoice_sequences",
            format!(
                "{} counters expire: {}: an expired sequence starts again and repeats numbers",
                expiring.len(),
                expiring.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
            ),
            format!("nscache set {app} {value} --ttl none   (while nothing increments it; {value} is its value now)"),
        )
    } else if counters.is_empty() {
        Check::ok("keys.invoice_sequences", "no invoice sequences or stream cursors yet")
    } else {
        Check::ok(
            "keys.invoice_sequences",
            format!("{} sequences and {} cursors, integers without expiry", c.sequences.len(), c.cursors.len()),
        )
    });

    // Cron locks: a lock without TTL is never released.
    let lfu = facts.policy.contains("lfu");
    let mut stuck = Vec::new();
    for (key, app) in &c.locks {
        if pttl(conn, key).await? != -1 {
            continue;
        }
        // Before GET, which would reset the idle time.
        let idle: Result<u64, redis::RedisError> = redis::cmd("OBJECT")
            .arg("IDLETIME")
            .arg(key)
            .query_async(conn)
            .await;
        let idle = match idle {
            Ok(secs) => format!("idle {secs} s"),
            Err(_) if lfu => format!(
                "idle time unknown (maxmemory-policy {} keeps no idle time)",
                facts.policy
            ),
            Err(_) => "idle time unknown".to_owned(),
        };
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(conn).await?;
        let value = value.map_or("(gone)".to_owned(), |v| shown_value(&v));
        stuck.push((app.clone(), format!("{app} = {value}, {idle}")));
    }
    checks.push(if let Some((app, _)) = stuck.first() {
        Check::fail(
            "keys.cron_locks",
            format!(
                "{} stuck locks (no TTL: no worker will take them again): {}",
                stuck.len(),
                stuck
                    .iter()
                    .map(|(_, s)| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            format!("check that no job holds it, then: nscache delete {app}"),
        )
    } else {
        Check::ok(
            "keys.cron_locks",
            format!("{} cron locks held, each with a TTL", c.locks.len()),
        )
    });

    // Counters and locks need persistence.
    let kept = c.sequences.len() + c.cursors.len() + c.locks.len();
    let fix = format!(
        "redis-cli -u '{shown}' CONFIG SET appendonly yes && redis-cli -u '{shown}' CONFIG REWRITE (managed: turn on AOF in the console)"
    );
    checks.push(match (kept, facts.persistent) {
        (0, _) => Check::ok("keys.counters_persistence", "no counters or locks stored yet"),
        (_, Some(true)) => Check::ok(
            "keys.counters_persistence",
            format!("{kept} counters and locks, on a Redis with persistence"),
        ),
        (_, Some(false)) => Check::warn(
            "keys.counters_persistence",
            format!("{kept} counters and locks on a Redis without persistence: a restart resets invoice sequences (duplicate invoice numbers) and cursors"),
            fix,
        ),
        (_, None) => Check::warn(
            "keys.counters_persistence",
            format!("{kept} counters and locks; AOF is off and the snapshot schedule unknown (CONFIG disabled): a restart may reset invoice sequences"),
            fix,
        ),
    });
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read_by_field() {
        let info = parse_info(
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb1:keys=12,expires=3,avg_ttl=0\r\ndb15:keys=4,expires=0,avg_ttl=0\r\n",
        );
        assert_eq!(info["redis_version"], "7.0.15");
        assert_eq!(keys_in_db(&info, 1), 12);
        assert_eq!(keys_in_db(&info, 15), 4);
        assert_eq!(keys_in_db(&info, 2), 0);
    }

    #[test]
    fn key_kinds() {
        assert!(is_lock("cron:full_backup:run_lock"));
        assert!(is_lock("cron:clear_cache:enqueue_lock"));
        assert!(!is_lock("cron:full_backup:last_run"));
        assert!(is_sequence("invoice_seq:2026"));
        assert!(is_cursor("calendar_reminders:stream:cursor"));
        assert!(is_cacheops("conj:invoices:id=1"));
        assert!(!is_cacheops("cache:1:v1:data:k"));
        assert_eq!(shown_value(b"abc"), "\"abc\"");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
