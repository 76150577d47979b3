//! [`Cache`]: the handle applications use, its builder, and [`Keyspace`]
//! views on the global keyspace and on user namespaces.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::bindings::exports::nscache::cache::config::Settings as ComponentSettings;
use crate::bindings::nscache::cache::types::Scope;
use crate::error::{CacheError, GetOrSetError};
use crate::feed::ChangeFeed;
use crate::imports::HostState;
use crate::metrics::{Metrics, Op};
use crate::profiles::{CachedProfiles, FlagStore, ProfileSource, StaticProfiles};
use crate::runtime::{InstancePool, default_settings};
use crate::settings::Settings;
use crate::single_flight::{Flights, Role, follow};
use crate::stats::{StoreStats, StoreStatsSnapshot};
use crate::store::{
    AnswerName, ClusterOptions, ClusterStore, L1Options, L1Store, MemoryStore, RedisOptions,
    RedisStore, Store, TtlReads, recording,
};
use crate::types::{Expiry, LockToken, Ttl};

/// Run one export of the component on a leased instance, and count it.
/// (Used by `query/` too: `cache` is declared `#[macro_use]` first.)
macro_rules! call {
    // An export that cannot fail (no `result`).
    (@infallible $cache:expr, $op:expr, $interface:ident . $func:ident ( $($arg:expr),* $(,)? )) => {{
        let inner = &$cache.inner;
        let started = std::time::Instant::now();
        let result: Result<_, CacheError> = async {
            let mut instance = inner.pool.lease().await?;
            match instance.api.$interface().$func(&mut instance.store, $($arg),*).await {
                Ok(value) => {
                    inner.pool.give_back(instance);
                    Ok(value)
                }
                Err(trap) => Err(CacheError::Component(format!("{trap:#}"))),
            }
        }
        .await;
        inner.metrics.record($op, started.elapsed(), result.is_ok());
        result
    }};
    ($cache:expr, $op:expr, $interface:ident . $func:ident ( $($arg:expr),* $(,)? )) => {{
        let inner = &$cache.inner;
        let started = std::time::Instant::now();
        let result = async {
            let mut instance = inner.pool.lease().await?;
            let result = instance.api.$interface().$func(&mut instance.store, $($arg),*).await;
            match result {
                Ok(value) => {
                    inner.pool.give_back(instance);
                    value.map_err(CacheError::from)
                }
                Err(trap) => Err(CacheError::Component(format!("{trap:#}"))),
            }
        }
        .await;
        inner.metrics.record($op, started.elapsed(), result.is_ok());
        result
    }};
}

/// A handle on the cache: cheap to clone, safe to share between tasks.
///
/// Every operation runs in the cache component (`core/`, loaded with
/// wasmtime), which owns the key layout, versioning, limits and failure
/// policy; this handle only binds it to a store and a profile source.
#[derive(Clone, Debug)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) pool: InstancePool,
    store: Arc<dyn Store>,
    /// The L1, when on: it also remembers the component's answers to `get`.
    l1: Option<Arc<L1Store>>,
    profiles: Arc<dyn ProfileSource>,
    /// The same source, when it is a [`CachedProfiles`] (flags in a database).
    cached_profiles: Option<Arc<CachedProfiles>>,
    stats: Arc<StoreStats>,
    pub(crate) flights: Flights,
    settings: Settings,
    component_settings: ComponentSettings,
    pub(crate) metrics: Metrics,
}

/// A store given to the builder, with the reads an L1 needs if it has them.
#[derive(Debug)]
enum GivenStore {
    Plain(Arc<dyn Store>),
    WithTtlReads(Arc<dyn TtlReads>),
}

impl GivenStore {
    fn into_store(self) -> Arc<dyn Store> {
        match self {
            GivenStore::Plain(store) => store,
            GivenStore::WithTtlReads(store) => store,
        }
    }
}

/// Builds a [`Cache`] from [`Settings`] (unset options take the component's
/// defaults) and, optionally, a store and a profile source of your own.
#[derive(Debug, Default)]
#[must_use]
pub struct CacheBuilder {
    settings: Settings,
    store: Option<GivenStore>,
    profiles: Option<Arc<dyn ProfileSource>>,
    flags: Option<Arc<dyn FlagStore>>,
}

impl CacheBuilder {
    /// Replace every setting.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Use Redis with these options.
    pub fn redis(mut self, options: RedisOptions) -> Self {
        self.settings.redis_url = Some(options.url);
        self.settings.pool_size = options.pool_size;
        self.settings.connect_timeout = options.connect_timeout;
        self.settings.socket_timeout = options.socket_timeout;
        self.settings.redis_ca_cert = options.tls.ca_cert;
        self.settings.redis_client_cert = options.tls.client_cert;
        self.settings.redis_client_key = options.tls.client_key;
        self
    }

    /// Use Redis Cluster with these options (the hash-tagged key layout
    /// follows).
    pub fn cluster(mut self, options: ClusterOptions) -> Self {
        self.settings.redis_url = Some(options.url);
        self.settings.pool_size = options.pool_size;
        self.settings.connect_timeout = options.connect_timeout;
        self.settings.socket_timeout = options.socket_timeout;
        self.settings.cluster_wait_replicas = options.wait_replicas;
        self
    }

    /// Use Redis at `url` (database 1 when the URL names none), or Redis
    /// Cluster at a `redis+cluster://host:port,host:port/` URL.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.settings.redis_url = Some(url.into());
        self
    }

    /// Use this store (any [`Store`] implementation) instead of the one the
    /// settings name. An L1 cannot front it: for that, give a store with
    /// [`TtlReads`] through [`CacheBuilder::store_with_ttl_reads`].
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(GivenStore::Plain(store));
        self
    }

    /// Use this store instead of the one the settings name; it can have an
    /// L1 in front ([`CacheBuilder::l1`]).
    pub fn store_with_ttl_reads(mut self, store: Arc<dyn TtlReads>) -> Self {
        self.store = Some(GivenStore::WithTtlReads(store));
        self
    }

    /// Capacity of the embedded memory store used when no Redis or store is
    /// given.
    pub fn memory_capacity(mut self, bytes: usize) -> Self {
        self.settings.memory_capacity = bytes;
        self
    }

    /// Where users' `cache_enabled` flags come from (default: the database of
    /// [`Settings::database_url`] with feature `postgres`, else everyone
    /// enabled).
    pub fn profiles(mut self, profiles: Arc<dyn ProfileSource>) -> Self {
        self.profiles = Some(profiles);
        self
    }

    /// Flags kept in this database table: the cache remembers them in
    /// process and, on Redis, keeps every process sharing it coherent (see
    /// [`CachedProfiles`]; [`Cache::cached_profiles`] changes them).
    pub fn flag_store(mut self, flags: Arc<dyn FlagStore>) -> Self {
        self.flags = Some(flags);
        self
    }

    /// Global key prefix (Django's `KEY_PREFIX`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.key_prefix = Some(prefix.into());
        self
    }

    /// Global key version (Django's `VERSION`).
    pub fn key_version(mut self, version: u64) -> Self {
        self.settings.key_version = Some(version);
        self
    }

    /// First segment of namespace keys. Tests use a unique root to share a
    /// Redis database.
    pub fn namespace_root(mut self, root: impl Into<String>) -> Self {
        self.settings.namespace_root = Some(root.into());
        self
    }

    /// TTL of [`Expiry::Default`] (zero: do not cache).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.settings.default_ttl = Some(ttl);
        self
    }

    /// Longest accepted key in bytes.
    pub fn max_key_bytes(mut self, bytes: u32) -> Self {
        self.settings.max_key_bytes = Some(bytes);
        self
    }

    /// Largest accepted value in bytes.
    pub fn max_value_bytes(mut self, bytes: u32) -> Self {
        self.settings.max_value_bytes = Some(bytes);
        self
    }

    /// Most bytes of values one read returns (every key asked counts).
    pub fn max_reply_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_reply_bytes = Some(bytes);
        self
    }

    /// Most bytes written into one version of a user's namespace (0: none).
    pub fn namespace_quota_bytes(mut self, bytes: u64) -> Self {
        self.settings.namespace_quota_bytes = Some(bytes);
        self
    }

    /// Longest life of a namespaced entry.
    pub fn max_namespace_ttl(mut self, ttl: Duration) -> Self {
        self.settings.max_namespace_ttl = Some(ttl);
        self
    }

    /// Wrap user ids in Redis Cluster hash tags.
    pub fn cluster_hash_tags(mut self, on: bool) -> Self {
        self.settings.cluster_hash_tags = Some(on);
        self
    }

    /// Put an in-process L1 in front of Redis (see [`L1Store`] for the
    /// staleness bound). With Redis, processes keep their L1s coherent over
    /// pub/sub; with any other store only local writes evict.
    pub fn l1(mut self, options: L1Options) -> Self {
        self.settings.l1 = true;
        self.settings.l1_capacity = options.capacity_bytes;
        self.settings.l1_max_age = options.max_age;
        self
    }

    /// Most idle component instances kept for reuse.
    pub fn max_idle_instances(mut self, n: usize) -> Self {
        self.settings.max_idle_instances = n;
        self
    }

    /// Apply the environment variables of [`settings::OPTIONS`](crate::settings::OPTIONS)
    /// (`REDIS_URL`, `CACHE_KEY_PREFIX`, `NSCACHE_POOL_SIZE`, …) to the
    /// settings so far: call it first, then override in code.
    pub fn from_env(mut self) -> Result<Self, CacheError> {
        self.settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(self)
    }

    /// Build the cache. Connects to nothing yet: a store that is down makes
    /// reads miss until it is back. Must run inside a tokio runtime.
    pub async fn build(self) -> Result<Cache, CacheError> {
        let CacheBuilder {
            settings,
            store,
            profiles,
            flags,
        } = self;
        settings.validate()?;
        let component_settings = component_settings(&settings).await?;
        let feeds = Feeds::for_settings(&settings)?;
        let (store, l1) = stores(&settings, store, &feeds)?;
        let (profiles, cached_profiles) =
            profile_source(&settings, &component_settings, profiles, flags, &feeds)?;
        let stats = Arc::new(StoreStats::default());
        let state = HostState {
            store: store.clone(),
            profiles: profiles.clone(),
            stats: stats.clone(),
            limits: crate::runtime::instance_limits(component_settings.max_reply_bytes),
        };
        let pool = InstancePool::new(
            state,
            component_settings.clone(),
            settings.max_idle_instances,
            settings.compile_cache.as_deref(),
        )
        .await
        .map_err(|e| match e {
            CacheError::InvalidArgument(m) => CacheError::Config(m),
            other => other,
        })?;
        let inner = Inner {
            pool,
            store,
            l1,
            profiles,
            cached_profiles,
            stats,
            flights: Flights::default(),
            settings,
            component_settings,
            metrics: Metrics::default(),
        };
        Ok(Cache {
            inner: Arc::new(inner),
        })
    }
}

/// Change feeds on the Redis of the settings, if any (pub/sub channels for
/// the L1's evictions and for profile changes): a client for them, and the
/// database the store uses (which names the L1's channel).
struct Feeds(Option<(redis::Client, u32)>);

impl Feeds {
    /// The feeds of the Redis the settings name. On Redis Cluster, pub/sub
    /// messages reach every node: the first seed node carries them (database
    /// 0, the only one a cluster has).
    fn for_settings(settings: &Settings) -> Result<Feeds, CacheError> {
        let config = |e: &dyn std::fmt::Display| CacheError::Config(format!("Redis URL: {e}"));
        if let Some(options) = settings.cluster_options() {
            let nodes = options.node_urls().map_err(|e| config(&e))?;
            return match nodes.into_iter().next() {
                Some(seed) => {
                    let client = redis::Client::open(seed).map_err(|e| config(&e))?;
                    Ok(Feeds(Some((client, 0))))
                }
                None => Ok(Feeds(None)),
            };
        }
        match settings.redis_options() {
            Some(options) => {
                let client = options.client().map_err(|e| config(&e))?;
                let database = crate::store::redis_database_number(&options.url);
                Ok(Feeds(Some((client, database))))
            }
            None => Ok(Feeds(None)),
        }
    }

    fn on(&self, channel: String) -> Result<Option<ChangeFeed>, CacheError> {
        match &self.0 {
            Some((client, _)) => ChangeFeed::with_client(client.clone(), channel)
                .map(Some)
                .map_err(|e| CacheError::Config(format!("Redis URL: {e}"))),
            None => Ok(None),
        }
    }
}

/// The store the component uses, and the L1 when it is that store.
type StoreChain = (Arc<dyn Store>, Option<Arc<L1Store>>);

/// The profile source, and the [`CachedProfiles`] when it is that source.
type ProfileChain = (Arc<dyn ProfileSource>, Option<Arc<CachedProfiles>>);

/// The store the component uses — the given one, Redis, or the embedded
/// memory store — behind the L1 when it is on (the L1 is returned too).
fn stores(
    settings: &Settings,
    given: Option<GivenStore>,
    feeds: &Feeds,
) -> Result<StoreChain, CacheError> {
    let store = match (given, settings.redis_options(), settings.cluster_options()) {
        (Some(store), _, _) => store,
        (None, Some(options), _) => GivenStore::WithTtlReads(Arc::new(
            RedisStore::new(&options).map_err(|e| CacheError::Config(e.to_string()))?,
        )),
        (None, None, Some(options)) => {
            if settings.l1 {
                return Err(CacheError::Config(
                    "l1: the L1 is not available on Redis Cluster yet (its reads with \
                     lifetimes are scripts over several slots): turn it off"
                        .into(),
                ));
            }
            GivenStore::Plain(Arc::new(
                ClusterStore::new(&options).map_err(|e| CacheError::Config(e.to_string()))?,
            ))
        }
        (None, None, None) => {
            GivenStore::WithTtlReads(Arc::new(MemoryStore::new(settings.memory_capacity)))
        }
    };
    let Some(options) = settings.l1_options() else {
        return Ok((store.into_store(), None));
    };
    let GivenStore::WithTtlReads(store) = store else {
        return Err(CacheError::Config(
            "an L1 needs a store with TTL reads: give it with \
             `CacheBuilder::store_with_ttl_reads`"
                .into(),
        ));
    };
    let channel = feeds
        .0
        .as_ref()
        .map(|(_, database)| format!("nscache:l1:db{database}"));
    let l1 = Arc::new(L1Store::new(
        store,
        options,
        channel.map(|c| feeds.on(c)).transpose()?.flatten(),
    ));
    l1.start();
    Ok((l1.clone(), Some(l1)))
}

/// Where the component's `profiles.cache-enabled` goes: the given source, or
/// flags from a database kept in a [`CachedProfiles`] (returned too, to change
/// them), or everyone enabled.
fn profile_source(
    settings: &Settings,
    component_settings: &ComponentSettings,
    given: Option<Arc<dyn ProfileSource>>,
    flags: Option<Arc<dyn FlagStore>>,
    feeds: &Feeds,
) -> Result<ProfileChain, CacheError> {
    if let Some(profiles) = given {
        return Ok((profiles, None));
    }
    let flags = match flags {
        Some(flags) => flags,
        None => match default_flag_store(settings)? {
            Some(flags) => flags,
            None => return Ok((Arc::new(StaticProfiles::new()), None)),
        },
    };
    let channel = format!("{}:profile-changes", component_settings.namespace_root);
    let cached = Arc::new(
        CachedProfiles::new(flags, feeds.on(channel)?).with_max_age(settings.profile_max_age),
    );
    cached.start_feed();
    Ok((cached.clone(), Some(cached)))
}

/// The component's settings: its defaults, with what `settings` overrides.
async fn component_settings(settings: &Settings) -> Result<ComponentSettings, CacheError> {
    let mut resolved = default_settings(settings.compile_cache.as_deref()).await?;
    if let Some(v) = &settings.key_prefix {
        resolved.key_prefix = v.clone();
    }
    if let Some(v) = settings.key_version {
        resolved.key_version = v;
    }
    if let Some(v) = &settings.namespace_root {
        resolved.namespace_root = v.clone();
    }
    if let Some(v) = settings.default_ttl {
        resolved.default_ttl_ms = u64::try_from(v.as_millis()).unwrap_or(u64::MAX);
    }
    if let Some(v) = settings.max_key_bytes {
        resolved.max_key_bytes = v;
    }
    if let Some(v) = settings.max_value_bytes {
        resolved.max_value_bytes = v;
    }
    if let Some(v) = settings.cluster_hash_tags {
        resolved.cluster_hash_tags = v;
    }
    if settings.is_cluster() {
        // One user's keys must share a slot (validated: not turned off).
        resolved.cluster_hash_tags = true;
    }
    if let Some(v) = settings.max_reply_bytes {
        resolved.max_reply_bytes = v;
    }
    if let Some(v) = settings.namespace_quota_bytes {
        resolved.namespace_quota_bytes = v;
    }
    if let Some(v) = settings.max_namespace_ttl {
        resolved.max_namespace_ttl_ms = u64::try_from(v.as_millis()).unwrap_or(u64::MAX);
    }
    Ok(resolved)
}

/// The flags the settings point at: a Postgres table (feature `postgres`).
#[cfg(feature = "postgres")]
fn default_flag_store(settings: &Settings) -> Result<Option<Arc<dyn FlagStore>>, CacheError> {
    let Some(url) = &settings.database_url else {
        return Ok(None);
    };
    let flags = crate::profiles::PostgresFlags::connect(url, settings.profile_table()?)
        .map_err(|e| CacheError::Config(e.to_string()))?;
    Ok(Some(Arc::new(flags)))
}

/// Without feature `postgres` a database URL cannot be used for flags.
#[cfg(not(feature = "postgres"))]
fn default_flag_store(settings: &Settings) -> Result<Option<Arc<dyn FlagStore>>, CacheError> {
    match &settings.database_url {
        Some(_) => Err(CacheError::Config(
            "database-url: reading flags from Postgres needs the `postgres` feature of nscache"
                .into(),
        )),
        None => Ok(None),
    }
}

impl Cache {
    /// A builder with every option at its default.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// A cache on the embedded memory store, everyone's cache enabled.
    pub async fn memory() -> Result<Cache, CacheError> {
        Cache::builder().build().await
    }

    /// The global keyspace (`{prefix}:{version}:{key}`): locks, sequences,
    /// tokens, cursors. Never affected by `cache_enabled` or invalidation.
    pub fn global(&self) -> Keyspace {
        Keyspace {
            cache: self.clone(),
            scope: Scope::Global,
        }
    }

    /// The keyspace `scope` names.
    pub fn keyspace(&self, scope: Scope) -> Keyspace {
        Keyspace {
            cache: self.clone(),
            scope,
        }
    }

    /// The namespace of `user` (an opaque id: any non-empty string).
    pub fn user(&self, user: impl Into<String>) -> Keyspace {
        Keyspace {
            cache: self.clone(),
            scope: Scope::User(user.into()),
        }
    }

    /// The store in use.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The global key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.inner.component_settings.key_prefix
    }

    /// The namespace root in use.
    pub fn namespace_root(&self) -> &str {
        &self.inner.component_settings.namespace_root
    }

    /// Most bytes of values one read returns (`max-reply-bytes` in use).
    pub fn max_reply_bytes(&self) -> u64 {
        self.inner.component_settings.max_reply_bytes
    }

    /// Largest value accepted, in bytes (`max-value-bytes` in use).
    pub fn max_value_bytes(&self) -> u32 {
        self.inner.component_settings.max_value_bytes
    }

    /// The settings the cache was built with (component defaults unresolved;
    /// [`Cache::key_prefix`] and [`Cache::namespace_root`] give those in use).
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The settings in use: [`Cache::settings`] with the component's
    /// defaults filled in (every component setting is `Some`).
    pub fn resolved_settings(&self) -> Settings {
        let c = &self.inner.component_settings;
        Settings {
            key_prefix: Some(c.key_prefix.clone()),
            key_version: Some(c.key_version),
            namespace_root: Some(c.namespace_root.clone()),
            default_ttl: Some(Duration::from_millis(c.default_ttl_ms)),
            max_key_bytes: Some(c.max_key_bytes),
            max_value_bytes: Some(c.max_value_bytes),
            cluster_hash_tags: Some(c.cluster_hash_tags),
            max_reply_bytes: Some(c.max_reply_bytes),
            namespace_quota_bytes: Some(c.namespace_quota_bytes),
            max_namespace_ttl: Some(Duration::from_millis(c.max_namespace_ttl_ms)),
            ..self.inner.settings.clone()
        }
    }

    /// The source of users' `cache_enabled` flags.
    pub fn profiles(&self) -> &Arc<dyn ProfileSource> {
        &self.inner.profiles
    }

    /// The flags remembered from a database ([`CacheBuilder::flag_store`], or
    /// [`Settings::database_url`]), to change them: `None` for other sources.
    pub fn cached_profiles(&self) -> Option<&Arc<CachedProfiles>> {
        self.inner.cached_profiles.as_ref()
    }

    /// Counters of store traffic since start.
    pub fn store_stats(&self) -> StoreStatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Operation counters and latency histograms since start.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Everything counted, in the Prometheus text format (for `/metrics`).
    pub fn render_metrics(&self) -> String {
        self.inner.metrics.render(self.store_stats())
    }

    /// Check the store answers; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration, CacheError> {
        self.inner.store.ping().await.map_err(CacheError::from)
    }

    /// Take the global lock `key` with a fresh random token for at most
    /// `timeout`. `None` if someone else holds it.
    pub async fn lock(
        &self,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<LockToken>, CacheError> {
        let token = LockToken::random();
        Ok(self.lock_as(key, &token, timeout).await?.then_some(token))
    }

    /// Take the global lock `key` for `owner` for at most `timeout`. True if taken.
    pub async fn lock_as(
        &self,
        key: &str,
        owner: &LockToken,
        timeout: Duration,
    ) -> Result<bool, CacheError> {
        // Round up, so that only a zero timeout is refused (by the component).
        let ms = u64::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        call!(
            self,
            Op::Lock,
            nscache_cache_locks.call_lock(key, owner.as_str(), ms)
        )
    }

    /// Release the global lock `key` if `owner` holds it. True if released.
    pub async fn unlock(&self, key: &str, owner: &LockToken) -> Result<bool, CacheError> {
        call!(
            self,
            Op::Unlock,
            nscache_cache_locks.call_unlock(key, owner.as_str())
        )
    }

    /// Invalidate every entry of `user`'s namespace, in O(1). Returns the new version.
    pub async fn invalidate_user(&self, user: &str) -> Result<u64, CacheError> {
        call!(
            self,
            Op::InvalidateUser,
            nscache_cache_invalidation.call_invalidate_user(user)
        )
    }

    /// Invalidate every cached query over `table`, for all users, in O(1).
    /// Returns the table's new version.
    pub async fn invalidate_table(&self, table: &str) -> Result<u64, CacheError> {
        call!(
            self,
            Op::InvalidateTable,
            nscache_cache_invalidation.call_invalidate_table(table)
        )
    }

    /// Invalidate every user namespace at once (global keys are kept).
    /// Returns the new namespace floor.
    pub async fn invalidate_all(&self) -> Result<u64, CacheError> {
        call!(
            self,
            Op::InvalidateAll,
            nscache_cache_invalidation.call_invalidate_all()
        )
    }

    /// The current version of `user`'s namespace; `None` if it holds nothing.
    pub async fn version_of(&self, user: &str) -> Result<Option<u64>, CacheError> {
        call!(
            self,
            Op::VersionOf,
            nscache_cache_invalidation.call_version_of(user)
        )
    }

    /// [`Cache::version_of`] for many users, in order, in one round trip.
    pub async fn versions_of<S: AsRef<str>>(
        &self,
        users: &[S],
    ) -> Result<Vec<Option<u64>>, CacheError> {
        call!(
            self,
            Op::VersionsOf,
            nscache_cache_invalidation.call_versions_of(&owned_keys(users))
        )
    }
}

/// A view on one keyspace: the global one or a user's namespace. Cheap to
/// clone; every method is one call into the component.
///
/// Semantics are Django's (see `wit/cache.wit`): reads miss and plain writes
/// are skipped when the store is unreachable; `add`, `incr`, `delete`,
/// `touch`, `persist` return [`CacheError::Unavailable`] instead.
#[derive(Clone, Debug)]
pub struct Keyspace {
    pub(crate) cache: Cache,
    pub(crate) scope: Scope,
}

fn owned_keys<K: AsRef<str>>(keys: &[K]) -> Vec<String> {
    keys.iter().map(|k| k.as_ref().to_owned()).collect()
}

impl Keyspace {
    /// Which keyspace this is.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The user id of this namespace; `None` for the global keyspace.
    pub fn user_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Global => None,
            Scope::User(u) => Some(u),
        }
    }

    /// The value at `key`, or `None` on a miss. One store round trip; none
    /// when the L1 holds everything the answer depends on.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let inner = &self.cache.inner;
        let value = match &inner.l1 {
            Some(l1) => self.get_through_l1(l1, key).await?,
            None => call!(
                self.cache,
                Op::Get,
                nscache_cache_cache.call_get(&self.scope, key)
            )?,
        };
        inner
            .metrics
            .record_reads(u64::from(value.is_some()), u64::from(value.is_none()));
        Ok(value)
    }

    /// `get` with the L1 on: a remembered answer if it is still current, else
    /// the component's, remembered when it depends on L1 entries alone.
    async fn get_through_l1(&self, l1: &L1Store, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let inner = &self.cache.inner;
        let name = match &self.scope {
            Scope::Global => AnswerName::global(key),
            Scope::User(user) => {
                // Ask for the flag first: a source that trusts what it read for
                // a while reads again when that is over, and a flag that moved
                // moves the generation, so no answer outlives its flag.
                if inner.profiles.cache_enabled(user).await.is_err() {
                    return call!(
                        self.cache,
                        Op::Get,
                        nscache_cache_cache.call_get(&self.scope, key)
                    );
                }
                AnswerName::user(user, key)
            }
        };
        let flags = self.flag_generation();
        if let Some(flags) = flags {
            let started = std::time::Instant::now();
            if let Some(value) = l1.answer(&name, flags) {
                inner.metrics.record(Op::Get, started.elapsed(), true);
                return Ok(value);
            }
        }
        let (value, reads) = recording(async {
            call!(
                self.cache,
                Op::Get,
                nscache_cache_cache.call_get(&self.scope, key)
            )
        })
        .await;
        let value = value?;
        if let Some(flags) = flags
            && self.flag_generation() == Some(flags)
        {
            l1.remember_answer(name, &value, reads, flags);
        }
        Ok(value)
    }

    /// The generation of the flags this keyspace's answers depend on: none
    /// for the global keyspace (a constant), the profile source's for a user.
    fn flag_generation(&self) -> Option<u64> {
        match &self.scope {
            Scope::Global => Some(0),
            Scope::User(_) => self.cache.inner.profiles.generation(),
        }
    }

    /// The values of `keys`, in order. One store round trip.
    pub async fn get_many<K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let values = call!(
            self.cache,
            Op::GetMany,
            nscache_cache_cache.call_get_many(&self.scope, &owned_keys(keys))
        )?;
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.cache
            .inner
            .metrics
            .record_reads(hits, values.len() as u64 - hits);
        Ok(values)
    }

    /// Store `value` at `key`.
    pub async fn set(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Expiry,
    ) -> Result<(), CacheError> {
        call!(
            self.cache,
            Op::Set,
            nscache_cache_cache.call_set(&self.scope, key, value.as_ref(), ttl.to_wit())
        )
    }

    /// Store every entry, atomically, with the same expiry.
    pub async fn set_many<K: AsRef<str>, V: AsRef<[u8]>>(
        &self,
        entries: &[(K, V)],
        ttl: Expiry,
    ) -> Result<(), CacheError> {
        let entries: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_vec()))
            .collect();
        call!(
            self.cache,
            Op::SetMany,
            nscache_cache_cache.call_set_many(&self.scope, &entries, ttl.to_wit())
        )
    }

    /// Store `value` only if `key` does not exist. True if stored.
    pub async fn add(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Expiry,
    ) -> Result<bool, CacheError> {
        call!(
            self.cache,
            Op::Add,
            nscache_cache_cache.call_add(&self.scope, key, value.as_ref(), ttl.to_wit())
        )
    }

    /// Remove `key`. True if it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        call!(
            self.cache,
            Op::Delete,
            nscache_cache_cache.call_delete(&self.scope, key)
        )
    }

    /// Remove every key in `keys`; returns how many existed.
    pub async fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u32, CacheError> {
        call!(
            self.cache,
            Op::DeleteMany,
            nscache_cache_cache.call_delete_many(&self.scope, &owned_keys(keys))
        )
    }

    /// True if `key` exists.
    pub async fn has_key(&self, key: &str) -> Result<bool, CacheError> {
        call!(
            self.cache,
            Op::HasKey,
            nscache_cache_cache.call_has_key(&self.scope, key)
        )
    }

    /// Add `delta` to the integer at `key`; [`CacheError::NotFound`] if missing.
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64, CacheError> {
        call!(
            self.cache,
            Op::Incr,
            nscache_cache_cache.call_incr(&self.scope, key, delta)
        )
    }

    /// Subtract `delta` from the integer at `key`.
    pub async fn decr(&self, key: &str, delta: i64) -> Result<i64, CacheError> {
        call!(
            self.cache,
            Op::Decr,
            nscache_cache_cache.call_decr(&self.scope, key, delta)
        )
    }

    /// Give an existing key a new expiry. True if the key exists.
    pub async fn touch(&self, key: &str, ttl: Expiry) -> Result<bool, CacheError> {
        call!(
            self.cache,
            Op::Touch,
            nscache_cache_cache.call_touch(&self.scope, key, ttl.to_wit())
        )
    }

    /// How long `key` has left.
    pub async fn ttl(&self, key: &str) -> Result<Ttl, CacheError> {
        call!(
            self.cache,
            Op::Ttl,
            nscache_cache_cache.call_ttl(&self.scope, key)
        )
        .map(Ttl::from)
    }

    /// Remove the expiry of an existing key. True if the key exists.
    pub async fn persist(&self, key: &str) -> Result<bool, CacheError> {
        call!(
            self.cache,
            Op::Persist,
            nscache_cache_cache.call_persist(&self.scope, key)
        )
    }

    /// The value at `key`; on a miss, run `load` and store its result.
    ///
    /// Race-safe: the result is written under the namespace version read
    /// before loading, so a value computed across an invalidation is never
    /// visible after it. Single-flight within this process: concurrent misses
    /// on one key run `load` once and share its value. Across processes each
    /// process may load once; all store the same key and the last write wins.
    /// A failing loader stores nothing and its followers load again.
    pub async fn get_or_set<F, Fut, E>(
        &self,
        key: &str,
        ttl: Expiry,
        load: F,
    ) -> Result<Vec<u8>, GetOrSetError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let mut load = Some(load);
        loop {
            let read = call!(
                self.cache,
                Op::ReadForUpdate,
                nscache_cache_cache.call_read_for_update(&self.scope, key)
            )?;
            self.cache.inner.metrics.record_reads(
                u64::from(read.value.is_some()),
                u64::from(read.value.is_none()),
            );
            if let Some(value) = read.value {
                return Ok(value);
            }
            let scope = match &self.scope {
                Scope::Global => String::new(),
                Scope::User(u) => format!("u:{u}"),
            };
            let role = if read.version == 0 {
                None // bypassed: nothing will be stored, nothing to share
            } else {
                match self
                    .cache
                    .inner
                    .flights
                    .join((scope, key.to_owned(), read.version))
                {
                    Role::Follower(rx) => match follow(rx).await {
                        Some(value) => return Ok(value),
                        None => continue, // the leader failed: try again
                    },
                    Role::Leader(leader) => Some(leader),
                }
            };
            let load = load.take().expect(
                "the loader runs at most once: followers never reach here twice after leading",
            );
            let value = load().await.map_err(GetOrSetError::Load)?;
            call!(
                self.cache,
                Op::SetAt,
                nscache_cache_cache.call_set_at(
                    &self.scope,
                    key,
                    read.version,
                    &value,
                    ttl.to_wit()
                )
            )?;
            if let Some(leader) = role {
                leader.publish(&value);
            }
            return Ok(value);
        }
    }
}
