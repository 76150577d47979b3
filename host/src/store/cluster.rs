//! [`ClusterStore`]: the Redis Cluster backend.
//!
//! Selected by a URL naming a few nodes of the cluster,
//! `redis+cluster://[user:password@]host1:port1,host2:port2/` (the others are
//! discovered). With it the component lays namespaces out with hash tags
//! (`cache:{42}:v7:data:k`, `cache_user_version:{42}`), so every key of one
//! user's namespace shares a slot and a namespaced read stays one command on
//! the node that owns it. See the README, "Consistency in cluster mode".
//!
//! Differences from [`RedisStore`](super::RedisStore), all per slot because
//! Redis Cluster runs a command, a transaction or a script on one slot only:
//! - `get-many`, `set-many` and `delete-many` over keys of several slots are
//!   split into one command (or transaction) per slot, sent concurrently:
//!   each slot's part is atomic, the whole is not. The component only relies
//!   on atomicity within one namespace, which is one slot.
//! - `get-indirect` (whose entry keys are computed, which a cluster script may
//!   not do) is two round trips: the pointer, then the entries and the pointer
//!   again, repeated until the pointer read twice agrees. The component does
//!   not use it in cluster mode.
//! - Every write nscache's versions depend on (`swap-if`: namespace, table and
//!   floor versions; `increment`: the version clock, and the application's
//!   counters) is followed on the same connection, in the same pipeline, by
//!   `WAIT <wait_replicas> <timeout>`: it succeeds only once that many
//!   replicas have it, else it fails with [`StoreError::Unavailable`] (the
//!   write may still have been made on the master).
//! - No databases: the URL may not name one.
//!
//! Failure policy as for one server: the client is built with no retries of
//! its own (a write is never sent twice) and every call is bounded by the
//! socket timeout; a read that finds its connection dropped is tried once
//! more. After a failover the first calls on the moved slots fail
//! (`unavailable`) while the client relearns the slot map.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, Slot,
    SlotAddr,
};
use redis::{Script, Value};

use super::redis::{
    MGET_THEN_CHECK, Scripts, bytes, bytes_list, expire_on, incremented, key_ttl, lifetime,
    memory_info, put_counted_call, put_outcome, set_command, store_err, unexpected,
};
use super::{Counter, IndirectRead, MemoryInfo, PutOutcome, Store, StoreError};
use crate::settings::defaults;
use crate::types::Ttl;

/// The URL scheme that selects Redis Cluster.
pub const CLUSTER_SCHEME: &str = "redis+cluster";

/// True if `url` names a Redis Cluster (`redis+cluster://…`).
pub fn is_cluster_url(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(CLUSTER_SCHEME))
}

/// How to reach a Redis Cluster. Same pool, timeouts and failure policy as
/// [`RedisOptions`](super::RedisOptions), plus the replicas a version write
/// waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `redis+cluster://[user:password@]host1:port1,host2:port2/`.
    pub url: String,
    /// Cluster connections opened (each holds one multiplexed connection per
    /// node).
    pub pool_size: usize,
    /// Longest wait to establish a connection.
    pub connect_timeout: Duration,
    /// Longest wait for one call, redirects included.
    pub socket_timeout: Duration,
    /// Replicas that must confirm a version write or an increment (`WAIT`)
    /// before it succeeds; 0: do not wait (a cluster without replicas).
    pub wait_replicas: u32,
}

impl ClusterOptions {
    /// Default options for `url`: one replica confirms every version write.
    pub fn new(url: impl Into<String>) -> ClusterOptions {
        ClusterOptions {
            url: url.into(),
            pool_size: defaults::POOL_SIZE,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            socket_timeout: defaults::SOCKET_TIMEOUT,
            wait_replicas: defaults::WAIT_REPLICAS,
        }
    }

    /// The seed nodes of the URL, each as `redis://[userinfo@]host:port`.
    pub fn node_urls(&self) -> Result<Vec<String>, StoreError> {
        node_urls(&self.url)
    }
}

fn bad_url(url: &str, why: &str) -> StoreError {
    StoreError::Other(format!(
        "bad Redis Cluster URL {}: {why} (expected {CLUSTER_SCHEME}://[user:password@]host:port,host:port/)",
        crate::settings::redact_url(url)
    ))
}

/// `redis+cluster://u:p@h1:1,h2:2/` → `redis://u:p@h1:1`, `redis://u:p@h2:2`.
fn node_urls(url: &str) -> Result<Vec<String>, StoreError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad_url(url, "no scheme"));
    };
    if !scheme.eq_ignore_ascii_case(CLUSTER_SCHEME) {
        return Err(bad_url(url, "another scheme"));
    }
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(bad_url(url, "no query parameters are taken"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !(path.is_empty() || path == "0") {
        return Err(bad_url(
            url,
            "Redis Cluster has no databases (a path other than / or /0)",
        ));
    }
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(|host| {
            let host = host.trim();
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(bad_url(url, &format!("{host:?} is not host:port")));
            }
            Ok(match userinfo {
                Some(userinfo) => format!("redis://{userinfo}@{host}"),
                None => format!("redis://{host}"),
            })
        })
        .collect::<Result<_, _>>()?;
    if nodes.is_empty() {
        return Err(bad_url(url, "no node"));
    }
    Ok(nodes)
}

/// The Redis Cluster backend: a pool of cluster connections (each one keeps a
/// multiplexed connection per node and the slot map), opened lazily and used
/// round-robin. See the module documentation for what differs from one server.
#[derive(Debug, Clone)]
pub struct ClusterStore {
    inner: Arc<Inner>,
}

struct Inner {
    connections: Vec<ClusterConnection>,
    next: AtomicUsize,
    scripts: Scripts,
    url: String,
    wait_replicas: u32,
    /// The `WAIT` timeout, in milliseconds: half the socket timeout, so that
    /// its answer arrives within the call's bound.
    wait_ms: u64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore")
            .field("url", &self.url)
            .field("pool_size", &self.connections.len())
            .field("wait_replicas", &self.wait_replicas)
            .finish()
    }
}

/// Keys (by index) grouped by their slot, in first-seen order.
fn by_slot<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<Slot, usize> = HashMap::new();
    for (i, key) in keys.enumerate() {
        let g = *index.entry(Slot::for_key(key)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// The primary that owns `key`'s slot.
fn owner(key: &str) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master))
}

impl ClusterStore {
    /// A store for `options`. Connections are made in the background: a
    /// process starts (and degrades) while the cluster is down. Fails only on
    /// a malformed URL or option.
    pub fn new(options: &ClusterOptions) -> Result<ClusterStore, StoreError> {
        if options.pool_size == 0 {
            return Err(StoreError::Other("pool size must be at least 1".into()));
        }
        let nodes = options.node_urls()?;
        let client = ClusterClientBuilder::new(nodes)
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.socket_timeout)
            // One bound per call, redirects and reconnects included.
            .overall_response_timeout(Some(options.socket_timeout))
            // No retries by redis-rs: a write is never sent twice, and a call
            // costs at most one socket timeout. (The slot map is still
            // refreshed after a MOVED or a lost node.)
            .retries(0)
            .build()
            .map_err(|e| StoreError::Other(format!("Redis Cluster set-up: {e}")))?;
        let config = ClusterConfig::new()
            .set_connection_timeout(options.connect_timeout)
            .set_response_timeout(options.socket_timeout);
        let connections = (0..options.pool_size)
            .map(|_| client.get_pending_async_connection_with_config(config.clone()))
            .collect();
        let wait_ms = u64::try_from(options.socket_timeout.as_millis() / 2)
            .unwrap_or(u64::MAX)
            .max(1);
        Ok(ClusterStore {
            inner: Arc::new(Inner {
                connections,
                next: AtomicUsize::new(0),
                scripts: Scripts::new(),
                url: crate::settings::redact_url(&options.url),
                wait_replicas: options.wait_replicas,
                wait_ms,
            }),
        })
    }

    /// The URL in use, with any password hidden.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// A connection handle (a clone; round-robin over the pool).
    pub fn connection(&self) -> ClusterConnection {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.connections.len();
        self.inner.connections[i].clone()
    }

    /// The addresses (`host:port`) of the cluster's primaries, from
    /// `CLUSTER NODES` (for maintenance: SCAN runs on each).
    pub async fn primaries(&self) -> Result<Vec<String>, StoreError> {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut self.connection())
            .await
            .map_err(store_err)?;
        Ok(cluster_primaries(&nodes))
    }

    /// Run `cmd` on the primary at `address` (`host:port`).
    pub async fn on_node(&self, address: &str, cmd: redis::Cmd) -> Result<Value, StoreError> {
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
            .ok_or_else(|| StoreError::Other(format!("{address:?} is not host:port")))?;
        self.connection()
            .route_command(
                cmd,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }),
            )
            .await
            .map_err(store_err)
    }

    /// Run a read, and once more if its connection turned out dropped (a read
    /// is safe to repeat; never on a timeout: a frozen node costs one socket
    /// timeout, not two).
    async fn read<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: Fn(ClusterConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match read(self.connection()).await {
            Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
                read(self.connection()).await.map_err(store_err)
            }
            other => other.map_err(store_err),
        }
    }

    /// Run `script` on the keys' slot, then (unless `wait_replicas` is 0)
    /// `WAIT` on the same connection, as one pipeline to that node: the
    /// script's reply, once enough replicas have the write.
    async fn durable_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Value, StoreError> {
        let route_key = keys.first().copied().unwrap_or_default();
        let mut conn = self.connection();
        let wait = self.inner.wait_replicas;
        for attempt in 0..2 {
            let mut pipe = redis::pipe();
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(keys.len())
                .arg(keys);
            for a in args {
                cmd.arg(*a);
            }
            let count = if wait > 0 {
                pipe.cmd("WAIT").arg(wait).arg(self.inner.wait_ms);
                2
            } else {
                1
            };
            let mut replies = conn
                .route_pipeline(pipe, 0, count, owner(route_key))
                .await
                .map_err(store_err)?;
            if replies.len() != count {
                return Err(StoreError::Other(format!(
                    "a pipeline of {count} answered {} replies",
                    replies.len()
                )));
            }
            let acked = if wait > 0 { replies.pop() } else { None };
            let reply = replies.pop().expect("one reply");
            if let Value::ServerError(e) = &reply
                && e.code() == "NOSCRIPT"
                && attempt == 0
            {
                script.load_async(&mut conn).await.map_err(store_err)?;
                continue;
            }
            let reply = reply.extract_error().map_err(store_err)?;
            if let Some(acked) = acked {
                match acked {
                    Value::Int(n) if n >= i64::from(wait) => {}
                    Value::Int(n) => {
                        return Err(StoreError::Unavailable(format!(
                            "written on the primary, but {n} of {wait} replicas confirmed it \
                             within {} ms (WAIT): it could be lost at a failover",
                            self.inner.wait_ms
                        )));
                    }
                    other => return Err(unexpected("WAIT", &other)),
                }
            }
            return Ok(reply);
        }
        Err(StoreError::Other(
            "the script is missing on the node after loading it".into(),
        ))
    }

    /// The values of `keys` (any slots): one `MGET` (or, for many keys, the
    /// bounded script) per slot, concurrently; each slot's part is atomic.
    async fn read_grouped(
        &self,
        keys: &[&str],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let groups = by_slot(keys.iter().copied());
        let parts = try_join_all(groups.iter().map(|group| async move {
            let slot_keys: Vec<&str> = group.iter().map(|&i| keys[i]).collect();
            let values = match slot_keys.as_slice() {
                [key] => {
                    let v: Value = self
                        .read(|mut c| async move {
                            redis::cmd("GET").arg(*key).query_async(&mut c).await
                        })
                        .await?;
                    vec![bytes(v, "GET")?]
                }
                many if many.len() <= MGET_THEN_CHECK => {
                    let v: Value = self
                        .read(|mut c| async move {
                            redis::cmd("MGET").arg(many).query_async(&mut c).await
                        })
                        .await?;
                    bytes_list(v, "MGET")?
                }
                many => {
                    let mut call = self.inner.scripts.get_many_bounded.key(many);
                    call.arg(max_bytes);
                    let call = &call;
                    let v: Value = self
                        .read(|mut c| async move { call.invoke_async(&mut c).await })
                        .await?;
                    bytes_list(v, "get-many")?
                }
            };
            if values.len() != group.len() {
                return Err(StoreError::Other(format!(
                    "MGET returned {} values for {} keys",
                    values.len(),
                    group.len()
                )));
            }
            Ok::<_, StoreError>(values)
        }))
        .await?;
        let mut out = vec![None; keys.len()];
        for (group, values) in groups.iter().zip(parts) {
            for (&i, v) in group.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// The `host:port` of every primary in a `CLUSTER NODES` reply, except those
/// flagged as failed (for maintenance tools that visit each primary).
pub fn cluster_primaries(nodes: &str) -> Vec<String> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let flags = fields.get(2)?;
            let is_primary = flags.split(',').any(|f| f == "master");
            let failed = flags.split(',').any(|f| f == "fail" || f == "noaddr");
            // `host:port@cport[,hostname]`
            let address = fields.get(1)?.split('@').next()?;
            (is_primary && !failed && !address.starts_with(':')).then(|| address.to_owned())
        })
        .collect()
}

#[async_trait]
impl Store for ClusterStore {
    fn kind(&self) -> &'static str {
        "redis-cluster"
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        // Every primary answers, or the cluster is not whole.
        let _: Value = self
            .connection()
            .route_command(
                redis::cmd("PING"),
                RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::AllSucceeded),
                )),
            )
            .await
            .map_err(store_err)?;
        Ok(start.elapsed())
    }

    async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        let mut total = MemoryInfo::default();
        let primaries = self.primaries().await?;
        for address in &primaries {
            let mut cmd = redis::cmd("INFO");
            cmd.arg("memory").arg("stats").arg("server");
            let info = match self.on_node(address, cmd).await? {
                Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                Value::VerbatimString { text, .. } => text,
                other => return Err(unexpected("INFO", &other)),
            };
            let node = memory_info(&info);
            // Summed over the primaries; the policy and version of the first.
            total.used_bytes += node.used_bytes;
            if let Some(max) = node.max_bytes {
                total.max_bytes = Some(total.max_bytes.unwrap_or(0) + max);
            }
            total.evicted_keys += node.evicted_keys;
            if total.eviction_policy.is_empty() {
                total.eviction_policy = node.eviction_policy;
                total.version = node.version;
            }
        }
        Ok(total)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let v: Value = self
            .read(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        bytes(v, "GET")
    }

    async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let _: Value = set_command(key, value, ttl_ms, false)
            .query_async(&mut self.connection())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut self.connection())
            .await
            .map_err(store_err)?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.read(|mut c| async move { redis::cmd("EXISTS").arg(key).query_async(&mut c).await })
            .await
    }

    async fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        expire_on(&mut self.connection(), key, ttl_ms)
            .await
            .map_err(store_err)
    }

    async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        let ms: i64 = self
            .read(|mut c| async move { redis::cmd("PTTL").arg(key).query_async(&mut c).await })
            .await?;
        key_ttl(ms)
    }

    async fn now_micros(&self) -> Result<u64, StoreError> {
        let (secs, micros): (u64, u64) = self
            .read(|mut c| async move { redis::cmd("TIME").query_async(&mut c).await })
            .await?;
        Ok(secs * 1_000_000 + micros)
    }

    async fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = self.read_grouped(&keys, max_bytes).await?;
        if super::values_size(&values) > max_bytes {
            return Err(StoreError::over_budget(max_bytes));
        }
        Ok(values)
    }

    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let groups = by_slot(entries.iter().map(|(k, _)| k.as_str()));
        try_join_all(groups.iter().map(|group| async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for &i in group {
                let (key, value) = &entries[i];
                let cmd = pipe.cmd("SET").arg(key).arg(value);
                if let Some(ms) = ttl_ms {
                    cmd.arg("PX").arg(lifetime(ms));
                }
                cmd.ignore();
            }
            let _: () = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(store_err)?;
            Ok::<(), StoreError>(())
        }))
        .await?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let groups = by_slot(keys.iter().map(String::as_str));
        let counts = try_join_all(groups.iter().map(|group| async move {
            let slot_keys: Vec<&str> = group.iter().map(|&i| keys[i].as_str()).collect();
            let n: u32 = redis::cmd("UNLINK")
                .arg(slot_keys)
                .query_async(&mut self.connection())
                .await
                .map_err(store_err)?;
            Ok::<u32, StoreError>(n)
        }))
        .await?;
        Ok(counts.into_iter().sum())
    }

    async fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<IndirectRead, StoreError> {
        // Every key is named by the client (a cluster script may not compute
        // them): read the pointer, then the pointer again with the entries it
        // names and the `also` keys; done when both reads of the pointer agree.
        let mut seen = self.get(pointer).await?;
        for _ in 0..16 {
            let entries: Vec<String> = match seen.as_deref().map(super::pointer_text) {
                Some(Some(p)) => suffixes.iter().map(|s| format!("{prefix}{p}{s}")).collect(),
                _ => Vec::new(),
            };
            let mut keys: Vec<&str> = Vec::with_capacity(1 + entries.len() + also.len());
            keys.push(pointer);
            keys.extend(entries.iter().map(String::as_str));
            keys.extend(also.iter().map(String::as_str));
            let mut found = self
                .read_grouped(&keys, max_bytes.saturating_add(64))
                .await?;
            let also_values = found.split_off(1 + entries.len());
            let values = found.split_off(1);
            let now = found.pop().flatten();
            if now != seen {
                seen = now;
                continue;
            }
            let read = IndirectRead {
                pointer: now,
                values: if entries.is_empty() {
                    vec![None; suffixes.len()]
                } else {
                    values
                },
                also: also_values,
            };
            if super::values_size(&read.values) + super::values_size(&read.also) > max_bytes {
                return Err(StoreError::over_budget(max_bytes));
            }
            return Ok(read);
        }
        Err(StoreError::Other(
            "get-indirect: the pointer kept changing".into(),
        ))
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        let delta_text = delta.to_string();
        let reply = self
            .durable_script(
                &self.inner.scripts.increment,
                &[key],
                &[delta_text.as_bytes()],
            )
            .await?;
        bytes(reply, "increment")?
            .map(|before| incremented(&before, delta))
            .transpose()
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let v: Value = set_command(key, value, ttl_ms, true)
            .query_async(&mut self.connection())
            .await
            .map_err(store_err)?;
        Ok(!matches!(v, Value::Nil))
    }

    async fn swap_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let (flag, expected): (&[u8], &[u8]) = match expected {
            Some(e) => (b"1", e),
            None => (b"0", b""),
        };
        let reply = self
            .durable_script(&self.inner.scripts.swap_if, &[key], &[flag, expected, new])
            .await?;
        match reply {
            Value::Int(n) => Ok(n == 1),
            other => Err(unexpected("swap-if", &other)),
        }
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let n: i64 = self
            .inner
            .scripts
            .delete_if
            .key(key)
            .arg(expected)
            .invoke_async(&mut self.connection())
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        if entries.is_empty() {
            return Ok(PutOutcome::Stored);
        }
        // One script on the counter's slot: the entries must share it (a
        // namespace's keys do). Redis refuses others with CROSSSLOT.
        let outcome: i64 = put_counted_call(
            &self.inner.scripts.put_counted,
            entries,
            ttl_ms,
            counter,
            if_absent,
        )
        .invoke_async(&mut self.connection())
        .await
        .map_err(store_err)?;
        put_outcome(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        assert!(is_cluster_url("redis+cluster://h:1/"));
        assert!(!is_cluster_url("redis://h:1/"));
        assert_eq!(
            node_urls("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/").unwrap(),
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert_eq!(
            node_urls("redis+cluster://app:pw@h1:7000").unwrap(),
            ["redis://app:pw@h1:7000"]
        );
        for bad in [
            "redis+cluster://h1:7000/3",
            "redis+cluster://h1,h2:1/",
            "redis+cluster://h1:0/",
            "redis+cluster://h1:1/?db=2",
            "redis://h1:1/",
        ] {
            let err = node_urls(bad).unwrap_err().to_string();
            assert!(err.contains("Cluster URL"), "{bad}: {err}");
        }
        let err = node_urls("redis+cluster://u:secret@h1/").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn keys_are_grouped_by_slot_in_order() {
        let keys = ["{a}1", "b", "{a}2", "{b}x", "{a}3"];
        let groups = by_slot(keys.iter().copied());
        assert_eq!(groups, vec![vec![0, 2, 4], vec![1, 3]]);
    }

    #[test]
    fn primaries_come_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            cluster_primaries(nodes),
            ["127.0.0.1:30002", "127.0.0.1:30001"]
        );
    }
}
