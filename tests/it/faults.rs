//! Faults, each on a redis-server of the test's own: Redis stopped and
//! restarted under load, restarted empty, evicting under `maxmemory`, frozen.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nscache::store::{L1Options, RedisOptions};
use nscache::{Cache, CacheError, Expiry, LockToken};
use nscache_tests::{RedisServer, raw_connection, unique};

fn options(url: &str, timeout: Duration) -> RedisOptions {
    let mut o = RedisOptions::new(url);
    o.pool_size = 4;
    o.connect_timeout = timeout;
    o.socket_timeout = timeout;
    o
}

async fn cache_on(url: &str, timeout: Duration, l1: bool) -> Cache {
    let builder = Cache::builder()
        .redis(options(url, timeout))
        .key_prefix(unique("p"))
        .namespace_root(unique("ns"));
    let builder = if l1 {
        builder.l1(L1Options {
            max_age: Duration::from_secs(60),
            ..L1Options::default()
        })
    } else {
        builder
    };
    builder.build().await.unwrap()
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;
/// Between phases (Redis being stopped or started): nothing is checked.
const CHANGING: u8 = 3;

/// What the 16 workers saw.
#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    unavailable: AtomicU64,
    stale: AtomicU64,
    /// A read hit while Redis was down.
    hit_while_down: AtomicU64,
    /// A loud operation succeeded while Redis was down.
    loud_ok_while_down: AtomicU64,
    /// An operation was refused while Redis was up.
    refused_while_up: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_under_load_degrades_and_recovers() {
    let mut server = RedisServer::start(&[]);
    let cache = cache_on(&server.url(1), Duration::from_millis(500), false).await;
    let phase = Arc::new(AtomicU8::new(UP));
    let tally = Arc::new(Tally::default());
    let recovered_at: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let restarted: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let mut workers = Vec::new();
    for t in 0..16 {
        let (cache, phase, tally, recovered_at, restarted) = (
            cache.clone(),
            phase.clone(),
            tally.clone(),
            recovered_at.clone(),
            restarted.clone(),
        );
        workers.push(tokio::spawn(async move {
            let user = cache.user(format!("u{t}"));
            let (mut generation, mut dead) = (0u64, HashSet::new());
            let mut recovered = false;
            for i in 0u64.. {
                let now = phase.load(Ordering::SeqCst);
                if now == u8::MAX {
                    break;
                }
                tally.ops.fetch_add(1, Ordering::Relaxed);
                let loud = match i % 6 {
                    0 => {
                        generation += 1;
                        user.set("k", format!("g{generation}"), Expiry::Never)
                            .await
                            .map(drop)
                    }
                    1 => match user.get("k").await {
                        Ok(Some(v)) => {
                            let g: u64 = String::from_utf8_lossy(&v)[1..].parse().unwrap();
                            if dead.contains(&g) {
                                tally.stale.fetch_add(1, Ordering::Relaxed);
                            }
                            if now == DOWN && phase.load(Ordering::SeqCst) == DOWN {
                                tally.hit_while_down.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(())
                        }
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    },
                    2 => {
                        let before = generation;
                        let r = cache.invalidate_user(&format!("u{t}")).await.map(drop);
                        if r.is_ok() {
                            dead.extend(1..=before);
                        }
                        r
                    }
                    3 => cache
                        .global()
                        .add(&format!("once:{t}:{i}"), "1", Expiry::secs(60))
                        .await
                        .map(drop),
                    4 => match cache.global().incr(&format!("ctr:{t}"), 1).await {
                        Err(CacheError::NotFound) => cache
                            .global()
                            .add(&format!("ctr:{t}"), "0", Expiry::Never)
                            .await
                            .map(drop),
                        other => other.map(drop),
                    },
                    _ => {
                        let me = LockToken::from_owner(format!("w{t}"));
                        match cache
                            .lock_as(&format!("lock:{t}"), &me, Duration::from_secs(5))
                            .await
                        {
                            Ok(true) => cache.unlock(&format!("lock:{t}"), &me).await.map(drop),
                            other => other.map(drop),
                        }
                    }
                };
                let loud_op = i % 6 != 0 && i % 6 != 1;
                // Judge only operations that ran wholly inside one phase.
                let now = if phase.load(Ordering::SeqCst) == now {
                    now
                } else {
                    CHANGING
                };
                match loud {
                    Ok(()) => {
                        if now == DOWN && loud_op {
                            tally.loud_ok_while_down.fetch_add(1, Ordering::Relaxed);
                        }
                        if now == BACK && !recovered && loud_op {
                            recovered = true;
                            let since = restarted
                                .lock()
                                .unwrap()
                                .expect("set before BACK")
                                .elapsed();
                            recovered_at.lock().unwrap().push(since);
                        }
                    }
                    Err(CacheError::Unavailable(_)) => {
                        tally.unavailable.fetch_add(1, Ordering::Relaxed);
                        if now == UP {
                            tally.refused_while_up.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => panic!("worker {t}: unexpected error {e}"),
                }
                if now != UP {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phase.store(CHANGING, Ordering::SeqCst);
    server.stop();
    tokio::time::sleep(Duration::from_millis(100)).await; // calls in flight at the kill settle
    phase.store(DOWN, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phase.store(CHANGING, Ordering::SeqCst);
    server.restart(&[]);
    *restarted.lock().unwrap() = Some(Instant::now());
    phase.store(BACK, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    phase.store(u8::MAX, Ordering::SeqCst);
    for w in workers {
        w.await.expect("no worker panicked");
    }
    let recovered = recovered_at.lock().unwrap().clone();
    let slowest = recovered.iter().max().copied().unwrap_or(Duration::MAX);
    println!(
        "16 workers: {} operations, {} refused as unavailable while down; all recovered, the slowest {slowest:?} after Redis returned",
        tally.ops.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed)
    );
    assert_eq!(
        tally.hit_while_down.load(Ordering::Relaxed),
        0,
        "reads miss while Redis is down"
    );
    assert_eq!(
        tally.loud_ok_while_down.load(Ordering::Relaxed),
        0,
        "nothing loud succeeds while Redis is down"
    );
    assert_eq!(
        tally.refused_while_up.load(Ordering::Relaxed),
        0,
        "nothing is refused while Redis is up"
    );
    assert_eq!(
        tally.stale.load(Ordering::Relaxed),
        0,
        "a value from before an invalidation was served after it"
    );
    assert!(
        tally.unavailable.load(Ordering::Relaxed) > 0,
        "the outage was seen"
    );
    assert_eq!(
        recovered.len(),
        16,
        "every worker succeeded again after the restart"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "operations succeed again within 2 s of Redis returning (slowest {slowest:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_reseeds_versions_and_serves_nothing_stale() {
    let mut server = RedisServer::start(&[]);
    for l1 in [false, true] {
        let cache = cache_on(&server.url(1), Duration::from_millis(500), l1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let u = cache.user("7");
        u.set("report", "before", Expiry::Never).await.unwrap();
        let v1 = cache.invalidate_user("7").await.unwrap();
        u.set("report", "current", Expiry::Never).await.unwrap();
        assert_eq!(
            u.get("report").await.unwrap().as_deref(),
            Some(&b"current"[..])
        );
        server.restart(&[]);
        // Without an L1 the first read after the restart misses; an L1 drops
        // its content as soon as it notices its subscription is gone.
        let restarted = Instant::now();
        loop {
            match u.get("report").await.unwrap() {
                None => break,
                Some(_) if l1 && restarted.elapsed() < Duration::from_secs(2) => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                Some(v) => panic!(
                    "served {:?} after Redis restarted empty (l1: {l1})",
                    String::from_utf8_lossy(&v)
                ),
            }
        }
        // The pool's connections died with the server: writes are skipped
        // and loud calls refused until each has reconnected (within 2 s).
        let v2 = loop {
            u.set("report", "after", Expiry::Never).await.unwrap();
            match cache.version_of("7").await {
                Ok(Some(v)) if u.get("report").await.unwrap().is_some() => break v,
                Ok(_) | Err(CacheError::Unavailable(_))
                    if restarted.elapsed() < Duration::from_secs(2) =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                other => panic!("no recovery 2 s after the restart: {other:?}"),
            }
        };
        assert!(
            v2 > v1,
            "the re-created version {v2} was never used before (last one {v1})"
        );
        assert_eq!(
            u.get("report").await.unwrap().as_deref(),
            Some(&b"after"[..])
        );
        let again = cache.invalidate_user("7").await.unwrap();
        assert!(again > v2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_eviction_never_resurrects_a_dead_value() {
    let server = RedisServer::start(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let cache = cache_on(&server.url(1), Duration::from_secs(2), false).await;
    let stale = Arc::new(AtomicU64::new(0));
    let checked = Arc::new(AtomicU64::new(0));
    let reseeded = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for t in 0..8 {
        let (cache, stale, checked, reseeded) = (
            cache.clone(),
            stale.clone(),
            checked.clone(),
            reseeded.clone(),
        );
        workers.push(tokio::spawn(async move {
            let name = format!("u{t}");
            let user = cache.user(name.clone());
            let padding = "x".repeat(2048);
            let mut last_version = 0;
            let mut generation = 0u64;
            while Instant::now() < deadline {
                generation += 1;
                let entries: Vec<(String, String)> = (0..20)
                    .map(|j| (format!("k{j}"), format!("{generation}:{padding}")))
                    .collect();
                user.set_many(&entries, Expiry::Never).await.unwrap();
                if let Some(v) = cache.version_of(&name).await.unwrap()
                    && last_version != 0
                    && v != last_version
                {
                    reseeded.fetch_add(1, Ordering::Relaxed); // the version key was evicted and re-created
                }
                let keys: Vec<String> = (0..20).map(|j| format!("k{j}")).collect();
                // Everything read now is this generation (or evicted).
                for v in user.get_many(&keys).await.unwrap().into_iter().flatten() {
                    let g: u64 = String::from_utf8_lossy(&v)
                        .split(':')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    checked.fetch_add(1, Ordering::Relaxed);
                    if g != generation {
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                }
                last_version = cache.invalidate_user(&name).await.unwrap();
                for v in user.get_many(&keys).await.unwrap().into_iter().flatten() {
                    stale.fetch_add(1, Ordering::Relaxed);
                    let _ = v;
                }
                // Pressure from elsewhere: global keys that push entries and versions out.
                cache
                    .global()
                    .set(&format!("filler:{t}:{generation}"), &padding, Expiry::Never)
                    .await
                    .unwrap();
            }
        }));
    }
    for w in workers {
        w.await.expect("no worker panicked");
    }
    let mut raw = raw_connection(&server.url(1)).await;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut raw)
        .await
        .unwrap();
    let evicted: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    println!(
        "maxmemory 2mb allkeys-lru: {evicted} keys evicted, {} values checked, {} version re-creations seen, {} stale reads",
        checked.load(Ordering::Relaxed),
        reseeded.load(Ordering::Relaxed),
        stale.load(Ordering::Relaxed)
    );
    assert!(evicted > 0, "the test must run under eviction");
    assert!(checked.load(Ordering::Relaxed) > 0);
    assert_eq!(stale.load(Ordering::Relaxed), 0, "stale reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_times_out_at_the_socket_timeout() {
    let server = RedisServer::start(&[]);
    let timeout = Duration::from_millis(300);
    let cache = cache_on(&server.url(1), timeout, false).await;
    cache.user("1").set("k", "v", Expiry::Never).await.unwrap();
    cache.global().set("g", "1", Expiry::Never).await.unwrap();
    server.pause();
    let t0 = Instant::now();
    assert_eq!(
        cache.user("1").get("k").await.unwrap(),
        None,
        "a read degrades to a miss"
    );
    let read = t0.elapsed();
    let t1 = Instant::now();
    assert!(matches!(
        cache.global().add("new", "1", Expiry::Never).await,
        Err(CacheError::Unavailable(_))
    ));
    let loud = t1.elapsed();
    server.resume();
    println!(
        "frozen Redis, socket timeout {timeout:?}: read gave up after {read:?}, add after {loud:?}"
    );
    for elapsed in [read, loud] {
        assert!(
            elapsed >= timeout.mul_f64(0.9),
            "waited for the timeout ({elapsed:?})"
        );
        assert!(
            elapsed < timeout * 3,
            "gave up at the socket timeout, not later ({elapsed:?})"
        );
    }
    // Thawed: service resumes.
    let back = Instant::now();
    loop {
        if cache.user("1").get("k").await.unwrap().is_some() {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cache.global().incr("g", 1).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_value_in_a_reserved_key_is_an_internal_error_not_an_outage() {
    use redis::AsyncCommands;
    let url = nscache_tests::redis_url();
    let (prefix, root) = (unique("p"), unique("ns"));
    let cache = Cache::builder()
        .redis(options(&url, Duration::from_secs(2)))
        .key_prefix(prefix.clone())
        .namespace_root(root.clone())
        .build()
        .await
        .unwrap();
    let mut raw = raw_connection(&url).await;
    // Another client put a list where nscache keeps a string.
    let _: () = raw.rpush(format!("{prefix}:1:k"), "x").await.unwrap();
    let _: () = raw
        .rpush(format!("{root}_user_version:42"), "x")
        .await
        .unwrap();
    let internal = |r: Result<(), CacheError>| matches!(r, Err(CacheError::Internal(_)));
    // (Redis' MGET reads a key of another type as nil, and SET replaces it:
    // global reads and writes do not notice; everything that reads a
    // version, and INCRBY, does.)
    assert!(
        internal(cache.user("42").get("k").await.map(drop)),
        "a namespaced read"
    );
    assert!(
        internal(cache.user("42").set("k", "v", Expiry::Never).await),
        "a namespaced write"
    );
    assert!(
        internal(cache.global().incr("k", 1).await.map(drop)),
        "an increment"
    );
    assert!(
        internal(cache.invalidate_user("42").await.map(drop)),
        "an invalidation"
    );
    let _: () = raw
        .del(&[format!("{prefix}:1:k"), format!("{root}_user_version:42")])
        .await
        .unwrap();
    cache.user("42").set("k", "v", Expiry::Never).await.unwrap();
    assert_eq!(
        cache.user("42").get("k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_with_noeviction_skips_writes_and_refuses_loud_ones() {
    let server = RedisServer::start(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]);
    let cache = cache_on(&server.url(1), Duration::from_secs(2), false).await;
    let g = cache.global();
    g.set("kept", "v", Expiry::Never).await.unwrap();
    let mut raw = raw_connection(&server.url(1)).await;
    let filler = "x".repeat(64 << 10);
    for i in 0.. {
        let written: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("fill:{i}"))
            .arg(&filler)
            .query_async(&mut raw)
            .await;
        if written.is_err() {
            break; // OOM: full
        }
    }
    // A plain write is skipped as during an outage; one whose result the
    // caller acts on says the store is unavailable.
    g.set("k", "v", Expiry::Never).await.unwrap();
    assert_eq!(g.get("k").await.unwrap(), None);
    assert!(matches!(
        g.add("a", "v", Expiry::Never).await,
        Err(CacheError::Unavailable(_))
    ));
    assert_eq!(
        g.get("kept").await.unwrap().as_deref(),
        Some(&b"v"[..]),
        "reads still work"
    );
}
