//! [`MapHost`]: a single-threaded in-memory [`Host`] with a manual clock.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use crate::error::StoreError;
use crate::expiry::TimeToLive;
use crate::host::{Counter, Host, Indirect, PutOutcome};

/// A value and the time it expires at, in the host's clock (ms).
type Entry = (Vec<u8>, Option<u64>);

/// A [`Host`] over a `BTreeMap`, for unit tests, examples and benches of the
/// cache logic. Its clock only moves when told ([`MapHost::advance_ms`]), it
/// can be switched off to test the failure policy ([`MapHost::set_down`],
/// [`MapHost::set_faulty`]),
/// and it keeps per-user `cache_enabled` flags (default: enabled).
///
/// It is not a production store: the host crate has the real ones (Redis and
/// a bounded, thread-safe memory store).
#[derive(Debug, Default)]
pub struct MapHost {
    entries: RefCell<BTreeMap<String, Entry>>,
    now_ms: Cell<u64>,
    down: Cell<bool>,
    faulty: Cell<bool>,
    disabled: RefCell<BTreeSet<String>>,
    calls: Cell<u64>,
    scripted_reads: Cell<u64>,
}

/// The bytes of the values found.
fn size(values: &[Option<Vec<u8>>]) -> u64 {
    values.iter().flatten().map(|v| v.len() as u64).sum()
}

fn over_budget(max_bytes: u64) -> StoreError {
    StoreError::TooLarge(format!("the values found are more than {max_bytes} bytes"))
}

/// `values`, if they fit in `max_bytes`.
fn within(
    values: Vec<Option<Vec<u8>>>,
    max_bytes: u64,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    if size(&values) > max_bytes {
        return Err(over_budget(max_bytes));
    }
    Ok(values)
}

impl MapHost {
    /// An empty store whose clock reads 2026-01-01.
    pub fn new() -> MapHost {
        let host = MapHost::default();
        host.now_ms.set(1_767_225_600_000);
        host
    }

    /// Move the clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Make every primitive fail with `unavailable` (`true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.down.set(down);
    }

    /// Make every primitive fail with `other` (a reply the host could not
    /// make sense of: a fault, not an outage) (`true`) or work again.
    pub fn set_faulty(&self, faulty: bool) {
        self.faulty.set(faulty);
    }

    /// Set a user's `cache_enabled` flag.
    pub fn set_cache_enabled(&self, user: &str, enabled: bool) {
        if enabled {
            self.disabled.borrow_mut().remove(user);
        } else {
            self.disabled.borrow_mut().insert(user.to_owned());
        }
    }

    /// Remove a key behind the cache's back (as an eviction would).
    pub fn evict(&self, key: &str) -> bool {
        self.entries.borrow_mut().remove(key).is_some()
    }

    /// Every live key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.purge();
        let mut keys: Vec<String> = self.entries.borrow().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// How many primitives have been called (each is one store round trip).
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// How many of those calls were `get-indirect` (the scripted read).
    pub fn scripted_reads(&self) -> u64 {
        self.scripted_reads.get()
    }

    fn purge(&self) {
        let now = self.now_ms.get();
        self.entries
            .borrow_mut()
            .retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
    }

    fn enter(&self) -> Result<(), StoreError> {
        self.calls.set(self.calls.get() + 1);
        if self.down.get() {
            return Err(StoreError::Unavailable("MapHost is down".into()));
        }
        if self.faulty.get() {
            return Err(StoreError::Other("MapHost answered nonsense".into()));
        }
        self.purge();
        Ok(())
    }

    fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.borrow().get(key).map(|(v, _)| v.clone())
    }

    fn write(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) {
        let expires = ttl_ms.map(|ms| self.now_ms.get() + ms);
        self.entries
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), expires));
    }
}

impl Host for MapHost {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.enter()?;
        Ok(self.read(key))
    }

    fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.enter()?;
        self.write(key, value, ttl_ms);
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.enter()?;
        Ok(self.entries.borrow_mut().remove(key).is_some())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.enter()?;
        Ok(self.entries.borrow().contains_key(key))
    }

    fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        self.enter()?;
        let now = self.now_ms.get();
        Ok(match self.entries.borrow_mut().get_mut(key) {
            Some((_, exp)) => {
                *exp = ttl_ms.map(|ms| now + ms);
                true
            }
            None => false,
        })
    }

    fn ttl(&self, key: &str) -> Result<TimeToLive, StoreError> {
        self.enter()?;
        let now = self.now_ms.get();
        Ok(match self.entries.borrow().get(key) {
            None => TimeToLive::Missing,
            Some((_, None)) => TimeToLive::Forever,
            Some((_, Some(exp))) => TimeToLive::RemainingMs(exp - now),
        })
    }

    fn now_micros(&self) -> Result<u64, StoreError> {
        self.enter()?;
        Ok(self.now_ms.get() * 1000)
    }

    fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.enter()?;
        within(keys.iter().map(|k| self.read(k)).collect(), max_bytes)
    }

    fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.enter()?;
        for (k, v) in entries {
            self.write(k, v, ttl_ms);
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        self.enter()?;
        let mut entries = self.entries.borrow_mut();
        let unique: BTreeSet<&String> = keys.iter().collect();
        Ok(unique
            .into_iter()
            .filter(|k| entries.remove(*k).is_some())
            .count() as u32)
    }

    fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<Indirect, StoreError> {
        self.enter()?;
        self.scripted_reads.set(self.scripted_reads.get() + 1);
        let ptr = self.read(pointer);
        let values = match &ptr {
            Some(p) => {
                let p = String::from_utf8_lossy(p);
                suffixes
                    .iter()
                    .map(|s| self.read(&format!("{prefix}{p}{s}")))
                    .collect()
            }
            None => vec![None; suffixes.len()],
        };
        let also: Vec<Option<Vec<u8>>> = also.iter().map(|k| self.read(k)).collect();
        if size(&values) + size(&also) > max_bytes {
            return Err(over_budget(max_bytes));
        }
        Ok(Indirect {
            pointer: ptr,
            values,
            also,
        })
    }

    fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        self.enter()?;
        let mut entries = self.entries.borrow_mut();
        let Some((value, _)) = entries.get_mut(key) else {
            return Ok(None);
        };
        let n: i64 = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(StoreError::NotAnInteger)?;
        let n = n.checked_add(delta).ok_or(StoreError::NotAnInteger)?;
        *value = n.to_string().into_bytes();
        Ok(Some(n))
    }

    fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.enter()?;
        if self.entries.borrow().contains_key(key) {
            return Ok(false);
        }
        self.write(key, value, ttl_ms);
        Ok(true)
    }

    fn swap_if(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, StoreError> {
        self.enter()?;
        if self.read(key).as_deref() != expected {
            return Ok(false);
        }
        self.write(key, new, None);
        Ok(true)
    }

    fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        self.enter()?;
        if self.read(key).as_deref() != Some(expected) {
            return Ok(false);
        }
        self.entries.borrow_mut().remove(key);
        Ok(true)
    }

    fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        self.enter()?;
        if if_absent
            && entries
                .first()
                .is_some_and(|(k, _)| self.entries.borrow().contains_key(k))
        {
            return Ok(PutOutcome::Exists);
        }
        let entries = if if_absent {
            &entries[..entries.len().min(1)]
        } else {
            entries
        };
        let used: u64 = match self.read(&counter.key) {
            Some(raw) => std::str::from_utf8(&raw)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(StoreError::NotAnInteger)?,
            None => 0,
        };
        let adding: u64 = entries.iter().map(|(_, v)| v.len() as u64).sum();
        let total = used.saturating_add(adding);
        if total > counter.limit {
            return Ok(PutOutcome::OverLimit);
        }
        self.write(
            &counter.key,
            total.to_string().as_bytes(),
            Some(counter.ttl_ms),
        );
        for (k, v) in entries {
            self.write(k, v, ttl_ms);
        }
        Ok(PutOutcome::Stored)
    }

    fn cache_enabled(&self, user: &str) -> Result<bool, String> {
        Ok(!self.disabled.borrow().contains(user))
    }
}
