//! The reader side of `tests/it/linearizable.rs`: readers that record what
//! they read, in the test's own process and in reader processes
//! (`nscache-linearizability-reader`, this crate's binary).

use std::time::Duration;

use nscache::Cache;
use nscache::store::{L1Options, RedisOptions};

use crate::redis_url;

/// Users whose namespaces are invalidated and read.
pub const USERS: usize = 4;
/// Concurrent reader tasks per process.
pub const READERS: usize = 6;

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process of the
/// machine, never stepped.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A cache on the test Redis with the given names (the writer and every
/// reader share them), with or without the L1.
pub async fn build(prefix: &str, root: &str, l1: bool) -> Cache {
    let mut options = RedisOptions::new(redis_url());
    options.pool_size = 4;
    let builder = Cache::builder()
        .redis(options)
        .key_prefix(prefix)
        .namespace_root(root)
        .max_idle_instances(64);
    let builder = if l1 {
        builder.l1(L1Options::default())
    } else {
        builder
    };
    builder.build().await.expect("cache on the test Redis")
}

/// One read as recorded.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    /// Which user (`u{n}`).
    pub user: usize,
    /// When the read started (monotonic ns).
    pub start: u64,
    /// The generation read, `None` on a miss.
    pub value: Option<u64>,
}

/// Run [`READERS`] reader tasks on `cache` until `deadline` (monotonic ns),
/// each reading key `k` of the users in turn.
pub async fn read_until(cache: &Cache, deadline: u64) -> Vec<Read> {
    let tasks: Vec<_> = (0..READERS)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut reads = Vec::new();
                let mut i = t;
                while now_ns() < deadline {
                    i += 1;
                    let user = i % USERS;
                    let start = now_ns();
                    let value = cache.user(format!("u{user}")).get("k").await.expect("read");
                    let value = value.map(|v| {
                        std::str::from_utf8(&v)
                            .expect("utf-8")
                            .parse::<u64>()
                            .expect("a generation")
                    });
                    reads.push(Read { user, start, value });
                    // An L1 hit never waits: let the writer run.
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    let mut reads = Vec::new();
    for t in tasks {
        reads.extend(t.await.expect("reader"));
    }
    reads
}

/// The reader process: parameters from the environment (`LIN_PREFIX`,
/// `LIN_ROOT`, `LIN_L1`, `LIN_START`, `LIN_DEADLINE`); prints its history
/// (`LIN read USER START VALUE|-`) and the cache's read counters
/// (`LIN stats PLAIN SCRIPTED`) on stdout.
pub async fn reader_process() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let cache = build(&var("LIN_PREFIX"), &var("LIN_ROOT"), var("LIN_L1") == "1").await;
    let start: u64 = var("LIN_START").parse().expect("LIN_START");
    let deadline: u64 = var("LIN_DEADLINE").parse().expect("LIN_DEADLINE");
    while now_ns() < start {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let reads = read_until(&cache, deadline).await;
    let mut out = String::new();
    for r in &reads {
        let value = r.value.map_or("-".to_owned(), |v| v.to_string());
        out.push_str(&format!("LIN read {} {} {value}\n", r.user, r.start));
    }
    let stats = cache.store_stats();
    out.push_str(&format!(
        "LIN stats {} {}\n",
        stats.plain_reads, stats.scripted_reads
    ));
    print!("{out}");
}
