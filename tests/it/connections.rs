//! Connection options real deployments use, each against a redis-server of
//! the test's own configured for it: an ACL user and password in the URL,
//! a wrong password, and a revoked user.

use std::time::Duration;

use nscache::store::RedisOptions;
use nscache::{Cache, CacheError, Expiry};
use nscache_tests::{RedisServer, raw_connection, unique};

/// A cache on `url` with short timeouts (the failures here are immediate).
async fn cache_on(url: &str) -> Cache {
    let mut options = RedisOptions::new(url);
    options.pool_size = 2;
    options.connect_timeout = Duration::from_secs(2);
    options.socket_timeout = Duration::from_secs(2);
    Cache::builder()
        .redis(options)
        .key_prefix(unique("p"))
        .namespace_root(unique("ns"))
        .build()
        .await
        .expect("a cache builds without connecting")
}

/// A server whose `default` user is off: only `app` (password `s3cret`,
/// every key and command but FLUSHALL/FLUSHDB) gets in. Returns the admin
/// connection made before `default` was turned off.
async fn acl_server() -> (RedisServer, redis::aio::MultiplexedConnection) {
    let server = RedisServer::start(&[]);
    let mut admin = raw_connection(&server.url(0)).await;
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "app",
            "on",
            ">s3cret",
            "~*",
            "&*",
            "+@all",
            "-flushall",
            "-flushdb",
        ])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER app");
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "off"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER default off");
    (server, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_and_password_in_the_url_are_used() {
    let (server, _admin) = acl_server().await;
    let port = server.url(0).rsplit(':').next().unwrap().to_owned();
    let port = port.trim_end_matches("/0");

    // Without credentials the server refuses: the cache says so, loudly for
    // writes, as a miss for reads.
    let anonymous = cache_on(&format!("redis://127.0.0.1:{port}/3")).await;
    assert_eq!(anonymous.user("7").get("k").await.unwrap(), None);
    assert!(matches!(
        anonymous.user("7").add("k", b"v", Expiry::Default).await,
        Err(CacheError::Unavailable(_))
    ));

    let cache = cache_on(&format!("redis://app:s3cret@127.0.0.1:{port}/3")).await;
    let alice = cache.user("42");
    alice.set("k", b"v", Expiry::secs(60)).await.unwrap();
    assert_eq!(alice.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    cache
        .global()
        .set("g", b"1", Expiry::Default)
        .await
        .unwrap();
    assert_eq!(cache.global().incr("g", 2).await.unwrap(), 3);
    cache.invalidate_user("42").await.unwrap();
    assert_eq!(alice.get("k").await.unwrap(), None);
    let token = cache
        .lock("cron:acl", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(token.is_some(), "the lock script runs as the ACL user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_loudly_without_showing_it() {
    let (server, _admin) = acl_server().await;
    let url = server
        .url(0)
        .replace("redis://", "redis://app:not-the-password@");
    let cache = cache_on(&url).await;
    let alice = cache.user("42");
    assert_eq!(
        alice.get("k").await.unwrap(),
        None,
        "reads degrade to misses"
    );
    let err = alice
        .add("k", b"v", Expiry::Default)
        .await
        .expect_err("add cannot pretend");
    let CacheError::Unavailable(message) = &err else {
        panic!("a refused login is an outage for the cache: {err:?}");
    };
    assert!(
        !message.contains("not-the-password"),
        "the error does not repeat the password: {message}"
    );
    assert!(cache.invalidate_user("42").await.is_err());
    assert!(cache.ping().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_user_is_refused_at_once() {
    let (server, mut admin) = acl_server().await;
    let url = server.url(2).replace("redis://", "redis://app:s3cret@");
    let cache = cache_on(&url).await;
    let alice = cache.user("42");
    alice.set("k", b"v", Expiry::secs(60)).await.unwrap();
    assert!(alice.get("k").await.unwrap().is_some());

    // ACL DELUSER closes the user's connections; reconnecting is refused.
    let _: () = redis::cmd("ACL")
        .arg(&["DELUSER", "app"])
        .query_async(&mut admin)
        .await
        .expect("ACL DELUSER");
    assert_eq!(
        alice.get("k").await.unwrap(),
        None,
        "reads degrade to misses"
    );
    assert!(matches!(
        alice.add("other", b"w", Expiry::Default).await,
        Err(CacheError::Unavailable(_))
    ));
    assert!(
        cache.invalidate_user("42").await.is_err(),
        "invalidation fails loudly"
    );

    // Granted again: the cache recovers on its own, the entry intact.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER app");
    let mut back = None;
    for _ in 0..50 {
        back = alice.get("k").await.unwrap();
        if back.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(back.as_deref(), Some(&b"v"[..]));
}
