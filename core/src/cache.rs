//! [`Cache`]: every operation of the cache API, over any [`Host`].

use crate::error::{Error, StoreError, degrade};
use crate::expiry::{Expiry, Lifetime, TimeToLive};
use crate::host::{Counter, Host, Indirect, PutOutcome};
use crate::layout::{Kind, Layout, UserKeys};
use crate::seen::SeenVersions;
use crate::settings::{MAX_NAME_BYTES, Settings, check_name};
use crate::versions::{self, Versions};

/// The keyspace an operation works in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The global keyspace `{prefix}:{version}:{key}`.
    Global,
    /// The namespace of one user (an opaque, non-empty id).
    User(String),
}

/// What [`Cache::read_for_update`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedRead {
    /// The value, or `None` on a miss.
    pub value: Option<Vec<u8>>,
    /// The keyspace version it was read under, for [`Cache::set_at`]. `0`
    /// when the cache is bypassed (disabled user, store unavailable): `set_at`
    /// then writes nothing.
    pub version: u64,
}

/// Values read for a list of keys, in order (`None`: missing).
type Values = Vec<Option<Vec<u8>>>;

/// `keys` without repeats (first occurrences, in order), and for each key
/// asked the position of its value among them.
fn distinct_keys<'k>(keys: &[&'k str]) -> (Vec<&'k str>, Vec<usize>) {
    let mut distinct: Vec<&str> = Vec::with_capacity(keys.len());
    // A BTreeMap, not a HashMap: std's RandomState would ask the host for a
    // random seed, which the component does not import.
    let mut index = std::collections::BTreeMap::new();
    let positions = keys
        .iter()
        .map(|k| {
            *index.entry(*k).or_insert_with(|| {
                distinct.push(k);
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, positions)
}

/// The answer for every key asked, from the values of the distinct keys —
/// unless it would hold more than `budget` bytes of values.
fn expand(values: Values, positions: &[usize], budget: u64) -> Result<Values, Error> {
    let size: u64 = positions
        .iter()
        .map(|&p| values[p].as_ref().map_or(0, |v| v.len() as u64))
        .sum();
    if size > budget {
        return Err(Error::ReplyTooLarge(format!(
            "the values asked for add up to {size} bytes, more than the {budget} a reply may hold"
        )));
    }
    if positions.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(values); // no repeats
    }
    Ok(positions.iter().map(|&p| values[p].clone()).collect())
}

/// Where an operation lands once its scope is resolved.
pub(crate) enum Target {
    Global,
    User(UserKeys),
    /// The user's cache is disabled (or the flag cannot be read).
    Bypass,
}

/// The cache logic: key layout, versioning, limits and failure policy.
///
/// It holds its settings and a bounded memory of the namespace versions it
/// has seen (a hint, checked on every read); every method takes the [`Host`]
/// that performs I/O.
/// Reads degrade to misses and plain writes are skipped when the store fails;
/// the other operations return [`Error::Unavailable`] (see `wit/cache.wit`).
#[derive(Debug, Clone)]
pub struct Cache {
    settings: Settings,
    layout: Layout,
    /// The version last seen per namespace: a hint that makes most
    /// namespaced reads one plain `get-many` (see [`Cache::get_many`]).
    seen: SeenVersions,
}

/// Plain `get-many` reads tried before a namespaced read falls back to the
/// script: the remembered version, then the one that read found.
const OPTIMISTIC_ATTEMPTS: usize = 2;

/// In cluster mode (hash-tagged layout), the plain reads tried before a
/// namespaced read gives up as a miss: the version moved every time.
const CLUSTER_ATTEMPTS: usize = 4;

/// What [`Cache::read_at`] found at the version it guessed.
enum AtVersion {
    /// The version is current: the entries read with it.
    Live(Values),
    /// The namespace is at another (live) version.
    Moved(u64),
    /// The namespace has no live version (none, or below the floor).
    Dead,
}

impl Default for Cache {
    fn default() -> Self {
        let settings = Settings::default();
        Cache {
            layout: Layout::new(&settings),
            settings,
            seen: SeenVersions::default(),
        }
    }
}

impl Cache {
    /// A cache with validated settings.
    pub fn new(settings: Settings) -> Result<Cache, Error> {
        settings.validate()?;
        Ok(Cache {
            layout: Layout::new(&settings),
            settings,
            seen: SeenVersions::default(),
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The key layout in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn versions<'a, H: Host>(&'a self, host: &'a H) -> Versions<'a, H> {
        Versions {
            host,
            layout: &self.layout,
        }
    }

    pub(crate) fn user_keys(&self, user: &str) -> Result<UserKeys, Error> {
        check_name("user id", user)?;
        Ok(self.layout.user(user))
    }

    /// Resolve a scope, consulting the user's `cache_enabled` flag.
    pub(crate) fn target<H: Host>(&self, host: &H, scope: &Scope) -> Result<Target, Error> {
        match scope {
            Scope::Global => Ok(Target::Global),
            Scope::User(user) => {
                let keys = self.user_keys(user)?;
                match host.cache_enabled(user) {
                    Ok(true) => Ok(Target::User(keys)),
                    Ok(false) | Err(_) => Ok(Target::Bypass),
                }
            }
        }
    }

    /// The storage key of `key` in `target`, or `None` when the namespace holds
    /// nothing (no live version).
    fn resolve<H: Host>(
        &self,
        host: &H,
        target: &Target,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(match target {
            Target::Global => Some(self.layout.global_key(key)),
            Target::User(keys) => self
                .versions(host)
                .current(keys)?
                .map(|v| keys.entry_key(v, Kind::Data, key)),
            Target::Bypass => None,
        })
    }

    /// Write `entries` into `version` of a user's namespace, in one atomic
    /// step: their expiry cut to the longest a namespaced entry may live, and
    /// their sizes added to the version's byte count unless that would pass
    /// the quota (then nothing is written). With `if_absent`, only the first
    /// entry, and only if its key does not exist.
    pub(crate) fn put_namespaced<H: Host>(
        &self,
        host: &H,
        keys: &UserKeys,
        version: u64,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        let ttl_ms = Some(self.settings.namespaced_ttl(ttl_ms));
        let quota = self.settings.namespace_quota_bytes;
        if quota > 0 {
            let counter = Counter {
                key: keys.counter_key(version),
                limit: quota,
                ttl_ms: self.settings.max_namespace_ttl_ms,
            };
            return host.put_counted(entries, ttl_ms, &counter, if_absent);
        }
        match entries {
            [(key, value), ..] if if_absent => Ok(if host.set_if_absent(key, value, ttl_ms)? {
                PutOutcome::Stored
            } else {
                PutOutcome::Exists
            }),
            [(key, value)] => host.set(key, value, ttl_ms).map(|()| PutOutcome::Stored),
            _ => host.set_many(entries, ttl_ms).map(|()| PutOutcome::Stored),
        }
    }

    /// The error of a write refused by the namespace quota.
    pub(crate) fn quota_exceeded(&self) -> Error {
        Error::QuotaExceeded(format!(
            "more than {} bytes written into this namespace since it was last invalidated \
             (invalidate it, or raise namespace-quota-bytes)",
            self.settings.namespace_quota_bytes
        ))
    }

    /// Read entries of a namespace and its liveness, atomically.
    ///
    /// With a remembered version this is one plain `get-many` of the version
    /// key, the floor key and the entries at that version: when the version
    /// read back is the remembered one and is live, those entries are the
    /// current ones (the same atomic snapshot the script would take). A
    /// version that moved is learned and tried once more; then, or without a
    /// remembered version, the one-round-trip `get-indirect` script reads it.
    fn read_entries<H: Host>(
        &self,
        host: &H,
        keys: &UserKeys,
        app_keys: &[&str],
    ) -> Result<(Option<u64>, Values), StoreError> {
        if self.settings.cluster_hash_tags {
            return self.read_entries_cluster(host, keys, app_keys);
        }
        // The version and floor ride along: a few bytes over the budget,
        // which the caller checks again on the values alone.
        let budget = self
            .settings
            .max_reply_bytes
            .saturating_add(versions::read_budget(2));
        let floor_key = self.layout.floor_key();
        let mut guess = self.seen.get(&keys.version_key);
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let Some(version) = guess else { break };
            match self.read_at(host, keys, &floor_key, app_keys, version, budget) {
                Ok(AtVersion::Live(found)) => return Ok((Some(version), found)),
                Ok(AtVersion::Moved(current)) => {
                    self.seen.remember(&keys.version_key, current);
                    guess = Some(current);
                }
                Ok(AtVersion::Dead) => {
                    self.seen.forget(&keys.version_key);
                    return Ok((None, vec![None; app_keys.len()]));
                }
                // The entries of a version that may be dead are over the
                // budget: ask the script, which reads the current version's.
                Err(StoreError::TooLarge(_)) => {
                    self.seen.forget(&keys.version_key);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let suffixes: Vec<String> = app_keys
            .iter()
            .map(|k| UserKeys::entry_suffix(Kind::Data, k))
            .collect();
        let found = host.get_indirect(
            &keys.version_key,
            &keys.entry_prefix,
            &suffixes,
            &[floor_key],
            self.settings.max_reply_bytes,
        )?;
        if found.values.len() != app_keys.len() || found.also.len() != 1 {
            return Err(StoreError::Other(
                "get-indirect returned the wrong number of values".into(),
            ));
        }
        match versions::live(found.pointer.as_deref(), found.also[0].as_deref()) {
            Some(v) => {
                self.seen.remember(&keys.version_key, v);
                Ok((Some(v), found.values))
            }
            None => {
                self.seen.forget(&keys.version_key);
                Ok((None, vec![None; app_keys.len()]))
            }
        }
    }

    /// One optimistic read of a namespace at a guessed `version`: a single
    /// `get-many` of the version key, the floor and the entries at that
    /// version (the entries stay in place after the first two).
    fn read_at<H: Host>(
        &self,
        host: &H,
        keys: &UserKeys,
        floor_key: &str,
        app_keys: &[&str],
        version: u64,
        budget: u64,
    ) -> Result<AtVersion, StoreError> {
        let mut storage = Vec::with_capacity(2 + app_keys.len());
        storage.push(keys.version_key.clone());
        storage.push(floor_key.to_owned());
        storage.extend(
            app_keys
                .iter()
                .map(|k| keys.entry_key(version, Kind::Data, k)),
        );
        let mut found = host.get_many(&storage, budget)?;
        if found.len() != storage.len() {
            return Err(StoreError::Other(format!(
                "get-many returned {} values for {} keys",
                found.len(),
                storage.len()
            )));
        }
        Ok(
            match versions::live(found[0].as_deref(), found[1].as_deref()) {
                Some(current) if current == version => {
                    found.drain(..2);
                    AtVersion::Live(found)
                }
                Some(current) => AtVersion::Moved(current),
                None => AtVersion::Dead,
            },
        )
    }

    /// [`Cache::read_entries`] on Redis Cluster, without `get-indirect`
    /// (whose entry keys are computed in the store, which a cluster script
    /// may not do). Each attempt is one `get-many` of the version key, the
    /// floor and the entries at a guessed version; the version key and the
    /// entries share the user's slot, so the store reads them in one atomic
    /// `MGET` on that node, and the floor beside it. Without a remembered
    /// version, or when the remembered one's entries are over the budget,
    /// the version and floor are read first (a second round trip). A version
    /// that keeps moving gives a miss.
    fn read_entries_cluster<H: Host>(
        &self,
        host: &H,
        keys: &UserKeys,
        app_keys: &[&str],
    ) -> Result<(Option<u64>, Values), StoreError> {
        let misses = || vec![None; app_keys.len()];
        let budget = self
            .settings
            .max_reply_bytes
            .saturating_add(versions::read_budget(2));
        let floor_key = self.layout.floor_key();
        let mut guess = self.seen.get(&keys.version_key);
        // True when `guess` was read just now: its entries are the current ones.
        let mut fresh = false;
        for _ in 0..CLUSTER_ATTEMPTS {
            let version = match guess {
                Some(v) => v,
                None => match self.versions(host).current(keys)? {
                    Some(v) => {
                        fresh = true;
                        v
                    }
                    None => {
                        self.seen.forget(&keys.version_key);
                        return Ok((None, misses()));
                    }
                },
            };
            match self.read_at(host, keys, &floor_key, app_keys, version, budget) {
                Ok(AtVersion::Live(found)) => {
                    self.seen.remember(&keys.version_key, version);
                    return Ok((Some(version), found));
                }
                Ok(AtVersion::Moved(current)) => {
                    self.seen.remember(&keys.version_key, current);
                    guess = Some(current);
                    fresh = false;
                }
                Ok(AtVersion::Dead) => {
                    self.seen.forget(&keys.version_key);
                    return Ok((None, misses()));
                }
                Err(StoreError::TooLarge(_)) if !fresh => {
                    self.seen.forget(&keys.version_key);
                    guess = None;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((None, misses()))
    }

    /// What `get-indirect` of one entry answers, on Redis Cluster: every key
    /// named here (a cluster script may not compute keys). Each attempt is
    /// one `get-many` of the version key and the entry at a guessed version
    /// (one atomic `MGET` in the user's slot) and the `also` keys (read
    /// beside it, each in its own slot); the guess is the remembered
    /// version, else the version key read first. Done when the version read
    /// back is the guess.
    pub(crate) fn get_indirect_cluster<H: Host>(
        &self,
        host: &H,
        keys: &UserKeys,
        kind: Kind,
        key: &str,
        also: &[String],
        max_bytes: u64,
    ) -> Result<Indirect, StoreError> {
        let mut guess = match self.seen.get(&keys.version_key) {
            Some(v) => Some(v.to_string().into_bytes()),
            None => host.get(&keys.version_key)?,
        };
        for _ in 0..CLUSTER_ATTEMPTS {
            let entry = guess
                .as_deref()
                .and_then(|g| std::str::from_utf8(g).ok())
                .map(|g| {
                    format!(
                        "{}{g}{}",
                        keys.entry_prefix,
                        UserKeys::entry_suffix(kind, key)
                    )
                });
            let mut storage = Vec::with_capacity(2 + also.len());
            storage.push(keys.version_key.clone());
            storage.extend(entry.iter().cloned());
            storage.extend(also.iter().cloned());
            let mut found = host.get_many(&storage, max_bytes.saturating_add(64))?;
            if found.len() != storage.len() {
                return Err(StoreError::Other(format!(
                    "get-many returned {} values for {} keys",
                    found.len(),
                    storage.len()
                )));
            }
            let also_values = found.split_off(1 + usize::from(entry.is_some()));
            let value = if entry.is_some() {
                found.pop().flatten()
            } else {
                None
            };
            let pointer = found.pop().flatten();
            if pointer == guess {
                if let Some(v) = versions::parse(pointer.as_deref()) {
                    self.seen.remember(&keys.version_key, v);
                }
                return Ok(Indirect {
                    pointer,
                    values: vec![value],
                    also: also_values,
                });
            }
            guess = pointer;
        }
        Err(StoreError::Other(
            "the namespace version kept changing during a read".into(),
        ))
    }

    /// The value at `key`, or `None` on a miss. One store round trip.
    pub fn get<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.settings.check_key(key)?;
        // `get_many` of one key, without the bookkeeping of repeated keys.
        let values = self.read_distinct(host, scope, &[key])?;
        Ok(expand(values, &[0], self.settings.max_reply_bytes)?
            .pop()
            .flatten())
    }

    /// The values of `keys`, in order. One store round trip.
    pub fn get_many<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        keys: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>, Error> {
        for key in keys {
            self.settings.check_key(key)?;
        }
        // A key asked twice is read once; the reply still carries it twice,
        // and that is what the budget counts.
        let (distinct, positions) = distinct_keys(keys);
        let values = self.read_distinct(host, scope, &distinct)?;
        expand(values, &positions, self.settings.max_reply_bytes)
    }

    /// The values of `distinct` (checked keys, none repeated), in order.
    fn read_distinct<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        distinct: &[&str],
    ) -> Result<Values, Error> {
        let misses = || vec![None; distinct.len()];
        let budget = self.settings.max_reply_bytes;
        Ok(match self.target(host, scope)? {
            Target::Bypass => misses(),
            Target::Global => {
                let storage: Vec<String> =
                    distinct.iter().map(|k| self.layout.global_key(k)).collect();
                let values = degrade(host.get_many(&storage, budget), misses)?;
                if values.len() != distinct.len() {
                    return Err(Error::Internal(format!(
                        "get-many returned {} values for {} keys",
                        values.len(),
                        distinct.len()
                    )));
                }
                values
            }
            Target::User(user) => degrade(
                self.read_entries(host, &user, distinct)
                    .map(|(_, values)| values),
                misses,
            )?,
        })
    }

    /// Store `value` at `key`. Skipped (without error) when the store fails.
    pub fn set<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
        value: &[u8],
        ttl: Expiry,
    ) -> Result<(), Error> {
        self.set_many(host, scope, &[(key, value)], ttl)
    }

    /// Store every entry, atomically. Skipped (without error) when the store fails.
    pub fn set_many<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        entries: &[(&str, &[u8])],
        ttl: Expiry,
    ) -> Result<(), Error> {
        for (key, value) in entries {
            self.settings.check_key(key)?;
            self.settings.check_value(value)?;
        }
        let target = self.target(host, scope)?;
        let version = match &target {
            Target::Bypass => return Ok(()),
            Target::Global => 0,
            Target::User(keys) => {
                match degrade(self.versions(host).ensure_live(keys).map(Some), || None)? {
                    Some(v) => {
                        self.seen.remember(&keys.version_key, v);
                        v
                    }
                    None => return Ok(()),
                }
            }
        };
        let storage_key = |key: &str| match &target {
            Target::User(keys) => keys.entry_key(version, Kind::Data, key),
            _ => self.layout.global_key(key),
        };
        // A write the store could not take is skipped: the host has logged
        // and counted it.
        let written = match (ttl.lifetime(self.settings.default_ttl_ms), &target) {
            (Lifetime::Remove, _) => {
                let keys: Vec<String> = entries.iter().map(|(k, _)| storage_key(k)).collect();
                host.delete_many(&keys).map(drop)
            }
            (Lifetime::Keep(ttl_ms), Target::User(keys)) => {
                let batch: Vec<(String, Vec<u8>)> = entries
                    .iter()
                    .map(|(k, v)| (storage_key(k), v.to_vec()))
                    .collect();
                match self.put_namespaced(host, keys, version, &batch, ttl_ms, false) {
                    Ok(PutOutcome::OverLimit) => return Err(self.quota_exceeded()),
                    other => other.map(drop),
                }
            }
            (Lifetime::Keep(ttl_ms), _) => match entries {
                [(key, value)] => host.set(&storage_key(key), value, ttl_ms),
                _ => {
                    let batch: Vec<(String, Vec<u8>)> = entries
                        .iter()
                        .map(|(k, v)| (storage_key(k), v.to_vec()))
                        .collect();
                    host.set_many(&batch, ttl_ms)
                }
            },
        };
        degrade(written, || ())
    }

    /// Store `value` only if `key` does not exist. True if stored.
    ///
    /// For a user whose cache is disabled this reports true and stores nothing,
    /// as Django's dummy cache does.
    pub fn add<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
        value: &[u8],
        ttl: Expiry,
    ) -> Result<bool, Error> {
        self.settings.check_key(key)?;
        self.settings.check_value(value)?;
        let (storage_key, namespace) = match self.target(host, scope)? {
            Target::Bypass => return Ok(true),
            Target::Global => (self.layout.global_key(key), None),
            Target::User(keys) => {
                let version = self.versions(host).ensure_live(&keys)?;
                (
                    keys.entry_key(version, Kind::Data, key),
                    Some((keys, version)),
                )
            }
        };
        Ok(
            match (ttl.lifetime(self.settings.default_ttl_ms), namespace) {
                // Added and expired at once, unless something is there already.
                (Lifetime::Remove, _) => !host.exists(&storage_key)?,
                (Lifetime::Keep(ttl_ms), Some((keys, version))) => {
                    let entry = [(storage_key, value.to_vec())];
                    match self.put_namespaced(host, &keys, version, &entry, ttl_ms, true)? {
                        PutOutcome::Stored => true,
                        PutOutcome::Exists => false,
                        PutOutcome::OverLimit => return Err(self.quota_exceeded()),
                    }
                }
                (Lifetime::Keep(ttl_ms), None) => {
                    host.set_if_absent(&storage_key, value, ttl_ms)?
                }
            },
        )
    }

    /// Remove `key`. True if it existed.
    ///
    /// Deletes go through even when the user's cache is disabled, so that a
    /// stale entry cannot outlive the application's attempt to remove it.
    pub fn delete<H: Host>(&self, host: &H, scope: &Scope, key: &str) -> Result<bool, Error> {
        Ok(self.delete_many(host, scope, &[key])? > 0)
    }

    /// Remove every key in `keys`; returns how many existed.
    pub fn delete_many<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        keys: &[&str],
    ) -> Result<u32, Error> {
        for key in keys {
            self.settings.check_key(key)?;
        }
        let storage: Vec<String> = match scope {
            Scope::Global => keys.iter().map(|k| self.layout.global_key(k)).collect(),
            Scope::User(user) => {
                let user = self.user_keys(user)?;
                match self.versions(host).current(&user)? {
                    Some(v) => keys
                        .iter()
                        .map(|k| user.entry_key(v, Kind::Data, k))
                        .collect(),
                    None => return Ok(0),
                }
            }
        };
        Ok(match storage.as_slice() {
            [] => 0,
            [one] => u32::from(host.delete(one)?),
            _ => host.delete_many(&storage)?,
        })
    }

    /// True if `key` exists. False when the store fails.
    pub fn has_key<H: Host>(&self, host: &H, scope: &Scope, key: &str) -> Result<bool, Error> {
        self.settings.check_key(key)?;
        let target = self.target(host, scope)?;
        match degrade(self.resolve(host, &target, key), || None)? {
            Some(k) => degrade(host.exists(&k), || false),
            None => Ok(false),
        }
    }

    /// Add `delta` to the integer at `key`; [`Error::NotFound`] if it is missing.
    pub fn incr<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
        delta: i64,
    ) -> Result<i64, Error> {
        self.settings.check_key(key)?;
        let target = self.target(host, scope)?;
        let Some(storage_key) = self.resolve(host, &target, key)? else {
            return Err(Error::NotFound);
        };
        host.increment(&storage_key, delta)?.ok_or(Error::NotFound)
    }

    /// Subtract `delta` from the integer at `key`.
    pub fn decr<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
        delta: i64,
    ) -> Result<i64, Error> {
        let delta = delta
            .checked_neg()
            .ok_or_else(|| Error::InvalidArgument(format!("cannot decrement by {delta}")))?;
        self.incr(host, scope, key, delta)
    }

    /// Give an existing key a new expiry. True if the key exists.
    pub fn touch<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
        ttl: Expiry,
    ) -> Result<bool, Error> {
        self.settings.check_key(key)?;
        let target = self.target(host, scope)?;
        let Some(storage_key) = self.resolve(host, &target, key)? else {
            return Ok(false);
        };
        Ok(
            match (ttl.lifetime(self.settings.default_ttl_ms), &target) {
                (Lifetime::Remove, _) => host.delete(&storage_key)?,
                // A namespaced entry never lives longer than the namespace allows.
                (Lifetime::Keep(ttl_ms), Target::User(_)) => {
                    host.expire(&storage_key, Some(self.settings.namespaced_ttl(ttl_ms)))?
                }
                (Lifetime::Keep(ttl_ms), _) => host.expire(&storage_key, ttl_ms)?,
            },
        )
    }

    /// How long `key` has left. `Missing` when the store fails.
    pub fn ttl<H: Host>(&self, host: &H, scope: &Scope, key: &str) -> Result<TimeToLive, Error> {
        self.settings.check_key(key)?;
        let target = self.target(host, scope)?;
        match degrade(self.resolve(host, &target, key), || None)? {
            Some(k) => degrade(host.ttl(&k), || TimeToLive::Missing),
            None => Ok(TimeToLive::Missing),
        }
    }

    /// Remove the expiry of an existing key (in a user's namespace: give it
    /// the longest life a namespaced entry may have). True if the key exists.
    pub fn persist<H: Host>(&self, host: &H, scope: &Scope, key: &str) -> Result<bool, Error> {
        self.touch(host, scope, key, Expiry::Never)
    }

    /// Read `key` for a later [`Cache::set_at`]: the first half of a race-safe
    /// `get_or_set`. Creates the namespace if needed, so the version is real.
    pub fn read_for_update<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
    ) -> Result<VersionedRead, Error> {
        self.settings.check_key(key)?;
        let bypass = VersionedRead {
            value: None,
            version: 0,
        };
        Ok(match self.target(host, scope)? {
            Target::Bypass => bypass,
            Target::Global => VersionedRead {
                value: degrade(host.get(&self.layout.global_key(key)), || None)?,
                version: self.settings.key_version,
            },
            Target::User(keys) => {
                match degrade(self.read_entries(host, &keys, &[key]).map(Some), || None)? {
                    Some((Some(version), mut values)) => VersionedRead {
                        value: values.pop().flatten(),
                        version,
                    },
                    Some((None, _)) => {
                        match degrade(self.versions(host).ensure_live(&keys).map(Some), || None)? {
                            Some(version) => VersionedRead {
                                value: None,
                                version,
                            },
                            None => bypass,
                        }
                    }
                    None => bypass,
                }
            }
        })
    }

    /// Store `value` under the version a [`Cache::read_for_update`] returned.
    ///
    /// Nothing is written when that version is no longer live (the value would
    /// be unreachable) or is `0`; a version newer than the current one is
    /// [`Error::InvalidArgument`]. Skipped (without error) when the store fails.
    pub fn set_at<H: Host>(
        &self,
        host: &H,
        scope: &Scope,
        key: &str,
        version: u64,
        value: &[u8],
        ttl: Expiry,
    ) -> Result<(), Error> {
        self.settings.check_key(key)?;
        self.settings.check_value(value)?;
        if version == 0 {
            return Ok(());
        }
        let target = self.target(host, scope)?;
        match &target {
            Target::Bypass => return Ok(()),
            Target::Global if version != self.settings.key_version => {
                return Err(Error::InvalidArgument(format!(
                    "version {version} is not the global key version {}",
                    self.settings.key_version
                )));
            }
            Target::Global => {}
            Target::User(keys) => {
                let keys_state = [keys.version_key.clone(), self.layout.floor_key()];
                let Some(state) = degrade(
                    host.get_many(&keys_state, versions::read_budget(2))
                        .map(Some),
                    || None,
                )?
                else {
                    return Ok(());
                };
                let (raw_version, raw_floor) = match state.as_slice() {
                    [v, f] => (v.as_deref(), f.as_deref()),
                    _ => {
                        return Err(Error::Internal(format!(
                            "get-many returned {} values for 2 keys",
                            state.len()
                        )));
                    }
                };
                if versions::parse(raw_version).is_some_and(|current| version > current) {
                    return Err(Error::InvalidArgument(format!(
                        "version {version} is newer than the namespace's"
                    )));
                }
                if versions::live(raw_version, raw_floor) != Some(version) {
                    return Ok(()); // invalidated since the read: the value is dead
                }
            }
        }
        let storage_key = match &target {
            Target::User(keys) => keys.entry_key(version, Kind::Data, key),
            _ => self.layout.global_key(key),
        };
        let written = match (ttl.lifetime(self.settings.default_ttl_ms), &target) {
            (Lifetime::Remove, _) => host.delete(&storage_key).map(drop),
            (Lifetime::Keep(ttl_ms), Target::User(keys)) => {
                let entry = [(storage_key, value.to_vec())];
                match self.put_namespaced(host, keys, version, &entry, ttl_ms, false) {
                    Ok(PutOutcome::OverLimit) => return Err(self.quota_exceeded()),
                    other => other.map(drop),
                }
            }
            (Lifetime::Keep(ttl_ms), _) => host.set(&storage_key, value, ttl_ms),
        };
        degrade(written, || ())
    }

    /// Take the global lock `key` for `owner` for `timeout_ms`. True if taken.
    pub fn lock<H: Host>(
        &self,
        host: &H,
        key: &str,
        owner: &str,
        timeout_ms: u64,
    ) -> Result<bool, Error> {
        self.settings.check_key(key)?;
        check_owner(owner)?;
        if timeout_ms == 0 {
            return Err(Error::InvalidArgument(
                "lock timeout must be at least 1 ms".into(),
            ));
        }
        Ok(host.set_if_absent(
            &self.layout.global_key(key),
            owner.as_bytes(),
            Some(timeout_ms),
        )?)
    }

    /// Release the global lock `key` if `owner` holds it. True if released.
    pub fn unlock<H: Host>(&self, host: &H, key: &str, owner: &str) -> Result<bool, Error> {
        self.settings.check_key(key)?;
        check_owner(owner)?;
        Ok(host.delete_if(&self.layout.global_key(key), owner.as_bytes())?)
    }

    /// Invalidate `user`'s namespace in O(1). Returns the new version.
    pub fn invalidate_user<H: Host>(&self, host: &H, user: &str) -> Result<u64, Error> {
        let keys = self.user_keys(user)?;
        Ok(self.versions(host).bump_user(&keys)?)
    }

    /// Invalidate every cached query over `table` in O(1). Returns its new version.
    pub fn invalidate_table<H: Host>(&self, host: &H, table: &str) -> Result<u64, Error> {
        check_name("table name", table)?;
        Ok(self
            .versions(host)
            .bump_table(&self.layout.table_version_key(table))?)
    }

    /// Invalidate every user namespace in O(1). Returns the new floor.
    pub fn invalidate_all<H: Host>(&self, host: &H) -> Result<u64, Error> {
        let floor = host.get(&self.layout.floor_key())?;
        Ok(self.versions(host).raise_floor(floor)?)
    }

    /// The live version of `user`'s namespace, `None` if it holds nothing.
    pub fn version_of<H: Host>(&self, host: &H, user: &str) -> Result<Option<u64>, Error> {
        let keys = self.user_keys(user)?;
        Ok(self.versions(host).current(&keys)?)
    }

    /// [`Cache::version_of`] for many users, in one round trip.
    pub fn versions_of<H: Host>(
        &self,
        host: &H,
        users: &[&str],
    ) -> Result<Vec<Option<u64>>, Error> {
        let mut keys = users
            .iter()
            .map(|u| Ok(self.user_keys(u)?.version_key))
            .collect::<Result<Vec<String>, Error>>()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        keys.push(self.layout.floor_key());
        let mut values = host.get_many(&keys, versions::read_budget(keys.len()))?;
        if values.len() != keys.len() {
            return Err(Error::Internal(format!(
                "get-many returned {} values for {} keys",
                values.len(),
                keys.len()
            )));
        }
        let floor = values.pop().flatten();
        Ok(values
            .iter()
            .map(|v| versions::live(v.as_deref(), floor.as_deref()))
            .collect())
    }
}

fn check_owner(owner: &str) -> Result<(), Error> {
    if owner.is_empty() || owner.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidArgument(format!(
            "lock owner must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}
