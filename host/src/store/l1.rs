//! [`L1Store`]: an in-process cache of storage reads in front of a shared
//! store (Redis), kept coherent across processes.
//!
//! It caches what the component's primitives read — entries, version keys,
//! the namespace floor — so the cache logic stays in the component: a
//! namespaced `get` whose version, floor and entry are all in memory costs no
//! round trip at all.
//!
//! ## Staleness bound
//! - Every write made through nscache, in any process, evicts the keys it
//!   changed from every L1: locally at once, elsewhere when the pub/sub
//!   message arrives (a fraction of a millisecond on a LAN; measured by the
//!   fault tests). An invalidation is a write of the version key, so a dead
//!   namespace is never served after that delay.
//! - Expiry is exact: an entry read with its remaining TTL (in the same atomic
//!   step) leaves the L1 when its TTL runs out in the store.
//! - Changes nscache does not announce — eviction, another client writing to
//!   Redis — are seen within `max_age` (default 1 s), when the L1 entry expires.
//! - While the subscription is down, the L1 is emptied and bypassed; it is
//!   used again once resubscribed.
//! - A read that raced a change (the message arrived while the read was in
//!   flight) is not remembered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache as Moka;

use super::{IndirectRead, KeyTtl, MemoryInfo, Store, StoreError};
use crate::feed::ChangeFeed;

/// Separates keys in one change message (a byte no key layout produces on
/// its own: user ids are percent-encoded; an application key containing it is
/// split into harmless extra evictions).
const SEPARATOR: char = '\n';

/// How big and how fresh the L1 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Options {
    /// Most bytes of keys and values held (default 64 MiB).
    pub capacity_bytes: u64,
    /// Longest an entry is served without hearing of a change (default 1 s).
    pub max_age: Duration,
}

impl Default for L1Options {
    fn default() -> Self {
        L1Options { capacity_bytes: 64 << 20, max_age: Duration::from_secs(1) }
    }
}

/// A value as remembered: present (shared bytes) or known missing, and how
/// long it may be served.
#[derive(Debug, Clone)]
struct Remembered {
    value: Option<Arc<[u8]>>,
    lifetime: Duration,
}

/// Each entry lives for its own lifetime (its TTL in the store, capped by `max_age`).
struct Lifetime;

impl Expiry<String, Remembered> for Lifetime {
    fn expire_after_create(&self, _key: &String, value: &Remembered, _created_at: std::time::Instant) -> Option<Duration> {
        Some(value.lifetime)
    }
}

/// The L1 in front of a store. See the module documentation.
#[derive(Debug)]
pub struct L1Store {
    inner: Arc<dyn Store>,
    l1: Moka<String, Remembered>,
    max_age: Duration,
    feed: Option<ChangeFeed>,
    /// Bumped on every change heard; a read that started before a change is
    /// not remembered.
    epoch: Arc<AtomicU64>,
    hits: AtomicU64,
}

impl L1Store {
    /// An L1 in front of `inner`; with a `feed`, writes are announced to and
    /// heard from other processes (call [`L1Store::start`]). Without one (a
    /// single process), only local writes evict.
    pub fn new(inner: Arc<dyn Store>, options: L1Options, feed: Option<ChangeFeed>) -> L1Store {
        let l1 = Moka::builder()
            .max_capacity(options.capacity_bytes)
            .weigher(|k: &String, v: &Remembered| u32::try_from(k.len() + v.value.as_ref().map_or(0, |b| b.len()) + 64).unwrap_or(u32::MAX))
            .expire_after(Lifetime)
            .build();
        L1Store { inner, l1, max_age: options.max_age, feed, epoch: Arc::default(), hits: AtomicU64::new(0) }
    }

    /// Listen to other processes' writes (a background task).
    pub fn start(&self) {
        if let Some(feed) = self.feed.clone() {
            let (l1, epoch) = (self.l1.clone(), self.epoch.clone());
            tokio::spawn(feed.run(move |message| {
                epoch.fetch_add(1, Ordering::SeqCst);
                match message {
                    Some(keys) => keys.split(SEPARATOR).for_each(|k| l1.invalidate(k)),
                    None => l1.invalidate_all(),
                }
            }));
        }
    }

    /// Reads served from memory so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether the L1 may be used now (its subscription is live).
    fn usable(&self) -> bool {
        self.feed.as_ref().is_none_or(ChangeFeed::is_live)
    }

    fn lookup(&self, key: &str) -> Option<Option<Vec<u8>>> {
        self.l1.get(key).map(|r| r.value.map(|b| b.to_vec()))
    }

    /// Remember what one atomic read found, unless a change was heard since
    /// it started.
    fn remember(&self, epoch: u64, found: &[(&str, &Option<Vec<u8>>, KeyTtl)]) {
        if !self.usable() || self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        for (key, value, ttl) in found {
            let lifetime = match ttl {
                KeyTtl::RemainingMs(ms) => self.max_age.min(Duration::from_millis(*ms)),
                KeyTtl::Forever | KeyTtl::Missing => self.max_age,
            };
            if !lifetime.is_zero() {
                self.l1.insert((*key).to_owned(), Remembered { value: value.as_deref().map(Arc::from), lifetime });
            }
        }
    }

    /// Evict `keys` here and announce them to the other processes.
    async fn changed<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let keys: Vec<&str> = keys.into_iter().collect();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for k in &keys {
            self.l1.invalidate(*k);
        }
        if let Some(feed) = &self.feed
            && let Err(e) = feed.publish(&keys.join("\n")).await
        {
            // The other L1s serve the old value until their max age: say so.
            tracing::warn!(error = %e, "could not announce a write to other L1 caches");
        }
    }
}

#[async_trait]
impl Store for L1Store {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        self.inner.ping().await
    }

    async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        self.inner.memory_info().await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.usable()
            && let Some(v) = self.lookup(key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut found = self.inner.get_many_ttl(&[key.to_owned()]).await?;
        let (value, ttl) = found.pop().ok_or_else(|| StoreError::Other("get-many-ttl returned nothing".into()))?;
        self.remember(epoch, &[(key, &value, ttl)]);
        Ok(value)
    }

    async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let result = self.inner.set(key, value, ttl_ms).await;
        self.changed([key]).await;
        result
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let result = self.inner.delete(key).await;
        self.changed([key]).await;
        result
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        if self.usable()
            && let Some(v) = self.lookup(key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v.is_some());
        }
        self.inner.exists(key).await
    }

    async fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        let result = self.inner.expire(key, ttl_ms).await;
        self.changed([key]).await;
        result
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl, StoreError> {
        self.inner.ttl(key).await
    }

    async fn now_micros(&self) -> Result<u64, StoreError> {
        self.inner.now_micros().await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if self.usable() {
            let found: Option<Vec<Option<Vec<u8>>>> = keys.iter().map(|k| self.lookup(k)).collect();
            if let Some(values) = found {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(values);
            }
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let found = self.inner.get_many_ttl(keys).await?;
        if found.len() != keys.len() {
            return Err(StoreError::Other(format!("get-many-ttl returned {} values for {} keys", found.len(), keys.len())));
        }
        let triples: Vec<(&str, &Option<Vec<u8>>, KeyTtl)> = keys.iter().zip(found.iter()).map(|(k, (v, t))| (k.as_str(), v, *t)).collect();
        self.remember(epoch, &triples);
        Ok(found.into_iter().map(|(v, _)| v).collect())
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let result = self.inner.set_many(entries, ttl_ms).await;
        self.changed(entries.iter().map(|(k, _)| k.as_str())).await;
        result
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        let result = self.inner.delete_many(keys).await;
        self.changed(keys.iter().map(String::as_str)).await;
        result
    }

    async fn get_indirect(&self, pointer: &str, prefix: &str, suffixes: &[String], also: &[String]) -> Result<IndirectRead, StoreError> {
        if self.usable()
            && let Some(ptr) = self.lookup(pointer)
        {
            let values = match &ptr {
                Some(p) => {
                    let p = String::from_utf8_lossy(p);
                    suffixes.iter().map(|s| self.lookup(&format!("{prefix}{p}{s}"))).collect::<Option<Vec<_>>>()
                }
                None => Some(vec![None; suffixes.len()]),
            };
            let also_values = also.iter().map(|k| self.lookup(k)).collect::<Option<Vec<_>>>();
            if let (Some(values), Some(also_values)) = (values, also_values) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(IndirectRead { pointer: ptr, values, also: also_values });
            }
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let (found, ttls) = self.inner.get_indirect_ttl(pointer, prefix, suffixes, also).await?;
        if found.values.len() == suffixes.len() && found.also.len() == also.len() && ttls.len() == 1 + suffixes.len() + also.len() {
            let mut triples: Vec<(String, &Option<Vec<u8>>, KeyTtl)> = vec![(pointer.to_owned(), &found.pointer, ttls[0])];
            if let Some(p) = &found.pointer {
                let p = String::from_utf8_lossy(p);
                triples.extend(suffixes.iter().zip(found.values.iter()).zip(&ttls[1..]).map(|((s, v), t)| (format!("{prefix}{p}{s}"), v, *t)));
            }
            triples.extend(also.iter().cloned().zip(found.also.iter()).zip(&ttls[1 + suffixes.len()..]).map(|((k, v), t)| (k, v, *t)));
            let borrowed: Vec<(&str, &Option<Vec<u8>>, KeyTtl)> = triples.iter().map(|(k, v, t)| (k.as_str(), *v, *t)).collect();
            self.remember(epoch, &borrowed);
        }
        Ok(found)
    }

    async fn get_many_ttl(&self, keys: &[String]) -> Result<Vec<(Option<Vec<u8>>, KeyTtl)>, StoreError> {
        self.inner.get_many_ttl(keys).await
    }

    async fn get_indirect_ttl(&self, pointer: &str, prefix: &str, suffixes: &[String], also: &[String]) -> Result<(IndirectRead, Vec<KeyTtl>), StoreError> {
        self.inner.get_indirect_ttl(pointer, prefix, suffixes, also).await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        let result = self.inner.increment(key, delta).await;
        self.changed([key]).await;
        result
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        let result = self.inner.set_if_absent(key, value, ttl_ms).await;
        if !matches!(result, Ok(false)) {
            self.changed([key]).await;
        }
        result
    }

    async fn swap_if(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, StoreError> {
        let result = self.inner.swap_if(key, expected, new).await;
        if !matches!(result, Ok(false)) {
            self.changed([key]).await;
        }
        result
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let result = self.inner.delete_if(key, expected).await;
        if !matches!(result, Ok(false)) {
            self.changed([key]).await;
        }
        result
    }
}
