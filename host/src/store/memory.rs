//! [`MemoryStore`]: the embedded in-memory store.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use indexmap::IndexMap;

use super::{
    Counter, IndirectRead, MemoryInfo, PutOutcome, Store, StoreError, TtlReads, pointer_text,
    remaining,
};
use crate::types::Ttl;

/// Bytes counted per entry on top of its key and value.
const ENTRY_OVERHEAD: usize = 64;
/// Keys sampled per eviction, as Redis's `maxmemory-samples`.
const EVICTION_SAMPLES: usize = 5;
/// Keys checked for expiry on each write (active expiry, as Redis does).
const EXPIRY_SAMPLES: usize = 3;

/// A bounded, TTL-aware in-memory store for one process: the embedded default
/// when no Redis is configured.
///
/// Every primitive is atomic (one mutex, never held across an `.await`).
/// Expired keys are dropped when touched and by sampling on writes. When the
/// entries exceed the capacity, keys are evicted by approximated LRU, as Redis
/// does under `allkeys-lru` — version keys included, which the cache logic is
/// built to survive.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    capacity_bytes: usize,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
    last_access: u64,
}

#[derive(Debug)]
struct Inner {
    map: IndexMap<String, Entry>,
    used_bytes: usize,
    evicted: u64,
    tick: u64,
    rng: u64,
}

impl Entry {
    /// What remains of the life of this (live) entry.
    fn ttl(&self, now: Instant) -> Ttl {
        self.expires_at.map_or(Ttl::Forever, |at| {
            remaining(at.saturating_duration_since(now))
        })
    }
}

fn size_of(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl Inner {
    fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for picking eviction samples.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn is_expired(entry: &Entry, now: Instant) -> bool {
        entry.expires_at.is_some_and(|at| at <= now)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.swap_remove(key)?;
        self.used_bytes -= size_of(key, &entry.value);
        Some(entry)
    }

    /// The live entry at `key`, dropping it if it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.map.get(key).is_some_and(|e| Self::is_expired(e, now)) {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(key)?;
        entry.last_access = tick;
        Some(entry)
    }

    /// Refuse a read of `keys` whose values add up to more than `max_bytes`
    /// (before copying any of them).
    fn fits<'k>(
        &mut self,
        keys: impl Iterator<Item = &'k str>,
        max_bytes: u64,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mut total = 0u64;
        for key in keys {
            total += self.live(key, now).map_or(0, |e| e.value.len() as u64);
            if total > max_bytes {
                return Err(StoreError::over_budget(max_bytes));
            }
        }
        Ok(())
    }

    fn read(&mut self, key: &str, now: Instant) -> Option<Vec<u8>> {
        self.live(key, now).map(|e| e.value.clone())
    }

    fn read_ttl(&mut self, key: &str, now: Instant) -> (Option<Vec<u8>>, Ttl) {
        match self.live(key, now) {
            None => (None, Ttl::Missing),
            Some(e) => (Some(e.value.clone()), e.ttl(now)),
        }
    }

    fn write(
        &mut self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        now: Instant,
        capacity: usize,
    ) {
        self.remove(key);
        self.tick += 1;
        let entry = Entry {
            value: value.to_vec(),
            expires_at: ttl_ms.map(|ms| now + Duration::from_millis(ms)),
            last_access: self.tick,
        };
        self.used_bytes += size_of(key, value);
        self.map.insert(key.to_owned(), entry);
        self.expire_some(now);
        self.evict_to(capacity, key);
    }

    fn expire_some(&mut self, now: Instant) {
        for _ in 0..EXPIRY_SAMPLES.min(self.map.len()) {
            let i = (self.next_random() % self.map.len() as u64) as usize;
            if Self::is_expired(&self.map[i], now) {
                let (key, _) = self.map.get_index(i).expect("index in range");
                let key = key.clone();
                self.remove(&key);
            }
        }
    }

    /// Evict by approximated LRU until under `capacity`, sparing `keep` (the
    /// key just written) unless it is the only one left.
    fn evict_to(&mut self, capacity: usize, keep: &str) {
        while self.used_bytes > capacity && self.map.len() > 1 {
            let mut victim: Option<(usize, u64)> = None;
            for _ in 0..EVICTION_SAMPLES {
                let i = (self.next_random() % self.map.len() as u64) as usize;
                let (key, entry) = self.map.get_index(i).expect("index in range");
                if key != keep && victim.is_none_or(|(_, t)| entry.last_access < t) {
                    victim = Some((i, entry.last_access));
                }
            }
            if let Some((i, _)) = victim {
                let key = self.map.get_index(i).expect("index in range").0.clone();
                self.remove(&key);
                self.evicted += 1;
            }
        }
    }
}

impl MemoryStore {
    /// The default capacity: 256 MiB of keys and values.
    pub const DEFAULT_CAPACITY_BYTES: usize = crate::settings::defaults::MEMORY_CAPACITY;

    /// An empty store that holds at most `capacity_bytes` of keys and values
    /// (each entry also counts a fixed overhead of 64 bytes).
    pub fn new(capacity_bytes: usize) -> MemoryStore {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        MemoryStore {
            inner: Mutex::new(Inner {
                map: IndexMap::new(),
                used_bytes: 0,
                evicted: 0,
                tick: 0,
                rng: seed,
            }),
            capacity_bytes,
        }
    }

    /// How many keys are stored (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes used by keys, values and per-entry overhead.
    pub fn used_bytes(&self) -> usize {
        self.lock().used_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied step
        // visible (each step is applied before anything else can run), so a
        // poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(Self::DEFAULT_CAPACITY_BYTES)
    }
}

/// The counter `value` holds: a decimal integer in its canonical form (no
/// sign but `-`, no leading zero, no `-0`, no spaces), as Redis's `INCRBY`
/// reads it and as `increment` writes it.
fn parse_integer(value: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| n.to_string().as_bytes() == value)
        .ok_or(StoreError::NotAnInteger)
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        drop(self.lock());
        Ok(start.elapsed())
    }

    async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        let inner = self.lock();
        Ok(MemoryInfo {
            used_bytes: inner.used_bytes as u64,
            max_bytes: Some(self.capacity_bytes as u64),
            eviction_policy: "allkeys-lru (approximated, in process)".into(),
            evicted_keys: inner.evicted,
            version: None,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().read(key, Instant::now()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.lock()
            .write(key, value, ttl_ms, Instant::now(), self.capacity_bytes);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let live = inner.live(key, Instant::now()).is_some();
        inner.remove(key);
        Ok(live)
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.lock().live(key, Instant::now()).is_some())
    }

    async fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        let now = Instant::now();
        Ok(match self.lock().live(key, now) {
            Some(entry) => {
                entry.expires_at = ttl_ms.map(|ms| now + Duration::from_millis(ms));
                true
            }
            None => false,
        })
    }

    async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .live(key, now)
            .map_or(Ttl::Missing, |e| e.ttl(now)))
    }

    async fn now_micros(&self) -> Result<u64, StoreError> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .map_err(|e| StoreError::Other(format!("system clock before 1970: {e}")))
    }

    async fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.fits(keys.iter().map(String::as_str), max_bytes, now)?;
        Ok(keys.iter().map(|k| inner.read(k, now)).collect())
    }

    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        for (k, v) in entries {
            inner.write(k, v, ttl_ms, now, self.capacity_bytes);
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut removed = 0;
        for k in keys {
            if inner.live(k, now).is_some() {
                removed += 1;
            }
            inner.remove(k);
        }
        Ok(removed)
    }

    async fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<IndirectRead, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let ptr = inner.read(pointer, now);
        let entries: Vec<String> = match ptr.as_deref().and_then(pointer_text) {
            Some(p) => suffixes.iter().map(|s| format!("{prefix}{p}{s}")).collect(),
            None => Vec::new(),
        };
        let read = entries.iter().chain(also).map(String::as_str);
        inner.fits(read, max_bytes, now)?;
        let values = match ptr.as_deref().and_then(pointer_text) {
            Some(_) => entries.iter().map(|k| inner.read(k, now)).collect(),
            None => vec![None; suffixes.len()],
        };
        let also = also.iter().map(|k| inner.read(k, now)).collect();
        Ok(IndirectRead {
            pointer: ptr,
            values,
            also,
        })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let Some(entry) = inner.live(key, now) else {
            return Ok(None);
        };
        let n = parse_integer(&entry.value)?
            .checked_add(delta)
            .ok_or(StoreError::NotAnInteger)?;
        let new = n.to_string().into_bytes();
        let old_len = entry.value.len();
        entry.value = new;
        let new_len = entry.value.len();
        inner.used_bytes = inner.used_bytes + new_len - old_len;
        Ok(Some(n))
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.live(key, now).is_some() {
            return Ok(false);
        }
        inner.write(key, value, ttl_ms, now, self.capacity_bytes);
        Ok(true)
    }

    async fn swap_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.live(key, now).map(|e| e.value.as_slice()) != expected {
            return Ok(false);
        }
        inner.write(key, new, None, now, self.capacity_bytes);
        Ok(true)
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.live(key, now).map(|e| e.value.as_slice()) != Some(expected) {
            return Ok(false);
        }
        inner.remove(key);
        Ok(true)
    }

    async fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let entries = if if_absent {
            match entries.first() {
                Some((key, _)) if inner.live(key, now).is_some() => return Ok(PutOutcome::Exists),
                _ => &entries[..entries.len().min(1)],
            }
        } else {
            entries
        };
        let used = match inner.live(&counter.key, now) {
            Some(entry) => {
                u64::try_from(parse_integer(&entry.value)?).map_err(|_| StoreError::NotAnInteger)?
            }
            None => 0,
        };
        let adding: u64 = entries.iter().map(|(_, v)| v.len() as u64).sum();
        let total = used.saturating_add(adding);
        if total > counter.limit {
            return Ok(PutOutcome::OverLimit);
        }
        let (capacity, ttl) = (self.capacity_bytes, Some(counter.ttl_ms));
        inner.write(
            &counter.key,
            total.to_string().as_bytes(),
            ttl,
            now,
            capacity,
        );
        for (k, v) in entries {
            inner.write(k, v, ttl_ms, now, capacity);
        }
        Ok(PutOutcome::Stored)
    }
}

#[async_trait]
impl TtlReads for MemoryStore {
    async fn get_many_ttl(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<(Option<Vec<u8>>, Ttl)>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.fits(keys.iter().map(String::as_str), max_bytes, now)?;
        Ok(keys.iter().map(|k| inner.read_ttl(k, now)).collect())
    }

    async fn get_indirect_ttl(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<(IndirectRead, Vec<Ttl>), StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let (ptr, ptr_ttl) = inner.read_ttl(pointer, now);
        let entries: Vec<String> = match ptr.as_deref().and_then(pointer_text) {
            Some(p) => suffixes.iter().map(|s| format!("{prefix}{p}{s}")).collect(),
            None => Vec::new(),
        };
        inner.fits(
            entries.iter().chain(also).map(String::as_str),
            max_bytes,
            now,
        )?;
        let mut ttls = vec![ptr_ttl];
        let values = match ptr.as_deref().and_then(pointer_text) {
            Some(p) => suffixes
                .iter()
                .map(|s| {
                    let (v, t) = inner.read_ttl(&format!("{prefix}{p}{s}"), now);
                    ttls.push(t);
                    v
                })
                .collect(),
            None => {
                ttls.extend(suffixes.iter().map(|_| Ttl::Missing));
                vec![None; suffixes.len()]
            }
        };
        let also = also
            .iter()
            .map(|k| {
                let (v, t) = inner.read_ttl(k, now);
                ttls.push(t);
                v
            })
            .collect();
        Ok((
            IndirectRead {
                pointer: ptr,
                values,
                also,
            },
            ttls,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stays_within_capacity_by_evicting_least_recently_used() {
        let store = MemoryStore::new(100 * (ENTRY_OVERHEAD + 10));
        store.set("hot", b"x", None).await.unwrap();
        for i in 0..1000 {
            store
                .set(&format!("key{i:04}"), b"0123", None)
                .await
                .unwrap();
            store.get("hot").await.unwrap();
        }
        assert!(store.used_bytes() <= 100 * (ENTRY_OVERHEAD + 10));
        assert!(
            store.len() > 50,
            "evicts only what it must: {}",
            store.len()
        );
        assert!(
            store.get("hot").await.unwrap().is_some(),
            "a key read all along survives"
        );
    }

    #[tokio::test]
    async fn expiry_and_ttl() {
        let store = MemoryStore::default();
        store.set("k", b"v", Some(30)).await.unwrap();
        assert!(matches!(
            store.ttl("k").await.unwrap(),
            Ttl::Remaining(d) if d <= Duration::from_millis(30)
        ));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.get("k").await.unwrap(), None);
        assert_eq!(store.ttl("k").await.unwrap(), Ttl::Missing);
        assert_eq!(store.used_bytes(), 0);
    }

    #[tokio::test]
    async fn increment_keeps_accounting_exact() {
        let store = MemoryStore::default();
        store.set("n", b"9", None).await.unwrap();
        let before = store.used_bytes();
        assert_eq!(store.increment("n", 1).await.unwrap(), Some(10));
        assert_eq!(store.used_bytes(), before + 1);
        assert_eq!(store.increment("missing", 1).await.unwrap(), None);
        store.set("s", b"abc", None).await.unwrap();
        assert_eq!(store.increment("s", 1).await, Err(StoreError::NotAnInteger));
        for not_canonical in ["+1", "01", "-0", " 1"] {
            store
                .set("s", not_canonical.as_bytes(), None)
                .await
                .unwrap();
            assert_eq!(store.increment("s", 1).await, Err(StoreError::NotAnInteger));
        }
    }
}
