//! Support for the integration tests: connections to the real services,
//! unique names so that tests share a Redis database without touching each
//! other, and private `redis-server` processes for tests that must observe or
//! disturb the whole server.
//!
//! Services: `NSCACHE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/15`,
//! the reference's test database). Nothing here flushes a database.
#![deny(missing_docs)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod browser;
pub mod cluster;
pub mod linearizable;
pub mod openapi;
pub mod proxy;
pub mod server;

use nscache::store::RedisOptions;
use nscache::{Cache, CacheBuilder};

/// The shared Redis the tests use (database 15 unless configured).
pub fn redis_url() -> String {
    std::env::var("NSCACHE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_owned())
}

/// A name no other test (in this or any concurrent run) uses: letters, digits
/// and `_` only, so it is a valid key prefix and namespace root.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "t{tag}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The backends every behaviour test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded memory store.
    Memory,
    /// The shared test Redis.
    Redis,
    /// The shared test Redis behind an in-process L1.
    RedisL1,
    /// The shared test Redis Cluster (3 masters, 1 replica each; started
    /// once per test binary).
    Cluster,
}

impl Backend {
    /// A builder on this backend with a unique key prefix and namespace root.
    pub fn builder(self) -> CacheBuilder {
        let builder = Cache::builder()
            .key_prefix(unique("p"))
            .namespace_root(unique("ns"));
        match self {
            Backend::Memory => builder,
            Backend::Redis | Backend::RedisL1 => {
                let mut options = RedisOptions::new(redis_url());
                options.pool_size = 8;
                let builder = builder.redis(options);
                if self == Backend::RedisL1 {
                    builder.l1(nscache::store::L1Options::default())
                } else {
                    builder
                }
            }
            Backend::Cluster => {
                let mut options =
                    nscache::store::ClusterOptions::new(cluster::RedisCluster::shared().url());
                options.pool_size = 2;
                builder.cluster(options)
            }
        }
    }

    /// A cache on this backend with default settings.
    pub async fn cache(self) -> Cache {
        self.builder()
            .build()
            .await
            .expect("cache on the test backend")
    }
}

/// Generate one `#[tokio::test]` per backend for each listed
/// `async fn name(backend: Backend)` of the calling module.
#[macro_export]
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Memory).await
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Redis).await
                }
            )*
        }
        mod on_redis_l1 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::RedisL1).await
                }
            )*
        }
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Cluster).await
                }
            )*
        }
    };
}

/// A cache on the shared test Redis, with a unique key prefix and namespace
/// root: its keys cannot collide with any other test's.
pub async fn redis_cache() -> Cache {
    redis_cache_at(&redis_url()).await
}

/// A cache on the Redis at `url`, with a unique prefix and namespace root.
pub async fn redis_cache_at(url: &str) -> Cache {
    let mut options = RedisOptions::new(url);
    options.pool_size = 8;
    Cache::builder()
        .redis(options)
        .key_prefix(unique("p"))
        .namespace_root(unique("ns"))
        .build()
        .await
        .expect("cache on the test Redis")
}

/// A cache on the embedded memory store.
pub async fn memory_cache() -> Cache {
    Cache::builder()
        .key_prefix(unique("p"))
        .namespace_root(unique("ns"))
        .build()
        .await
        .expect("memory cache")
}

/// A raw redis-rs connection to `url`, for checking what the cache wrote.
pub async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

/// A `redis-server` of the test's own on a free port, stopped when dropped.
/// For tests that read server-wide counters, stop the server, or change its
/// configuration: never done to the shared one.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Start a server with no persistence and these extra `redis-server` arguments.
    pub fn start(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(unique("redis"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.spawn(extra);
        server
    }

    fn spawn(&mut self, extra: &[&str]) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url(0)).expect("url");
        while Instant::now() < deadline {
            if let Ok(mut c) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Stop the server (it loses everything: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freeze the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("server running")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// Start it again on the same port, empty.
    pub fn restart(&mut self, extra: &[&str]) {
        self.stop();
        self.spawn(extra);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Total commands a Redis server has processed, from `INFO commandstats`.
pub async fn commands_processed(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
