//! The in-process L1: coherence across processes over pub/sub, and what
//! happens when the subscription is lost.

use std::time::{Duration, Instant};

use nscache::store::{L1Options, RedisOptions};
use nscache::{Cache, Expiry};
use nscache_tests::{RedisServer, raw_connection, redis_url, unique};

/// Two "processes" (separate caches, separate L1s and subscriptions) on one Redis.
async fn pair(url: &str, max_age: Duration) -> (Cache, Cache) {
    let (prefix, root) = (unique("p"), unique("ns"));
    let build = || {
        let mut options = RedisOptions::new(url);
        options.pool_size = 4;
        Cache::builder()
            .redis(options)
            .key_prefix(prefix.clone())
            .namespace_root(root.clone())
            .l1(L1Options {
                max_age,
                ..L1Options::default()
            })
            .build()
    };
    let (a, b) = (build().await.unwrap(), build().await.unwrap());
    // Let both subscriptions come up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (a, b)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_or_invalidation_in_one_process_reaches_the_others_l1() {
    // A minute of max age: only the pub/sub message can explain an eviction.
    let (a, b) = pair(&redis_url(), Duration::from_secs(60)).await;
    let mut delays = Vec::new();
    for round in 0..30 {
        let value = format!("v{round}");
        a.user("42")
            .set("page", &value, Expiry::Never)
            .await
            .unwrap();
        // B may still hold "missing" from the previous round until the
        // announcement of A's write arrives: that delay is the bound too.
        let written = Instant::now();
        while b.user("42").get("page").await.unwrap().as_deref() != Some(value.as_bytes()) {
            assert!(
                written.elapsed() < Duration::from_secs(2),
                "B never saw A's write (round {round})"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(written.elapsed());
        assert_eq!(
            b.user("42").get("page").await.unwrap().as_deref(),
            Some(value.as_bytes()),
            "and keeps serving it"
        );
        let done = Instant::now();
        if round % 2 == 0 {
            a.invalidate_user("42").await.unwrap();
        } else {
            a.user("42").delete("page").await.unwrap();
        }
        loop {
            if b.user("42").get("page").await.unwrap().is_none() {
                break;
            }
            assert!(
                done.elapsed() < Duration::from_secs(2),
                "B's L1 kept serving a dead value (round {round})"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(done.elapsed());
    }
    delays.sort();
    println!(
        "L1 staleness after a change in another process: median {:?}, p99 {:?}, max {:?}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_empties_the_l1_until_resubscribed() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    let (a, _b) = pair(&url, Duration::from_secs(60)).await;
    let g = a.global();
    g.set("token", "old", Expiry::Never).await.unwrap();
    assert_eq!(g.get("token").await.unwrap().as_deref(), Some(&b"old"[..]));
    // Another client writes Redis directly: nscache does not announce it.
    let mut raw = raw_connection(&url).await;
    let storage_key = format!("{}:1:token", a.key_prefix());
    let _: () = redis::cmd("SET")
        .arg(&storage_key)
        .arg("new")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        g.get("token").await.unwrap().as_deref(),
        Some(&b"old"[..]),
        "served from the L1 (max age 60 s)"
    );
    // Drop every subscription: the L1 must empty itself.
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut raw)
        .await
        .unwrap();
    let cut = Instant::now();
    loop {
        if g.get("token").await.unwrap().as_deref() == Some(&b"new"[..]) {
            break;
        }
        assert!(
            cut.elapsed() < Duration::from_secs(2),
            "the L1 kept serving after losing its subscription"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Resubscribed: the L1 serves again, and is coherent again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    g.set("token", "newer", Expiry::Never).await.unwrap();
    assert_eq!(
        g.get("token").await.unwrap().as_deref(),
        Some(&b"newer"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_entries_leave_when_their_ttl_runs_out() {
    let (a, b) = pair(&redis_url(), Duration::from_secs(60)).await;
    a.global()
        .set(
            "meta_whatsapp:runtime_access_token",
            "t",
            Expiry::After(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert!(
        b.global()
            .get("meta_whatsapp:runtime_access_token")
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        b.global()
            .get("meta_whatsapp:runtime_access_token")
            .await
            .unwrap(),
        None,
        "expired in Redis, so gone from B's L1 too"
    );
}

/// One process with an L1 of a minute's max age, its flags from `profiles`.
async fn single_l1(profiles: std::sync::Arc<dyn nscache::profiles::ProfileSource>) -> Cache {
    let mut options = RedisOptions::new(redis_url());
    options.pool_size = 2;
    Cache::builder()
        .redis(options)
        .key_prefix(unique("p"))
        .namespace_root(unique("ns"))
        .profiles(profiles)
        .l1(L1Options {
            max_age: Duration::from_secs(60),
            ..L1Options::default()
        })
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_answers_skip_the_store_and_follow_every_change() {
    let profiles = std::sync::Arc::new(nscache::profiles::StaticProfiles::new());
    let cache = single_l1(profiles.clone()).await;
    let calls = || cache.store_stats().calls;
    let (alice, g) = (cache.user("alice"), cache.global());
    alice.set("page", "v1", Expiry::Never).await.unwrap();
    g.set("token", "t1", Expiry::Never).await.unwrap();
    assert_eq!(
        alice.get("page").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(g.get("token").await.unwrap().as_deref(), Some(&b"t1"[..]));
    // Asked again: answered without a single store primitive (not even from the L1).
    let before = calls();
    for _ in 0..10 {
        assert_eq!(
            alice.get("page").await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
        assert_eq!(g.get("token").await.unwrap().as_deref(), Some(&b"t1"[..]));
    }
    assert_eq!(
        calls(),
        before,
        "repeated gets are answered by the L1 alone"
    );
    // A (user, key) pair never reads as another.
    cache
        .user("alic")
        .set("epage", "other", Expiry::Never)
        .await
        .unwrap();
    assert_eq!(
        cache.user("alic").get("epage").await.unwrap().as_deref(),
        Some(&b"other"[..])
    );
    assert_eq!(
        alice.get("page").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    // Every change is seen at once in this process.
    alice.set("page", "v2", Expiry::Never).await.unwrap();
    assert_eq!(
        alice.get("page").await.unwrap().as_deref(),
        Some(&b"v2"[..]),
        "a write"
    );
    profiles.set_cache_enabled("alice", false);
    assert_eq!(alice.get("page").await.unwrap(), None, "cache turned off");
    assert_eq!(alice.get("page").await.unwrap(), None, "and still off");
    profiles.set_cache_enabled("alice", true);
    assert_eq!(
        alice.get("page").await.unwrap().as_deref(),
        Some(&b"v2"[..]),
        "cache turned on again"
    );
    cache.invalidate_user("alice").await.unwrap();
    assert_eq!(alice.get("page").await.unwrap(), None, "an invalidation");
    alice.set("page", "v3", Expiry::Never).await.unwrap();
    assert_eq!(
        alice.get("page").await.unwrap().as_deref(),
        Some(&b"v3"[..])
    );
    cache.invalidate_all().await.unwrap();
    assert_eq!(alice.get("page").await.unwrap(), None, "invalidate-all");
    g.delete("token").await.unwrap();
    assert_eq!(g.get("token").await.unwrap(), None, "a delete");
    g.set("token", "t2", Expiry::After(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(g.get("token").await.unwrap().as_deref(), Some(&b"t2"[..]));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(g.get("token").await.unwrap(), None, "an expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_answers_follow_flags_kept_in_a_directory() {
    use nscache::profiles::CachedProfiles;
    use nscache_server::directory::{
        Directory, DirectoryFlags, NewAccount, ProfileTable, Role, SqliteDirectory,
    };
    let dir = std::env::temp_dir().join(unique("l1-profiles"));
    let directory = SqliteDirectory::open(&dir.join("nscache.db"), ProfileTable::default())
        .await
        .unwrap();
    directory.migrate().await.unwrap();
    let account = directory
        .create_account(&NewAccount {
            username: "alice".into(),
            role: Role::User,
            user_id: Some("alice".into()),
            password_hash: None,
        })
        .await
        .unwrap();
    let directory: std::sync::Arc<dyn Directory> = std::sync::Arc::new(directory);
    // Flags trusted for 200 ms: a change made in the database directly is seen after that.
    let flags = std::sync::Arc::new(DirectoryFlags(directory.clone()));
    let profiles = std::sync::Arc::new(
        CachedProfiles::new(flags, None).with_max_age(Duration::from_millis(200)),
    );
    let cache = single_l1(profiles.clone()).await;
    let alice = cache.user(&account.user_id);
    alice.set("page", "v1", Expiry::Never).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            alice.get("page").await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
    }
    // Through nscache: the very next get.
    profiles.set_cache_enabled("alice", false).await.unwrap();
    assert_eq!(
        alice.get("page").await.unwrap(),
        None,
        "turned off through nscache"
    );
    profiles.set_cache_enabled("alice", true).await.unwrap();
    assert_eq!(
        alice.get("page").await.unwrap().as_deref(),
        Some(&b"v1"[..]),
        "on again"
    );
    // Behind nscache's back: within the flags' max age, and no remembered answer outlives it.
    directory.set_cache_enabled("alice", false).await.unwrap();
    let changed = Instant::now();
    while alice.get("page").await.unwrap().is_some() {
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "a flag changed in the database was never seen"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(alice.get("page").await.unwrap(), None, "and stays off");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_l1_in_front_of_a_store_without_ttl_reads_is_refused_with_a_reason() {
    let plain: std::sync::Arc<dyn nscache::store::Store> =
        std::sync::Arc::new(nscache::store::MemoryStore::new(1 << 20));
    let built = Cache::builder()
        .store(plain)
        .l1(L1Options::default())
        .build()
        .await;
    match built {
        Err(nscache::CacheError::Config(why)) => assert!(why.contains("TTL reads"), "{why}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
