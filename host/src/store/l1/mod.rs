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
//!   L1 tests). Messages are sent right after the write, off its path
//!   ([`announcer`]), so a write costs one round trip as without the L1.
//!   An invalidation is a write of the version key, so a dead namespace is
//!   never served after that delay; and a version write returns only once
//!   its announcement is published, so another process' next request after
//!   an invalidation returned does not serve what it hid.
//! - Expiry is exact: an entry is read with its remaining TTL in the same
//!   atomic step (the [`TtlReads`] the L1 requires of the store it fronts) and
//!   leaves the L1 when its TTL runs out in the store.
//! - Changes nscache does not announce — eviction, another client writing to
//!   Redis — are seen within `max_age` (default 1 s), when the L1 entry expires.
//! - While the subscription is down, the L1 is emptied and bypassed; it is
//!   used again once resubscribed.
//! - A read that raced a change (the message arrived while the read was in
//!   flight) is not remembered.
//! - Several keys read together (`get-many`, `get-indirect`) are served from
//!   memory as one step: never some keys before a change and others after it.
//!
//! ## Answers
//! On top of storage reads, the L1 remembers the component's answers to
//! `get` ([`answers`]): an answer is kept with the stamps of the L1 entries
//! it was computed from and is served only while every one of them is still
//! in the L1, unchanged. It is therefore exactly as fresh as the reads
//! themselves (the bound above), and a hit skips the component call.

mod announcer;
mod answers;

pub(crate) use self::answers::{AnswerName, Reads, recording};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache as Moka;

/// The hasher of the L1's maps: foldhash (hashbrown's default), seeded at
/// random per process like std's SipHash but several times cheaper on the
/// short keys a hit hashes up to four times (answer, version, floor, entry).
pub(super) type KeyHasher = foldhash::quality::RandomState;

use self::announcer::Announcer;
use self::answers::{Answer, Answers, note, poison};
use super::{
    Counter, IndirectRead, MemoryInfo, PutOutcome, Store, StoreError, TtlReads, pointer_text,
    values_size,
};
use crate::feed::ChangeFeed;
use crate::settings::defaults;
use crate::types::Ttl;

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
        L1Options {
            capacity_bytes: defaults::L1_CAPACITY,
            max_age: defaults::L1_MAX_AGE,
        }
    }
}

/// A value as remembered: present (shared bytes) or known missing, how
/// long it may be served, and a stamp no other entry ever had (answers
/// computed from this entry check it).
#[derive(Debug, Clone)]
struct Remembered {
    value: Option<Arc<[u8]>>,
    lifetime: Duration,
    stamp: u64,
}

/// Each entry lives for its own lifetime (its TTL in the store, capped by `max_age`).
struct Lifetime;

impl Expiry<String, Remembered> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Remembered,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.lifetime)
    }
}

/// The L1 in front of a store. See the module documentation.
#[derive(Debug)]
pub struct L1Store {
    inner: Arc<dyn TtlReads>,
    l1: Moka<String, Remembered, KeyHasher>,
    answers: Answers,
    /// The last stamp given to an entry.
    stamps: AtomicU64,
    max_age: Duration,
    feed: Option<ChangeFeed>,
    /// Sends this process's writes to the others (set by [`L1Store::start`]).
    announcer: OnceLock<Announcer>,
    /// Bumped on every change heard; a read that started before a change is
    /// not remembered.
    epoch: Arc<AtomicU64>,
    /// Held exclusively while the entries change (a change's evictions, one
    /// read's remembering), shared while several are looked up together: a
    /// lookup of several keys sees the entries between two such steps, never
    /// in the middle of one, as `get-many` and `get-indirect` must.
    steps: Arc<RwLock<()>>,
    hits: AtomicU64,
}

impl L1Store {
    /// An L1 in front of `inner` (which answers lifetimes with values: see
    /// [`TtlReads`]); with a `feed`, writes are announced to and heard from
    /// other processes (call [`L1Store::start`]). Without one (a single
    /// process), only local writes evict.
    pub fn new(inner: Arc<dyn TtlReads>, options: L1Options, feed: Option<ChangeFeed>) -> L1Store {
        let l1 = Moka::builder()
            .max_capacity(options.capacity_bytes)
            .weigher(|k: &String, v: &Remembered| {
                u32::try_from(k.len() + v.value.as_ref().map_or(0, |b| b.len()) + 64)
                    .unwrap_or(u32::MAX)
            })
            .expire_after(Lifetime)
            .build_with_hasher(KeyHasher::default());
        let answers = Answers::new(options);
        L1Store {
            inner,
            l1,
            answers,
            stamps: AtomicU64::new(0),
            max_age: options.max_age,
            feed,
            announcer: OnceLock::new(),
            epoch: Arc::default(),
            steps: Arc::default(),
            hits: AtomicU64::new(0),
        }
    }

    /// Listen to other processes' writes and announce this one's (background
    /// tasks). Call once, inside a tokio runtime.
    pub fn start(&self) {
        if let Some(feed) = self.feed.clone() {
            // Messages start with their sender: this process already evicted
            // what it wrote, its own messages are skipped.
            let origin = new_origin();
            let _ = self
                .announcer
                .set(Announcer::start(feed.clone(), origin.clone()));
            let (l1, epoch, steps) = (self.l1.clone(), self.epoch.clone(), self.steps.clone());
            tokio::spawn(feed.run(move |message| {
                let _step = steps.write().unwrap_or_else(PoisonError::into_inner);
                match message {
                    Some(message) => {
                        let mut lines = message.split(SEPARATOR);
                        if lines.next() != Some(origin.as_str()) {
                            epoch.fetch_add(1, Ordering::SeqCst);
                            lines.for_each(|k| l1.invalidate(k));
                        }
                    }
                    None => {
                        // Answers need their entries: emptying these empties them too.
                        epoch.fetch_add(1, Ordering::SeqCst);
                        l1.invalidate_all();
                    }
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

    /// Keep the entries as they are while several are looked up.
    fn shared_step(&self) -> RwLockReadGuard<'_, ()> {
        self.steps.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Change the entries as one step.
    fn exclusive_step(&self) -> RwLockWriteGuard<'_, ()> {
        self.steps.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered value of `key` and its stamp.
    fn lookup(&self, key: &str) -> Option<(Option<Vec<u8>>, u64)> {
        self.l1
            .get(key)
            .map(|r| (r.value.map(|b| b.to_vec()), r.stamp))
    }

    /// Remember what one atomic read found, unless a change was heard since
    /// it started; note what was remembered for the answer being computed.
    fn remember(&self, epoch: u64, found: &[(&str, &Option<Vec<u8>>, Ttl)]) {
        let _step = self.exclusive_step();
        if !self.usable() || self.epoch.load(Ordering::SeqCst) != epoch {
            poison();
            return;
        }
        for (key, value, ttl) in found {
            let lifetime = match ttl {
                Ttl::Remaining(left) => self.max_age.min(*left),
                Ttl::Forever | Ttl::Missing => self.max_age,
            };
            if lifetime.is_zero() {
                poison();
            } else {
                let stamp = self.stamps.fetch_add(1, Ordering::Relaxed) + 1;
                self.l1.insert(
                    (*key).to_owned(),
                    Remembered {
                        value: value.as_deref().map(Arc::from),
                        lifetime,
                        stamp,
                    },
                );
                note(key, stamp);
            }
        }
    }

    /// The component's remembered answer to `name`, if every L1 entry it was
    /// computed from is still there, unchanged, and the users' flags are
    /// those it was computed with (`flags`, a [`ProfileSource`] generation).
    ///
    /// [`ProfileSource`]: crate::profiles::ProfileSource
    pub(crate) fn answer(&self, name: &AnswerName, flags: u64) -> Option<Option<Vec<u8>>> {
        if !self.usable() {
            return None;
        }
        let answer = self.answers.get(name)?;
        let current = answer.flags == flags
            && answer
                .reads
                .iter()
                .all(|(key, stamp)| self.l1.get(key).is_some_and(|r| r.stamp == *stamp));
        if !current {
            self.answers.forget(name);
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(answer.value.as_deref().map(<[u8]>::to_vec))
    }

    /// Remember the component's answer to `name`, computed from `reads`
    /// with the users' flags at generation `flags`. Nothing is kept when the
    /// call did anything but reads served by or remembered in the L1.
    pub(crate) fn remember_answer(
        &self,
        name: AnswerName,
        value: &Option<Vec<u8>>,
        reads: Reads,
        flags: u64,
    ) {
        if let Some(reads) = reads.usable()
            && self.usable()
        {
            self.answers.insert(
                name,
                Answer {
                    value: value.as_deref().map(Arc::from),
                    reads,
                    flags,
                },
            );
        }
    }

    /// What `get-indirect` would read, if every key it reads is in the L1,
    /// with the keys read and the stamps they were found with.
    fn remembered_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
    ) -> Option<(IndirectRead, Vec<(String, u64)>)> {
        let _step = self.shared_step();
        let (ptr, ptr_stamp) = self.lookup(pointer)?;
        let mut seen: Vec<(String, u64)> = vec![(pointer.to_owned(), ptr_stamp)];
        let mut look = |key: String| {
            let (value, stamp) = self.lookup(&key)?;
            seen.push((key, stamp));
            Some(value)
        };
        let values = match ptr.as_deref().and_then(pointer_text) {
            Some(p) => suffixes
                .iter()
                .map(|s| look(format!("{prefix}{p}{s}")))
                .collect::<Option<Vec<_>>>()?,
            None => vec![None; suffixes.len()],
        };
        let also = also
            .iter()
            .map(|k| look(k.clone()))
            .collect::<Option<Vec<_>>>()?;
        let read = IndirectRead {
            pointer: ptr,
            values,
            also,
        };
        Some((read, seen))
    }

    /// Evict `keys` here and announce them to the other processes.
    async fn changed<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        self.evict_and_announce(keys, false).await;
    }

    /// [`changed`](Self::changed) for a version write (an invalidation):
    /// returns once the announcement is published, so that the other
    /// processes' next requests no longer serve what it hid.
    async fn version_changed(&self, key: &str) {
        self.evict_and_announce([key], true).await;
    }

    async fn evict_and_announce<'a>(&self, keys: impl IntoIterator<Item = &'a str>, wait: bool) {
        let keys: Vec<&str> = keys.into_iter().collect();
        poison();
        {
            let _step = self.exclusive_step();
            self.epoch.fetch_add(1, Ordering::SeqCst);
            for k in &keys {
                self.l1.invalidate(*k);
            }
        }
        if let Some(announcer) = self.announcer.get() {
            let keys = keys.iter().map(|k| (*k).to_owned()).collect();
            if wait {
                announcer.announce_published(keys).await;
            } else {
                announcer.announce(keys).await;
            }
        }
    }
}

/// A name for this L1 on the feed, unlike any other process's.
fn new_origin() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: the process id and the clock still tell processes apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("l1-{}-{nanos:x}", std::process::id());
    }
    format!(
        "l1-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[async_trait]
impl Store for L1Store {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        poison();
        self.inner.ping().await
    }

    async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        poison();
        self.inner.memory_info().await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.usable()
            && let Some((v, stamp)) = self.lookup(key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            note(key, stamp);
            return Ok(v);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        // One value: `store.get` has no budget (the component bounds writes).
        let mut found = self
            .inner
            .get_many_ttl(&[key.to_owned()], u64::MAX)
            .await
            .inspect_err(|_| poison())?;
        let (value, ttl) = found
            .pop()
            .ok_or_else(|| StoreError::Other("get-many-ttl returned nothing".into()))
            .inspect_err(|_| poison())?;
        self.remember(epoch, &[(key, &value, ttl)]);
        Ok(value)
    }

    async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        poison();
        let result = self.inner.set(key, value, ttl_ms).await;
        self.changed([key]).await;
        result
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        poison();
        let result = self.inner.delete(key).await;
        self.changed([key]).await;
        result
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        if self.usable()
            && let Some((v, stamp)) = self.lookup(key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            note(key, stamp);
            return Ok(v.is_some());
        }
        poison();
        self.inner.exists(key).await
    }

    async fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        poison();
        let result = self.inner.expire(key, ttl_ms).await;
        self.changed([key]).await;
        result
    }

    async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        poison();
        self.inner.ttl(key).await
    }

    async fn now_micros(&self) -> Result<u64, StoreError> {
        poison();
        self.inner.now_micros().await
    }

    async fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if self.usable() {
            let found: Option<Vec<(Option<Vec<u8>>, u64)>> = {
                let _step = self.shared_step();
                keys.iter().map(|k| self.lookup(k)).collect()
            };
            if let Some(found) = found {
                self.hits.fetch_add(1, Ordering::Relaxed);
                let values: Vec<Option<Vec<u8>>> = keys
                    .iter()
                    .zip(found)
                    .map(|(k, (v, stamp))| {
                        note(k, stamp);
                        v
                    })
                    .collect();
                if values_size(&values) > max_bytes {
                    return Err(StoreError::over_budget(max_bytes));
                }
                return Ok(values);
            }
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let found = self
            .inner
            .get_many_ttl(keys, max_bytes)
            .await
            .inspect_err(|_| poison())?;
        if found.len() != keys.len() {
            poison();
            return Err(StoreError::Other(format!(
                "get-many-ttl returned {} values for {} keys",
                found.len(),
                keys.len()
            )));
        }
        let triples: Vec<(&str, &Option<Vec<u8>>, Ttl)> = keys
            .iter()
            .zip(found.iter())
            .map(|(k, (v, t))| (k.as_str(), v, *t))
            .collect();
        self.remember(epoch, &triples);
        Ok(found.into_iter().map(|(v, _)| v).collect())
    }

    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        poison();
        let result = self.inner.set_many(entries, ttl_ms).await;
        self.changed(entries.iter().map(|(k, _)| k.as_str())).await;
        result
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        poison();
        let result = self.inner.delete_many(keys).await;
        self.changed(keys.iter().map(String::as_str)).await;
        result
    }

    async fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<IndirectRead, StoreError> {
        if self.usable()
            && let Some((read, seen)) = self.remembered_indirect(pointer, prefix, suffixes, also)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            seen.iter().for_each(|(k, stamp)| note(k, *stamp));
            if values_size(&read.values) + values_size(&read.also) > max_bytes {
                return Err(StoreError::over_budget(max_bytes));
            }
            return Ok(read);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let (found, ttls) = self
            .inner
            .get_indirect_ttl(pointer, prefix, suffixes, also, max_bytes)
            .await
            .inspect_err(|_| poison())?;
        if found.values.len() == suffixes.len()
            && found.also.len() == also.len()
            && ttls.len() == 1 + suffixes.len() + also.len()
        {
            let mut triples: Vec<(String, &Option<Vec<u8>>, Ttl)> =
                vec![(pointer.to_owned(), &found.pointer, ttls[0])];
            if let Some(p) = found.pointer.as_deref().and_then(pointer_text) {
                triples.extend(
                    suffixes
                        .iter()
                        .zip(found.values.iter())
                        .zip(&ttls[1..])
                        .map(|((s, v), t)| (format!("{prefix}{p}{s}"), v, *t)),
                );
            }
            triples.extend(
                also.iter()
                    .cloned()
                    .zip(found.also.iter())
                    .zip(&ttls[1 + suffixes.len()..])
                    .map(|((k, v), t)| (k, v, *t)),
            );
            let borrowed: Vec<(&str, &Option<Vec<u8>>, Ttl)> = triples
                .iter()
                .map(|(k, v, t)| (k.as_str(), *v, *t))
                .collect();
            self.remember(epoch, &borrowed);
        } else {
            poison();
        }
        Ok(found)
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        poison();
        let result = self.inner.increment(key, delta).await;
        self.changed([key]).await;
        result
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        poison();
        let result = self.inner.set_if_absent(key, value, ttl_ms).await;
        if !matches!(result, Ok(false)) {
            self.changed([key]).await;
        }
        result
    }

    async fn swap_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        poison();
        let result = self.inner.swap_if(key, expected, new).await;
        if !matches!(result, Ok(false)) {
            // Only version keys (namespaces, tables, the floor) are swapped.
            self.version_changed(key).await;
        }
        result
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        poison();
        let result = self.inner.delete_if(key, expected).await;
        if !matches!(result, Ok(false)) {
            self.changed([key]).await;
        }
        result
    }

    async fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        poison();
        let result = self
            .inner
            .put_counted(entries, ttl_ms, counter, if_absent)
            .await;
        if !matches!(result, Ok(PutOutcome::Exists | PutOutcome::OverLimit)) {
            let keys = entries.iter().map(|(k, _)| k.as_str());
            self.changed(keys.chain([counter.key.as_str()])).await;
        }
        result
    }
}
