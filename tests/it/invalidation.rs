//! O(1) invalidation, measured on a private Redis with `INFO commandstats`.

use nscache::{Cache, Expiry};
use nscache_tests::{RedisServer, commands_processed, raw_connection};

async fn fill(cache: &Cache, user: &str, n: usize) {
    let ks = cache.user(user);
    let keys: Vec<String> = (0..n).map(|i| format!("entry:{i}")).collect();
    for chunk in keys.chunks(2000) {
        let entries: Vec<(&str, &str)> =
            chunk.iter().map(|k| (k.as_str(), "cached value")).collect();
        ks.set_many(&entries, Expiry::Never).await.unwrap();
    }
}

async fn all_miss(cache: &Cache, user: &str, n: usize) -> bool {
    let ks = cache.user(user);
    let keys: Vec<String> = (0..n).map(|i| format!("entry:{i}")).collect();
    for chunk in keys.chunks(2000) {
        if ks
            .get_many(chunk)
            .await
            .unwrap()
            .iter()
            .any(Option::is_some)
        {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_10_or_100000_keys_costs_the_same_commands() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    let cache = Cache::builder().redis_url(&url).build().await.unwrap();
    fill(&cache, "small", 10).await;
    fill(&cache, "large", 100_000).await;
    cache
        .user("bystander")
        .set("k", "keep me", Expiry::Never)
        .await
        .unwrap();
    let mut raw = raw_connection(&url).await;
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert!(
        dbsize >= 100_011,
        "the large namespace holds 100,000 entries ({dbsize} keys)"
    );

    let before = commands_processed(&mut raw).await;
    cache.invalidate_user("small").await.unwrap();
    let small = commands_processed(&mut raw).await - before;

    let before = commands_processed(&mut raw).await;
    cache.invalidate_user("large").await.unwrap();
    let large = commands_processed(&mut raw).await - before;

    assert_eq!(
        small, large,
        "Redis commands for 10 keys ({small}) and 100,000 keys ({large})"
    );
    // MGET, then two scripts (the version clock, the swap): 3 round trips and 7
    // commands counting those run inside the scripts, plus the INFO that reads
    // the counters.
    assert!(large <= 8, "a constant handful of commands, got {large}");
    assert!(all_miss(&cache, "small", 10).await);
    assert!(all_miss(&cache, "large", 100_000).await);
    assert_eq!(
        cache.user("bystander").get("k").await.unwrap().as_deref(),
        Some(&b"keep me"[..])
    );
}
