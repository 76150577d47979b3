//! [`RedisStore`]: the Redis backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value};

use crate::settings::defaults;

use super::{Counter, IndirectRead, MemoryInfo, PutOutcome, Store, StoreError, TtlReads};
use crate::types::Ttl;

/// How to reach Redis. Defaults follow the reference deployment: pool of 50,
/// connect and socket timeouts of 5 s, database 1 when the URL names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:pass@]host[:port][/db]` (or `rediss://`).
    pub url: String,
    /// Most connections opened (each is multiplexed: many requests in flight).
    pub pool_size: usize,
    /// Longest wait to establish a connection.
    pub connect_timeout: Duration,
    /// Longest wait for a reply to one command.
    pub socket_timeout: Duration,
    /// Certificates for `rediss://` beyond the system's trust store.
    pub tls: RedisTls,
}

impl RedisOptions {
    /// Default options for `url`.
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            pool_size: defaults::POOL_SIZE,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            socket_timeout: defaults::SOCKET_TIMEOUT,
            tls: RedisTls::default(),
        }
    }

    /// A client for these options (the URL with its default database, the
    /// TLS files read). Connects to nothing.
    pub fn client(&self) -> Result<redis::Client, StoreError> {
        self.tls.client(with_default_db(&self.url).as_str())
    }
}

/// TLS for `rediss://` URLs. With no files, the server's certificate is
/// checked against the system's trust store (rustls, ring).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// PEM file of the certificate authority (or authorities) to trust
    /// instead of the system's trust store.
    pub ca_cert: Option<std::path::PathBuf>,
    /// PEM file of a client certificate, for servers that require one
    /// (`tls-auth-clients yes`); needs [`client_key`](Self::client_key).
    pub client_cert: Option<std::path::PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<std::path::PathBuf>,
}

impl RedisTls {
    /// Whether any file is set.
    pub fn is_set(&self) -> bool {
        self.ca_cert.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// A client for `info` with these files. Without files, the same as
    /// `redis::Client::open`; with files, the URL must be `rediss://`.
    pub fn client<I: redis::IntoConnectionInfo>(
        &self,
        info: I,
    ) -> Result<redis::Client, StoreError> {
        let bad_url = |e: redis::RedisError| StoreError::Other(format!("bad Redis URL: {e}"));
        if !self.is_set() {
            return redis::Client::open(info).map_err(bad_url);
        }
        let info = info.into_connection_info().map_err(bad_url)?;
        if !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
            return Err(StoreError::Other(
                "Redis TLS files are set but the Redis URL is not rediss://".into(),
            ));
        }
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| StoreError::Other(format!("Redis TLS {what} {}: {e}", path.display())))
        };
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read(cert, "client certificate")?,
                client_key: read(key, "client key")?,
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Other(
                    "a Redis TLS client certificate needs its key, and a key its certificate"
                        .into(),
                ));
            }
        };
        let root_cert = match &self.ca_cert {
            Some(ca) => Some(read(ca, "CA certificate")?),
            None => None,
        };
        redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls,
                root_cert,
            },
        )
        .map_err(|e| StoreError::Other(format!("Redis TLS: {e}")))
    }
}

/// `url`, with database 1 when it names none (the reference's cache database).
fn with_default_db(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if !(scheme == "redis" || scheme == "rediss" || scheme == "valkey" || scheme == "valkeys") {
        return url.to_owned();
    }
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("db="))) {
        return url.to_owned();
    }
    let (authority, path) = match authority_and_path.split_once('/') {
        Some((a, p)) => (a, p),
        None => (authority_and_path, ""),
    };
    if !path.is_empty() {
        return url.to_owned();
    }
    let mut out = format!("{scheme}://{authority}/1");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The database number `url` selects (after [`with_default_db`]).
pub(crate) fn database_number(url: &str) -> u32 {
    let url = with_default_db(url);
    let Some((_, rest)) = url.split_once("://") else {
        return 0;
    };
    let (authority_and_path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    if let Some(db) = query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("db="))) {
        return db.parse().unwrap_or(0);
    }
    authority_and_path
        .split_once('/')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0)
}

/// The server-side scripts behind the multi-step primitives. Each runs
/// atomically on the server; redis-rs sends `EVALSHA` and loads the script on
/// `NOSCRIPT`.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) increment: Script,
    pub(super) swap_if: Script,
    pub(super) delete_if: Script,
    get_indirect: Script,
    get_indirect_ttl: Script,
    get_many_ttl: Script,
    pub(super) get_many_bounded: Script,
    pub(super) put_counted: Script,
}

/// Lua that counts the bytes of the values at the keys in `KEYS` (from
/// `first`), or of `prefix .. pointer .. suffix` for the suffixes in `ARGV`,
/// against the budget `budget` (a Lua expression), before anything is read:
/// over it, the script fails with `TOOLARGE` and Redis builds no reply.
macro_rules! budget_check {
    () => {
        r"local function over_budget(keys, budget)
            local total = 0
            for _, k in ipairs(keys) do
              total = total + redis.call('STRLEN', k)
              if total > budget then return true end
            end
            return false
          end"
    };
}

/// The start of both indirect reads (KEYS[1] = pointer, KEYS[2..] = also;
/// ARGV[1] = budget, ARGV[2] = prefix, ARGV[3..] = suffixes): `p`, the
/// pointer's value; `read`, the entry keys (`entries` of them, none without
/// a pointer) then the `also` keys; over budget, the TOOLARGE error.
macro_rules! indirect_keys {
    () => {
        r"
                  local p = redis.call('GET', KEYS[1])
                  local read = {}
                  if p then
                    for i = 3, #ARGV do read[#read + 1] = ARGV[2] .. p .. ARGV[i] end
                  end
                  local entries = #read
                  for i = 2, #KEYS do read[#read + 1] = KEYS[i] end
                  if over_budget(read, tonumber(ARGV[1])) then
                    return redis.error_reply('TOOLARGE the values found are over budget')
                  end"
    };
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            // Django's incr: never creates the key; INCRBY keeps the expiry.
            // Answers the value found, from which the caller computes the
            // sum: INCRBY's reply reaches Lua as a double, exact only up to
            // 2^53.
            increment: Script::new(
                r"local before = redis.call('GET', KEYS[1])
                  if before then redis.call('INCRBY', KEYS[1], ARGV[1]) end
                  return before",
            ),
            // ARGV[1] = '1' when a value is expected (ARGV[2]), '0' when the
            // key must be missing; ARGV[3] is the new value (no expiry).
            swap_if: Script::new(
                r"local cur = redis.call('GET', KEYS[1])
                  if ARGV[1] == '1' then
                    if cur ~= ARGV[2] then return 0 end
                  elseif cur then
                    return 0
                  end
                  redis.call('SET', KEYS[1], ARGV[3])
                  return 1",
            ),
            delete_if: Script::new(
                r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                    return redis.call('DEL', KEYS[1])
                  end
                  return 0",
            ),
            // KEYS[1] = pointer, KEYS[2..] = also; ARGV[1] = budget,
            // ARGV[2] = prefix, ARGV[3..] = suffixes.
            get_indirect: Script::new(concat!(
                budget_check!(),
                indirect_keys!(),
                r"
                  local values = {}
                  for i = 1, entries do values[i] = redis.call('GET', read[i]) end
                  local also = {}
                  for i = 2, #KEYS do also[i - 1] = redis.call('GET', KEYS[i]) end
                  return {p, values, also}"
            )),
            // As get_indirect, plus PTTL of every key read (pointer, entries, also).
            get_indirect_ttl: Script::new(concat!(
                budget_check!(),
                indirect_keys!(),
                r"
                  local values, ttls = {}, {redis.call('PTTL', KEYS[1])}
                  for i = 3, #ARGV do
                    if p then
                      values[i - 2] = redis.call('GET', read[i - 2])
                      ttls[#ttls + 1] = redis.call('PTTL', read[i - 2])
                    else
                      values[i - 2] = false
                      ttls[#ttls + 1] = -2
                    end
                  end
                  local also = {}
                  for i = 2, #KEYS do
                    also[i - 1] = redis.call('GET', KEYS[i])
                    ttls[#ttls + 1] = redis.call('PTTL', KEYS[i])
                  end
                  return {p, values, also, ttls}"
            )),
            // ARGV[1] = budget.
            get_many_ttl: Script::new(concat!(
                budget_check!(),
                r"
                  if over_budget(KEYS, tonumber(ARGV[1])) then
                    return redis.error_reply('TOOLARGE the values found are over budget')
                  end
                  local out = {}
                  for i = 1, #KEYS do
                    out[2 * i - 1] = redis.call('GET', KEYS[i])
                    out[2 * i] = redis.call('PTTL', KEYS[i])
                  end
                  return out"
            )),
            // ARGV[1] = budget. Read once the sizes are known to fit.
            get_many_bounded: Script::new(concat!(
                budget_check!(),
                r"
                  if over_budget(KEYS, tonumber(ARGV[1])) then
                    return redis.error_reply('TOOLARGE the values found are over budget')
                  end
                  local out = {}
                  for i = 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) end
                  return out"
            )),
            // KEYS[1] = counter, KEYS[2..] = entries; ARGV[1] = limit,
            // ARGV[2] = the counter's TTL (ms), ARGV[3] = the entries' TTL
            // (ms, '' for none), ARGV[4] = '1' for if-absent, ARGV[5..] = values.
            // Answers 0 stored, 1 exists, 2 over the limit.
            put_counted: Script::new(
                r"local n = #KEYS - 1
                  if ARGV[4] == '1' then
                    if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
                    n = 1
                  end
                  local size = 0
                  for i = 1, n do size = size + #ARGV[4 + i] end
                  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
                  if used == nil then
                    return redis.error_reply('ERR the byte counter is not an integer')
                  end
                  if used + size > tonumber(ARGV[1]) then return 2 end
                  redis.call('INCRBY', KEYS[1], size)
                  redis.call('PEXPIRE', KEYS[1], ARGV[2])
                  for i = 1, n do
                    if ARGV[3] == '' then
                      redis.call('SET', KEYS[1 + i], ARGV[4 + i])
                    else
                      redis.call('SET', KEYS[1 + i], ARGV[4 + i], 'PX', ARGV[3])
                    end
                  end
                  return 0",
            ),
        }
    }
}

/// The Redis backend: a pool of [`ConnectionManager`]s (each one multiplexed,
/// cheap to clone, reconnecting by itself), opened lazily and used round-robin.
///
/// When Redis is down, calls fail fast with [`StoreError::Unavailable`] and
/// each new call tries to reconnect, so service resumes as soon as Redis is back.
#[derive(Debug, Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connections: Vec<ArcSwap<ConnectionManager>>,
    /// What new connection managers are made from (see [`RedisStore::fail`]).
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// When the pool was last replaced after a refused login.
    renewed_at: Mutex<Option<Instant>>,
    next: AtomicUsize,
    scripts: Scripts,
    url: String,
}

/// Least time between two renewals of the pool after refused logins.
const RENEW_AFTER: Duration = Duration::from_millis(200);

/// Whether Redis refused this connection's credentials (wrong password, ACL
/// user deleted or disabled, no password given where one is required).
pub(crate) fn login_refused(err: &redis::RedisError) -> bool {
    let auth = |text: &str| {
        text.contains("NOAUTH") || text.contains("WRONGPASS") || text.contains("Authentication")
    };
    err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("NOAUTH" | "WRONGPASS"))
        || err.detail().is_some_and(auth)
}

pub(super) fn store_err(err: redis::RedisError) -> StoreError {
    if login_refused(&err) {
        return StoreError::Unavailable(err.to_string());
    }
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        // Credentials refused or revoked (wrong password, ACL user deleted or
        // disabled): for the cache, Redis is out of reach until they work.
        || err.kind() == redis::ErrorKind::AuthenticationFailed
        // Redis Cluster moving slots or failing over (MOVED, ASK, TRYAGAIN,
        // CLUSTERDOWN), once redirects are spent: as while a server is down.
        || err.is_cluster_error()
    {
        return StoreError::Unavailable(err.to_string());
    }
    let text = err.to_string();
    if text.contains("not an integer") || text.contains("overflow") {
        return StoreError::NotAnInteger;
    }
    if [
        "NOAUTH",
        "WRONGPASS",
        "LOADING",
        "MASTERDOWN",
        "READONLY",
        "BUSY",
        "TRYAGAIN",
        "CLUSTERDOWN",
        // Full, with maxmemory-policy noeviction: writes are refused until
        // memory is freed, as while the server is down.
        "OOM",
    ]
    .iter()
    .any(|code| err.code() == Some(code))
    {
        return StoreError::Unavailable(text);
    }
    if err.code() == Some("TOOLARGE") {
        return StoreError::TooLarge(text);
    }
    StoreError::Other(text)
}

/// The sum `INCRBY` stored, from the value it found: Redis took that value
/// for an integer and found no overflow, so neither fails here.
pub(super) fn incremented(before: &[u8], delta: i64) -> Result<i64, StoreError> {
    std::str::from_utf8(before)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .and_then(|n| n.checked_add(delta))
        .ok_or_else(|| {
            let before = String::from_utf8_lossy(before);
            StoreError::Other(format!("INCRBY by {delta} accepted {before:?}"))
        })
}

/// Up to this many keys, `get_many` is one `MGET` and the budget is checked
/// on the reply (one round trip, no script: at most this many values in
/// flight, each no larger than the component lets a write make it); beyond
/// it, a script checks the sizes in Redis before any value is sent.
pub(super) const MGET_THEN_CHECK: usize = 8;

/// The longest lifetime given to Redis, in milliseconds: some 146 million
/// years. Redis refuses a TTL past `i64::MAX` ms, or one that ends past
/// `i64::MAX` ms since the epoch; the WIT takes any `u64`, and no key can
/// tell a longer lifetime from this one.
const LONGEST_TTL_MS: u64 = i64::MAX as u64 / 2;

/// A TTL of `ms` milliseconds as Redis takes it (`PX`, `PEXPIRE`).
pub(super) fn lifetime(ms: u64) -> u64 {
    ms.min(LONGEST_TTL_MS)
}

/// What a `PTTL` reply says of a key's life.
pub(super) fn key_ttl(ms: i64) -> Result<Ttl, StoreError> {
    match ms {
        -2 => Ok(Ttl::Missing),
        -1 => Ok(Ttl::Forever),
        ms => u64::try_from(ms)
            .map(|ms| Ttl::Remaining(Duration::from_millis(ms)))
            .map_err(|_| StoreError::Other(format!("PTTL answered {ms}"))),
    }
}

fn ttl_list(value: Value, what: &str) -> Result<Vec<Ttl>, StoreError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(ms) => key_ttl(ms),
                other => Err(unexpected(what, &other)),
            })
            .collect(),
        other => Err(unexpected(what, &other)),
    }
}

/// `SET key value [NX] [PX ms]`: a write, or with `if_absent` an add.
pub(super) fn set_command(
    key: &str,
    value: &[u8],
    ttl_ms: Option<u64>,
    if_absent: bool,
) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if if_absent {
        cmd.arg("NX");
    }
    if let Some(ms) = ttl_ms {
        cmd.arg("PX").arg(lifetime(ms));
    }
    cmd
}

/// Set (`Some`) or remove (`None`) the lifetime of `key` on `conn`; true if
/// the key exists.
pub(super) async fn expire_on<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    ttl_ms: Option<u64>,
) -> redis::RedisResult<bool> {
    match ttl_ms {
        Some(ms) => {
            let n: i64 = redis::cmd("PEXPIRE")
                .arg(key)
                .arg(lifetime(ms))
                .query_async(conn)
                .await?;
            Ok(n == 1)
        }
        None => {
            // PERSIST answers 0 both for a missing key and for one with no
            // expiry: ask EXISTS in the same atomic step.
            let (exists, _): (bool, i64) = redis::pipe()
                .atomic()
                .exists(key)
                .persist(key)
                .query_async(conn)
                .await?;
            Ok(exists)
        }
    }
}

/// The `put-counted` script called for these entries (the counter's key
/// first: all must share its slot on a cluster).
pub(super) fn put_counted_call<'a>(
    script: &'a Script,
    entries: &[(String, Vec<u8>)],
    ttl_ms: Option<u64>,
    counter: &Counter,
    if_absent: bool,
) -> redis::ScriptInvocation<'a> {
    let mut call = script.key(&counter.key);
    for (key, _) in entries {
        call.key(key);
    }
    // Lua counts in doubles: exact up to 2^53 bytes, far past any quota.
    call.arg(counter.limit.min(1 << 53))
        .arg(lifetime(counter.ttl_ms))
        .arg(ttl_ms.map_or_else(String::new, |ms| lifetime(ms).to_string()))
        .arg(if if_absent { "1" } else { "0" });
    for (_, value) in entries {
        call.arg(value);
    }
    call
}

/// What the `put-counted` script's answer means.
pub(super) fn put_outcome(answer: i64) -> Result<PutOutcome, StoreError> {
    match answer {
        0 => Ok(PutOutcome::Stored),
        1 => Ok(PutOutcome::Exists),
        2 => Ok(PutOutcome::OverLimit),
        other => Err(StoreError::Other(format!("put-counted answered {other}"))),
    }
}

/// The fields of `INFO memory stats server` a [`MemoryInfo`] holds.
pub(super) fn memory_info(info: &str) -> MemoryInfo {
    let field = |name: &str| {
        info.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
    MemoryInfo {
        used_bytes: number("used_memory").unwrap_or(0),
        max_bytes: number("maxmemory").filter(|&m| m > 0),
        eviction_policy: field("maxmemory_policy").unwrap_or_else(|| "unknown".into()),
        evicted_keys: number("evicted_keys").unwrap_or(0),
        version: field("redis_version"),
    }
}

pub(super) fn unexpected(what: &str, value: &Value) -> StoreError {
    StoreError::Other(format!("unexpected reply to {what}: {value:?}"))
}

pub(super) fn bytes(value: Value, what: &str) -> Result<Option<Vec<u8>>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        Value::Int(n) => Ok(Some(n.to_string().into_bytes())),
        other => Err(unexpected(what, &other)),
    }
}

pub(super) fn bytes_list(value: Value, what: &str) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    match value {
        Value::Array(items) => items.into_iter().map(|v| bytes(v, what)).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(what, &other)),
    }
}

impl RedisStore {
    /// A store for `options`. No connection is made yet: the first command
    /// connects, so a process starts (and degrades) while Redis is down.
    /// Fails only on a malformed URL or option.
    pub fn new(options: &RedisOptions) -> Result<RedisStore, StoreError> {
        if options.pool_size == 0 {
            return Err(StoreError::Other("pool size must be at least 1".into()));
        }
        let url = with_default_db(&options.url);
        let client = options.client()?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.socket_timeout))
            // Fail fast while Redis is down; the next call tries again.
            .set_number_of_retries(0);
        let connections = (0..options.pool_size)
            .map(|_| new_manager(&client, &config).map(ArcSwap::from_pointee))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                connections,
                client,
                config,
                renewed_at: Mutex::new(None),
                next: AtomicUsize::new(0),
                scripts: Scripts::new(),
                url: crate::settings::redact_url(&url),
            }),
        })
    }

    /// The URL in use, with any password hidden.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// A connection handle (a clone; round-robin over the pool).
    pub fn connection(&self) -> ConnectionManager {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.connections.len();
        ConnectionManager::clone(&self.inner.connections[i].load())
    }

    /// Map a command's error; when Redis refused the login, also replace the
    /// pool's connection managers.
    ///
    /// A connection manager reconnects only after I/O errors: one whose
    /// login was refused keeps that error for good, so a password rotated or
    /// an ACL user re-enabled would never be noticed. Fresh managers (lazy:
    /// they connect on their first command) try the credentials again, at
    /// most every [`RENEW_AFTER`].
    fn fail(&self, err: redis::RedisError) -> StoreError {
        if login_refused(&err) {
            let mut renewed_at = self
                .inner
                .renewed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if renewed_at.is_none_or(|at| at.elapsed() >= RENEW_AFTER) {
                *renewed_at = Some(Instant::now());
                for slot in &self.inner.connections {
                    match new_manager(&self.inner.client, &self.inner.config) {
                        Ok(fresh) => slot.store(Arc::new(fresh)),
                        Err(e) => tracing::warn!(error = %e, "could not renew a Redis connection"),
                    }
                }
            }
        }
        store_err(err)
    }
}

/// A lazy connection manager: it connects on its first command.
fn new_manager(
    client: &redis::Client,
    config: &ConnectionManagerConfig,
) -> Result<ConnectionManager, StoreError> {
    ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
        .map_err(|e| StoreError::Other(format!("Redis connection set-up: {e}")))
}

/// Run a read on a pooled connection; if that connection turns out to be
/// dead (the server restarted), run it once more: the connection manager has
/// begun reconnecting, and a read is safe to repeat. Writes are never retried
/// (they may have been applied before the connection died).
async fn read_retry<T, F, Fut>(store: &RedisStore, read: F) -> Result<T, StoreError>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    match read(store.connection()).await {
        // Not on a timeout: a frozen server must cost one socket timeout, not two.
        Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
            read(store.connection()).await.map_err(|e| store.fail(e))
        }
        other => other.map_err(|e| store.fail(e)),
    }
}

/// Run a read-only script, with [`read_retry`]'s one retry.
async fn read_script(
    store: &RedisStore,
    call: &redis::ScriptInvocation<'_>,
) -> Result<Value, StoreError> {
    read_retry(
        store,
        |mut c| async move { call.invoke_async(&mut c).await },
    )
    .await
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(start.elapsed())
    }

    async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .arg("stats")
            .arg("server")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(memory_info(&info))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let v: Value = read_retry(self, |mut c| async move { c.get(key).await }).await?;
        bytes(v, "GET")
    }

    async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let _: Value = set_command(key, value, ttl_ms, false)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = self.connection().del(key).await.map_err(|e| self.fail(e))?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        read_retry(self, |mut c| async move { c.exists(key).await }).await
    }

    async fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        expire_on(&mut self.connection(), key, ttl_ms)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        let ms: i64 = read_retry(self, |mut c| async move {
            redis::cmd("PTTL").arg(key).query_async(&mut c).await
        })
        .await?;
        key_ttl(ms)
    }

    async fn now_micros(&self) -> Result<u64, StoreError> {
        let (secs, micros): (u64, u64) = read_retry(self, |mut c| async move {
            redis::cmd("TIME").query_async(&mut c).await
        })
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
        if keys.len() > MGET_THEN_CHECK {
            // Many keys: sizes are checked in Redis before any value is sent.
            let mut call = self.inner.scripts.get_many_bounded.key(keys);
            call.arg(max_bytes);
            let reply = read_script(self, &call).await?;
            return bytes_list(reply, "get-many");
        }
        let values = if let [key] = keys {
            // One key (a global `get`): GET costs Redis less than MGET, and
            // its reply is one bulk string, not an array.
            vec![self.get(key).await?]
        } else {
            let v: Value = read_retry(self, |mut c| async move {
                redis::cmd("MGET").arg(keys).query_async(&mut c).await
            })
            .await?;
            bytes_list(v, "MGET")?
        };
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
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, value) in entries {
            let cmd = pipe.cmd("SET").arg(key).arg(value);
            if let Some(ms) = ttl_ms {
                cmd.arg("PX").arg(lifetime(ms));
            }
            cmd.ignore();
        }
        let _: () = pipe
            .query_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let n: u32 = redis::cmd("UNLINK")
            .arg(keys)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n)
    }

    async fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<IndirectRead, StoreError> {
        let mut call = self.inner.scripts.get_indirect.key(pointer);
        call.key(also).arg(max_bytes).arg(prefix).arg(suffixes);
        let reply = read_script(self, &call).await?;
        let Value::Array(mut parts) = reply else {
            return Err(unexpected("get-indirect", &reply));
        };
        if parts.len() != 3 {
            return Err(StoreError::Other(format!(
                "get-indirect returned {} parts",
                parts.len()
            )));
        }
        let also_values = bytes_list(parts.pop().expect("3 parts"), "get-indirect")?;
        let values = bytes_list(parts.pop().expect("3 parts"), "get-indirect")?;
        let ptr = bytes(parts.pop().expect("3 parts"), "get-indirect")?;
        // Lua arrays cannot end in nil, but `false` becomes nil: lengths hold.
        let values = if ptr.is_some() {
            values
        } else {
            vec![None; suffixes.len()]
        };
        Ok(IndirectRead {
            pointer: ptr,
            values,
            also: also_values,
        })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        let before: Option<Vec<u8>> = self
            .inner
            .scripts
            .increment
            .key(key)
            .arg(delta)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        before.map(|before| incremented(&before, delta)).transpose()
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
            .map_err(|e| self.fail(e))?;
        Ok(!matches!(v, Value::Nil))
    }

    async fn swap_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let (flag, expected): (&str, &[u8]) = match expected {
            Some(e) => ("1", e),
            None => ("0", b""),
        };
        let n: i64 = self
            .inner
            .scripts
            .swap_if
            .key(key)
            .arg(flag)
            .arg(expected)
            .arg(new)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n == 1)
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
            .map_err(|e| self.fail(e))?;
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
        let outcome: i64 = put_counted_call(
            &self.inner.scripts.put_counted,
            entries,
            ttl_ms,
            counter,
            if_absent,
        )
        .invoke_async(&mut self.connection())
        .await
        .map_err(|e| self.fail(e))?;
        put_outcome(outcome)
    }
}

#[async_trait]
impl TtlReads for RedisStore {
    async fn get_many_ttl(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<(Option<Vec<u8>>, Ttl)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.inner.scripts.get_many_ttl.key(keys);
        call.arg(max_bytes);
        let reply = read_script(self, &call).await?;
        let Value::Array(items) = reply else {
            return Err(unexpected("get-many-ttl", &reply));
        };
        if items.len() != 2 * keys.len() {
            return Err(StoreError::Other(format!(
                "get-many-ttl returned {} items for {} keys",
                items.len(),
                keys.len()
            )));
        }
        let mut out = Vec::with_capacity(keys.len());
        let mut items = items.into_iter();
        while let (Some(v), Some(t)) = (items.next(), items.next()) {
            let ttl = match t {
                Value::Int(ms) => key_ttl(ms)?,
                other => return Err(unexpected("get-many-ttl", &other)),
            };
            out.push((bytes(v, "get-many-ttl")?, ttl));
        }
        Ok(out)
    }

    async fn get_indirect_ttl(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<(IndirectRead, Vec<Ttl>), StoreError> {
        let mut call = self.inner.scripts.get_indirect_ttl.key(pointer);
        call.key(also).arg(max_bytes).arg(prefix).arg(suffixes);
        let reply = read_script(self, &call).await?;
        let Value::Array(mut parts) = reply else {
            return Err(unexpected("get-indirect-ttl", &reply));
        };
        if parts.len() != 4 {
            return Err(StoreError::Other(format!(
                "get-indirect-ttl returned {} parts",
                parts.len()
            )));
        }
        let ttls = ttl_list(parts.pop().expect("4 parts"), "get-indirect-ttl")?;
        let also_values = bytes_list(parts.pop().expect("4 parts"), "get-indirect-ttl")?;
        let values = bytes_list(parts.pop().expect("4 parts"), "get-indirect-ttl")?;
        let ptr = bytes(parts.pop().expect("4 parts"), "get-indirect-ttl")?;
        if ttls.len() != 1 + suffixes.len() + also.len() || values.len() != suffixes.len() {
            return Err(StoreError::Other(
                "get-indirect-ttl returned the wrong number of values".into(),
            ));
        }
        Ok((
            IndirectRead {
                pointer: ptr,
                values,
                also: also_values,
            },
            ttls,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_1_unless_the_url_names_one() {
        assert_eq!(
            with_default_db("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379/1"
        );
        assert_eq!(
            with_default_db("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/1"
        );
        assert_eq!(
            with_default_db("redis://127.0.0.1:6379/15"),
            "redis://127.0.0.1:6379/15"
        );
        assert_eq!(
            with_default_db("redis://h?protocol=resp3"),
            "redis://h/1?protocol=resp3"
        );
        assert_eq!(with_default_db("redis://h?db=3"), "redis://h?db=3");
        assert_eq!(
            with_default_db("redis+unix:///tmp/r.sock"),
            "redis+unix:///tmp/r.sock"
        );
    }

    #[test]
    fn database_numbers() {
        assert_eq!(database_number("redis://h:1"), 1);
        assert_eq!(database_number("redis://h:1/15"), 15);
        assert_eq!(database_number("redis://h?db=3"), 3);
    }

    #[tokio::test]
    async fn the_url_shown_hides_its_password() {
        let store = RedisStore::new(&RedisOptions::new("redis://u:secret@127.0.0.1:1/2")).unwrap();
        assert_eq!(store.url(), "redis://u:***@127.0.0.1:1/2");
    }
}
