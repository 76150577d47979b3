//! The store conformance suite: every backend of [`Store`] held to the
//! contract of the WIT imports it serves (`wit/store.wit`, `wit/batch.wit`,
//! `wit/atomics.wit`), and every backend with [`TtlReads`] to that trait's,
//! through the traits alone, one `#[tokio::test]` per (backend, case), as
//! Spin runs one key-value suite over every backend.
//!
//! Adding a backend: its file in `host/src/store/`, and one line in the
//! `store_suite!` invocation at the end of this file: a name, an async
//! expression that builds a [`Subject`], and the groups of cases it runs
//! (`store_cases`, plus `ttl_read_cases` if it implements [`TtlReads`]; the
//! compiler refuses a backend listed for a trait it lacks). Adding a case: an
//! `async fn` in the group's file and its name in the group's list.
//!
//! Each test owns the keys under a unique prefix ([`Keys`]); on the shared
//! Redis (database 15) they are removed by prefix when the test ends, passed
//! or failed. Nothing is flushed.

#[macro_use]
mod store;
#[macro_use]
mod ttl_reads;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nscache::Ttl;
use nscache::feed::ChangeFeed;
use nscache::store::{
    ClusterOptions, ClusterStore, L1Options, L1Store, MemoryStore, RedisOptions, RedisStore, Store,
};
use nscache_tests::{redis_url, unique};

/// A backend under test: the store, and the keys its test may use.
pub struct Subject<S: ?Sized> {
    /// The store, as its concrete type: each group of cases takes it as the
    /// trait object it tests.
    pub store: Arc<S>,
    /// The keys this test owns.
    pub keys: Keys,
    /// Removes the test's keys from the shared Redis when dropped.
    _cleanup: Option<RedisCleanup>,
}

impl<S: ?Sized> Subject<S> {
    /// A subject whose keys live in this process only.
    fn in_process(store: Arc<S>) -> Subject<S> {
        Subject {
            store,
            keys: Keys::new(),
            _cleanup: None,
        }
    }

    /// A subject whose keys live on the shared test Redis.
    fn on_shared_redis(store: Arc<S>) -> Subject<S> {
        let keys = Keys::new();
        let cleanup = RedisCleanup {
            prefix: keys.prefix.clone(),
        };
        Subject {
            store,
            keys,
            _cleanup: Some(cleanup),
        }
    }
}

/// The keys one test owns: all under one unique prefix.
pub struct Keys {
    prefix: String,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            prefix: unique("sc"),
        }
    }

    /// Keys under a Redis Cluster hash tag: all of them in one slot, so
    /// that the multi-key primitives, atomic per slot there, are whole.
    fn in_one_slot() -> Keys {
        Keys {
            prefix: format!("{{{}}}", unique("sc")),
        }
    }

    /// This test's key `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// This test's keys `names`, in order.
    pub fn keys(&self, names: &[&str]) -> Vec<String> {
        names.iter().map(|name| self.key(name)).collect()
    }
}

/// Removes every key under `prefix` from the shared test Redis when dropped
/// (`SCAN` by prefix, then `UNLINK`): also when the test panicked.
struct RedisCleanup {
    prefix: String,
}

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        let Ok(client) = ::redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let page: ::redis::RedisResult<(u64, Vec<Vec<u8>>)> = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn);
            let Ok((next, keys)) = page else {
                return;
            };
            if !keys.is_empty() {
                let _: ::redis::RedisResult<i64> =
                    ::redis::cmd("UNLINK").arg(&keys).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// The embedded memory store.
async fn memory_store() -> Subject<MemoryStore> {
    Subject::in_process(Arc::new(MemoryStore::default()))
}

/// Redis options for the shared test Redis.
fn test_redis() -> RedisOptions {
    let mut options = RedisOptions::new(redis_url());
    options.pool_size = 4;
    options
}

/// The shared test Redis.
async fn redis_store() -> Subject<RedisStore> {
    let store = RedisStore::new(&test_redis()).expect("a store on the test Redis");
    Subject::on_shared_redis(Arc::new(store))
}

/// The shared test Redis behind an L1, as `Cache::builder` puts it (with a
/// change feed, on a channel of the test's own), used once subscribed.
async fn redis_l1_store() -> Subject<L1Store> {
    let inner = RedisStore::new(&test_redis()).expect("a store on the test Redis");
    let feed = ChangeFeed::new(&redis_url(), unique("l1feed")).expect("a feed on the test Redis");
    let l1 = L1Store::new(Arc::new(inner), L1Options::default(), Some(feed.clone()));
    l1.start();
    eventually(
        "the L1's change feed subscribes",
        Duration::from_secs(10),
        || {
            let live = feed.is_live();
            async move { live }
        },
    )
    .await;
    Subject::on_shared_redis(Arc::new(l1))
}

/// The shared test Redis Cluster (3 masters, 1 replica each). Its keys are
/// in one slot per test; the cluster is the test binary's own, stopped at exit.
async fn cluster_store() -> Subject<ClusterStore> {
    let mut options = ClusterOptions::new(nscache_tests::cluster::RedisCluster::shared().url());
    options.pool_size = 2;
    let store = ClusterStore::new(&options).expect("a store on the test cluster");
    Subject {
        store: Arc::new(store),
        keys: Keys::in_one_slot(),
        _cleanup: None,
    }
}

/// A lifetime no test outlives, in milliseconds.
pub const LONG_MS: u64 = 60_000;
/// A lifetime short enough to watch run out, in milliseconds.
pub const SHORT_MS: u64 = 150;
/// How much less than it was set to a long lifetime may be when read back
/// (a loaded machine is slow).
const SLACK: Duration = Duration::from_secs(10);
/// The longest wait for a short-lived key to expire.
const EXPIRY_LIMIT: Duration = Duration::from_secs(5);

/// `text` as bytes.
pub fn v(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// `ttl` is what a key given `set_ms` milliseconds of life just now has left:
/// at most that, not much less, in whole milliseconds.
#[track_caller]
pub fn assert_fresh_ttl(ttl: Ttl, set_ms: u64) {
    let set = Duration::from_millis(set_ms);
    let Ttl::Remaining(left) = ttl else {
        panic!("a key given {set:?} of life answers {ttl:?}");
    };
    assert!(
        left <= set && left + SLACK > set,
        "a key given {set:?} of life has {left:?} left"
    );
    assert_eq!(
        left.subsec_nanos() % 1_000_000,
        0,
        "{left:?}: not whole milliseconds"
    );
}

/// Wait until every key of `keys` reads as missing, as their lifetimes run out.
pub async fn wait_until_missing(store: &dyn Store, keys: &[String]) {
    eventually("the keys expire", EXPIRY_LIMIT, || async move {
        let found = store.get_many(keys, u64::MAX).await.expect("get-many");
        found.iter().all(Option::is_none)
    })
    .await;
}

/// Poll `check` every 10 ms until it holds; panic with `what` after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One `#[tokio::test]` per listed case of one group (a module of this
/// suite, whose cases take `&dyn $trait`), on the backend `$make` builds.
macro_rules! case_tests {
    ($group:ident as $trait:path, $make:expr; $($case:ident),+ $(,)?) => {
        mod $group {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let subject = {
                        #[allow(unused_imports)]
                        use crate::store_conformance::*;
                        $make
                    }
                    .await;
                    let store: std::sync::Arc<dyn $trait> = subject.store.clone();
                    crate::store_conformance::$group::$case(&*store, &subject.keys).await;
                }
            )+
        }
    };
}

/// The suite over every backend listed: `name: builder => [groups]`, one
/// module of tests per backend and group (`store_conformance::redis::store::…`).
macro_rules! store_suite {
    ($($backend:ident: $make:expr => [$($group:ident),+ $(,)?]),+ $(,)?) => {
        $(
            mod $backend {
                $( $group!(case_tests!($make)); )+
            }
        )+
    };
}

store_suite! {
    memory: memory_store() => [store_cases, ttl_read_cases],
    redis: redis_store() => [store_cases, ttl_read_cases],
    redis_l1: redis_l1_store() => [store_cases],
    cluster: cluster_store() => [store_cases],
}
