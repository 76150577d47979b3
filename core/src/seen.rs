//! [`SeenVersions`]: the last version a cache saw for each namespace, so that
//! a namespaced read can be one plain multi-key read instead of a script.
//!
//! A remembered version is only a guess: a read sends it along with the
//! version and floor keys, in one atomic `get-many`, and uses the entry only
//! if the version read back is the guess and is live. A wrong guess costs a
//! second round trip, never a stale answer.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Namespaces remembered per cache (each component instance has its own):
/// about 70 bytes each whatever the length of the user id, so under 300 KB
/// per instance. With 10,000 users of Zipf-distributed popularity, the 4,096
/// most recently read cover about 90 % of reads.
pub(crate) const CAPACITY: usize = 4096;

/// Bounded map from a namespace's version key to the version last seen;
/// the least recently used namespace is forgotten first.
///
/// Keys are kept as a 64-bit hash of the version key (SipHash with fixed
/// keys: no `RandomState`, whose seed would import WASI randomness into the
/// component). Two namespaces with the same hash share a guess, which
/// costs a retry, never a wrong answer: every guess is checked against the
/// version read back.
#[derive(Default)]
pub(crate) struct SeenVersions {
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    tick: u64,
    by_key: BTreeMap<u64, (u64, u64)>,
    by_tick: BTreeMap<u64, u64>,
}

fn hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl SeenVersions {
    fn with<T>(&self, f: impl FnOnce(&mut Lru) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The version last seen for `key`, if remembered.
    pub fn get(&self, key: &str) -> Option<u64> {
        let key = hash(key);
        self.with(|lru| {
            lru.tick += 1;
            let tick = lru.tick;
            let (version, used) = lru.by_key.get_mut(&key)?;
            let old = std::mem::replace(used, tick);
            let version = *version;
            if let Some(name) = lru.by_tick.remove(&old) {
                lru.by_tick.insert(tick, name);
            }
            Some(version)
        })
    }

    /// Remember `version` for `key`.
    pub fn remember(&self, key: &str, version: u64) {
        let key = hash(key);
        self.with(|lru| {
            lru.tick += 1;
            let tick = lru.tick;
            if let Some((v, used)) = lru.by_key.get_mut(&key) {
                *v = version;
                let old = std::mem::replace(used, tick);
                if let Some(name) = lru.by_tick.remove(&old) {
                    lru.by_tick.insert(tick, name);
                }
                return;
            }
            if lru.by_key.len() >= CAPACITY
                && let Some((_, oldest)) = lru.by_tick.pop_first()
            {
                lru.by_key.remove(&oldest);
            }
            lru.by_key.insert(key, (version, tick));
            lru.by_tick.insert(tick, key);
        })
    }

    /// Forget `key` (its namespace has no live version).
    pub fn forget(&self, key: &str) {
        let key = hash(key);
        self.with(|lru| {
            if let Some((_, used)) = lru.by_key.remove(&key) {
                lru.by_tick.remove(&used);
            }
        })
    }

    /// How many namespaces are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.with(|lru| lru.by_key.len())
    }
}

impl Clone for SeenVersions {
    /// A clone starts with nothing remembered: the memory is a per-cache hint.
    fn clone(&self) -> Self {
        SeenVersions::default()
    }
}

impl std::fmt::Debug for SeenVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.with(|lru| lru.by_key.len());
        f.debug_struct("SeenVersions").field("len", &len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_updates_and_forgets() {
        let seen = SeenVersions::default();
        assert_eq!(seen.get("a"), None);
        seen.remember("a", 5);
        assert_eq!(seen.get("a"), Some(5));
        seen.remember("a", 7);
        assert_eq!(seen.get("a"), Some(7));
        seen.forget("a");
        assert_eq!(seen.get("a"), None);
        assert_eq!(seen.len(), 0);
    }

    #[test]
    fn bounded_and_least_recently_used_goes_first() {
        let seen = SeenVersions::default();
        for i in 0..CAPACITY {
            seen.remember(&format!("k{i}"), i as u64 + 1);
        }
        // Touch the oldest: now k1 is the least recently used.
        assert_eq!(seen.get("k0"), Some(1));
        seen.remember("new", 1);
        assert_eq!(seen.len(), CAPACITY);
        assert_eq!(seen.get("k0"), Some(1), "recently used, kept");
        assert_eq!(seen.get("k1"), None, "least recently used, forgotten");
        for i in 0..10 * CAPACITY {
            seen.remember(&format!("spray{i}"), 1);
        }
        assert_eq!(seen.len(), CAPACITY);
    }
}
