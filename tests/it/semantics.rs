//! Namespaces, versions, `cache_enabled`, limits and race-safety, on every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nscache::profiles::StaticProfiles;
use nscache::{CacheError, Expiry, GetOrSetError, LockToken, Ttl};
use nscache_tests::{Backend, raw_connection, redis_url, suite, unique};
use redis::AsyncCommands;

async fn users_never_see_each_others_entries(b: Backend) {
    let cache = b.cache().await;
    let (alice, bob) = (cache.user("1"), cache.user("2"));
    alice
        .set("dashboard", "alice's", Expiry::Default)
        .await
        .unwrap();
    assert_eq!(bob.get("dashboard").await.unwrap(), None);
    bob.set("dashboard", "bob's", Expiry::Default)
        .await
        .unwrap();
    assert_eq!(
        alice.get("dashboard").await.unwrap().as_deref(),
        Some(&b"alice's"[..])
    );
    assert_eq!(
        cache.global().get("dashboard").await.unwrap(),
        None,
        "global keys are a separate keyspace"
    );
    // Ids that only differ by characters an encoding could confuse.
    let odd = [
        "a:b", "a%3Ab", "a", "a:", ":a", "é", "%C3%A9", "{1}", "1 ", "42",
    ];
    for id in odd {
        cache.user(id).set("k", id, Expiry::Default).await.unwrap();
    }
    for id in odd {
        assert_eq!(
            cache.user(id).get("k").await.unwrap().as_deref(),
            Some(id.as_bytes()),
            "user {id:?}"
        );
    }
}

async fn invalidating_a_user_hides_their_entries_only(b: Backend) {
    let cache = b.cache().await;
    let (alice, bob) = (cache.user("alice"), cache.user("bob"));
    for i in 0..20 {
        alice
            .set(&format!("k{i}"), "a", Expiry::Never)
            .await
            .unwrap();
    }
    bob.set("k0", "b", Expiry::Never).await.unwrap();
    cache
        .global()
        .set("invoice_seq:2026", "3", Expiry::Never)
        .await
        .unwrap();
    let before = cache
        .version_of("alice")
        .await
        .unwrap()
        .expect("alice has a namespace");
    let after = cache.invalidate_user("alice").await.unwrap();
    assert!(after > before);
    assert_eq!(cache.version_of("alice").await.unwrap(), Some(after));
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    assert!(
        alice
            .get_many(&keys)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(bob.get("k0").await.unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(cache.global().incr("invoice_seq:2026", 1).await.unwrap(), 4);
    alice.set("k0", "fresh", Expiry::Never).await.unwrap();
    assert_eq!(
        alice.get("k0").await.unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
}

async fn invalidate_all_hides_every_namespace_and_keeps_global_keys(b: Backend) {
    let cache = b.cache().await;
    for u in ["1", "2", "3"] {
        cache.user(u).set("k", u, Expiry::Never).await.unwrap();
    }
    cache
        .global()
        .set("cron:clear_cache:run_lock", "w", Expiry::Never)
        .await
        .unwrap();
    cache.invalidate_all().await.unwrap();
    for u in ["1", "2", "3"] {
        assert_eq!(cache.user(u).get("k").await.unwrap(), None);
        assert_eq!(cache.version_of(u).await.unwrap(), None);
    }
    assert!(
        cache
            .global()
            .has_key("cron:clear_cache:run_lock")
            .await
            .unwrap()
    );
    cache
        .user("1")
        .set("k", "again", Expiry::Never)
        .await
        .unwrap();
    assert!(cache.user("1").get("k").await.unwrap().is_some());
}

async fn a_lost_version_key_never_brings_old_entries_back(b: Backend) {
    let cache = b.cache().await;
    let u = cache.user("7");
    u.set("report", "v1-data", Expiry::Never).await.unwrap();
    let v1 = cache.version_of("7").await.unwrap().unwrap();
    cache.invalidate_user("7").await.unwrap();
    u.set("report", "v2-data", Expiry::Never).await.unwrap();
    // Evict the version key behind the cache's back.
    // (On Redis Cluster the user id is in a hash tag.)
    let id = if b == Backend::Cluster { "{7}" } else { "7" };
    let version_key = format!("{}_user_version:{id}", cache.namespace_root());
    assert!(cache.store().delete(&version_key).await.unwrap());
    assert_eq!(u.get("report").await.unwrap(), None);
    u.set("other", "x", Expiry::Never).await.unwrap();
    let v3 = cache.version_of("7").await.unwrap().unwrap();
    assert!(
        v3 > v1 + 1,
        "re-created version {v3} was used before (v1 = {v1})"
    );
    assert_eq!(
        u.get("report").await.unwrap(),
        None,
        "neither v1 nor v2 entries come back"
    );
}

async fn a_lost_floor_makes_everything_a_miss(b: Backend) {
    let cache = b.cache().await;
    cache.user("1").set("k", "x", Expiry::Never).await.unwrap();
    let floor_key = format!("{}_namespace_floor", cache.namespace_root());
    assert!(cache.store().delete(&floor_key).await.unwrap());
    assert_eq!(cache.user("1").get("k").await.unwrap(), None);
    cache.user("1").set("k2", "y", Expiry::Never).await.unwrap();
    assert_eq!(cache.user("1").get("k").await.unwrap(), None);
}

async fn a_value_computed_across_an_invalidation_is_not_visible_after_it(b: Backend) {
    let cache = b.cache().await;
    let u = cache.user("race");
    let value = u
        .get_or_set("report", Expiry::Never, || async {
            // The data changes while the report is computed: invalidate.
            cache.invalidate_user("race").await.unwrap();
            Ok::<_, CacheError>(b"computed-before-invalidation".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(
        value, b"computed-before-invalidation",
        "the caller still gets its value"
    );
    assert_eq!(
        u.get("report").await.unwrap(),
        None,
        "but it was not cached past the invalidation"
    );
    let value = u
        .get_or_set("report", Expiry::Never, || async {
            Ok::<_, CacheError>(b"fresh".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(value, b"fresh");
    assert_eq!(
        u.get("report").await.unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
}

async fn get_or_set_loads_once_for_concurrent_misses(b: Backend) {
    let cache = b.cache().await;
    let loads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (u, loads) = (cache.user("busy"), loads.clone());
        tasks.push(tokio::spawn(async move {
            u.get_or_set("expensive", Expiry::Never, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, CacheError>(b"42".to_vec())
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), b"42");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

async fn a_failing_loader_stores_nothing(b: Backend) {
    let cache = b.cache().await;
    let u = cache.user("x");
    let r = u
        .get_or_set("k", Expiry::Never, || async {
            Err::<Vec<u8>, _>("db down")
        })
        .await;
    assert!(matches!(r, Err(GetOrSetError::Load("db down"))));
    assert_eq!(u.get("k").await.unwrap(), None);
}

async fn disabled_users_bypass_the_cache(b: Backend) {
    let profiles = Arc::new(StaticProfiles::new());
    let cache = b
        .builder()
        .profiles(profiles.clone())
        .build()
        .await
        .unwrap();
    let u = cache.user("9");
    u.set("before", "cached", Expiry::Never).await.unwrap();
    profiles.set_cache_enabled("9", false);
    assert_eq!(u.get("before").await.unwrap(), None, "reads miss");
    u.set("during", "x", Expiry::Never).await.unwrap();
    assert!(!u.has_key("during").await.unwrap());
    assert_eq!(u.incr("before", 1).await, Err(CacheError::NotFound));
    // Global keys keep working (locks, counters).
    cache
        .global()
        .set("invoice_seq:2026", "1", Expiry::Never)
        .await
        .unwrap();
    assert_eq!(cache.global().incr("invoice_seq:2026", 1).await.unwrap(), 2);
    assert!(
        cache
            .lock("cron:full_backup:run_lock", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
    // Other users are not affected.
    cache.user("10").set("k", "v", Expiry::Never).await.unwrap();
    assert!(cache.user("10").get("k").await.unwrap().is_some());
    profiles.set_cache_enabled("9", true);
    assert_eq!(
        u.get("during").await.unwrap(),
        None,
        "the write while disabled was skipped"
    );
    u.set("after", "y", Expiry::Never).await.unwrap();
    assert_eq!(u.get("after").await.unwrap().as_deref(), Some(&b"y"[..]));
}

async fn limits_give_clear_errors_and_store_nothing(b: Backend) {
    let cache = b
        .builder()
        .max_key_bytes(64)
        .max_value_bytes(1024)
        .build()
        .await
        .unwrap();
    let g = cache.global();
    let long_key = "k".repeat(65);
    assert!(
        matches!(g.set(&long_key, "v", Expiry::Never).await, Err(CacheError::KeyTooLong(m)) if m.contains("65"))
    );
    assert!(
        matches!(g.set("big", vec![0u8; 1025], Expiry::Never).await, Err(CacheError::ValueTooLarge(m)) if m.contains("1025"))
    );
    assert!(!g.has_key("big").await.unwrap());
    assert!(matches!(
        cache.user("").get("k").await,
        Err(CacheError::InvalidName(_))
    ));
    assert!(matches!(
        cache.invalidate_table("").await,
        Err(CacheError::InvalidName(_))
    ));
    // What Django only warns about is accepted.
    for key in ["with space", "ünïcødé", "a:b:c", &"x".repeat(64)] {
        g.set(key, "ok", Expiry::Never).await.unwrap();
        assert!(g.get(key).await.unwrap().is_some(), "{key}");
    }
    g.set("exactly-at-limit", vec![1u8; 1024], Expiry::Never)
        .await
        .unwrap();
    // Bad settings are refused when building.
    assert!(matches!(
        b.builder().key_prefix("a:b").build().await,
        Err(CacheError::Config(_))
    ));
}

async fn ttl_touch_and_persist(b: Backend) {
    let g = b.cache().await.global();
    g.set("k", "v", Expiry::Default).await.unwrap();
    assert!(
        matches!(g.ttl("k").await.unwrap(), Ttl::Remaining(d) if d > Duration::from_secs(290) && d <= Duration::from_secs(300))
    );
    assert!(g.touch("k", Expiry::secs(10)).await.unwrap());
    assert!(matches!(g.ttl("k").await.unwrap(), Ttl::Remaining(d) if d <= Duration::from_secs(10)));
    assert!(g.persist("k").await.unwrap());
    assert_eq!(g.ttl("k").await.unwrap(), Ttl::Forever);
    assert!(!g.touch("missing", Expiry::secs(10)).await.unwrap());
    assert!(!g.persist("missing").await.unwrap());
    g.set("gone", "v", Expiry::After(Duration::ZERO))
        .await
        .unwrap();
    assert!(
        !g.has_key("gone").await.unwrap(),
        "timeout 0 stores nothing"
    );
    assert!(g.touch("k", Expiry::After(Duration::ZERO)).await.unwrap());
    assert!(
        !g.has_key("k").await.unwrap(),
        "touch with 0 expires at once"
    );
}

async fn locks_release_only_for_their_owner(b: Backend) {
    let cache = b.cache().await;
    let token = cache
        .lock("cron:full_backup:run_lock", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free lock");
    assert_eq!(
        cache
            .lock("cron:full_backup:run_lock", Duration::from_secs(30))
            .await
            .unwrap(),
        None
    );
    let thief = LockToken::from_owner("someone-else");
    assert!(
        !cache
            .unlock("cron:full_backup:run_lock", &thief)
            .await
            .unwrap()
    );
    assert_eq!(
        cache
            .global()
            .get("cron:full_backup:run_lock")
            .await
            .unwrap()
            .as_deref(),
        Some(token.as_str().as_bytes())
    );
    assert!(
        cache
            .unlock("cron:full_backup:run_lock", &token)
            .await
            .unwrap()
    );
    assert!(
        !cache
            .unlock("cron:full_backup:run_lock", &token)
            .await
            .unwrap(),
        "already released"
    );
    let short = cache
        .lock("cron:clear_cache:run_lock", Duration::from_millis(100))
        .await
        .unwrap();
    assert!(short.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        cache
            .lock("cron:clear_cache:run_lock", Duration::from_secs(1))
            .await
            .unwrap()
            .is_some(),
        "timed out"
    );
}

async fn namespaced_operations_work_like_global_ones(b: Backend) {
    let cache = b.cache().await;
    let u = cache.user("ops");
    u.set_many(&[("a", "1"), ("b", "2"), ("c", "3")], Expiry::Never)
        .await
        .unwrap();
    assert_eq!(
        u.get_many(&["a", "b", "z"]).await.unwrap(),
        vec![Some(b"1".to_vec()), Some(b"2".to_vec()), None]
    );
    assert!(!u.add("a", "x", Expiry::Never).await.unwrap());
    assert!(u.add("d", "4", Expiry::Never).await.unwrap());
    assert_eq!(u.incr("a", 10).await.unwrap(), 11);
    assert_eq!(u.decr("b", 3).await.unwrap(), -1);
    assert!(u.delete("c").await.unwrap());
    assert_eq!(u.delete_many(&["a", "b", "c"]).await.unwrap(), 2);
    assert!(u.touch("d", Expiry::secs(5)).await.unwrap());
    assert!(matches!(u.ttl("d").await.unwrap(), Ttl::Remaining(_)));
    assert!(u.persist("d").await.unwrap());
    // In a namespace "forever" is the longest a namespaced entry lives (a
    // day by default), so that dead versions are always reclaimed.
    match u.ttl("d").await.unwrap() {
        Ttl::Remaining(left) => assert!(left > Duration::from_secs(86_000), "{left:?}"),
        other => panic!("a persisted namespaced entry lives a day, not {other:?}"),
    }
    cache.global().set("g", "1", Expiry::Never).await.unwrap();
    assert_eq!(
        cache.global().ttl("g").await.unwrap(),
        Ttl::Forever,
        "global keys do not"
    );
}

suite!(
    users_never_see_each_others_entries,
    invalidating_a_user_hides_their_entries_only,
    invalidate_all_hides_every_namespace_and_keeps_global_keys,
    a_lost_version_key_never_brings_old_entries_back,
    a_lost_floor_makes_everything_a_miss,
    a_value_computed_across_an_invalidation_is_not_visible_after_it,
    get_or_set_loads_once_for_concurrent_misses,
    a_failing_loader_stores_nothing,
    disabled_users_bypass_the_cache,
    limits_give_clear_errors_and_store_nothing,
    ttl_touch_and_persist,
    locks_release_only_for_their_owner,
    namespaced_operations_work_like_global_ones,
);

/// Namespaced entries and version keys have the reference layout in Redis.
#[tokio::test]
async fn namespace_keys_have_the_reference_layout() {
    let cache = Backend::Redis.cache().await;
    let root = cache.namespace_root().to_owned();
    let user = unique("42").replace('_', "");
    cache
        .user(&user)
        .set("profile", "v", Expiry::secs(60))
        .await
        .unwrap();
    let version = cache.version_of(&user).await.unwrap().unwrap();
    let mut raw = raw_connection(&redis_url()).await;
    let stored: Option<String> = raw
        .get(format!("{root}:{user}:v{version}:data:profile"))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("v"));
    let stored_version: Option<u64> = raw
        .get(format!("{root}_user_version:{user}"))
        .await
        .unwrap();
    assert_eq!(stored_version, Some(version));
    let ttl: i64 = raw
        .ttl(format!("{root}:{user}:v{version}:data:profile"))
        .await
        .unwrap();
    assert!((1..=60).contains(&ttl));
}
