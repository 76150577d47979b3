//! The WebAssembly component: wit-bindgen glue between the WIT world
//! `cache-component` and [`Cache`]. No logic lives here, only conversions.

use std::cell::RefCell;

use crate::{
    Cache, Counter, Error, Expiry, Host, Indirect, PutOutcome, QueryToken, Scope, Settings,
    StoreError, TimeToLive, VersionedRead,
};

wit_bindgen::generate!({
    world: "cache-component",
    path: "../wit",
});

use exports::nscache::cache::{
    cache as wit_cache, config as wit_config, invalidation as wit_invalidation, locks as wit_locks,
    queries as wit_queries,
};
use nscache::cache::{atomics, batch, profiles, store, types};

thread_local! {
    /// The instance's cache logic, replaced by `config.configure`.
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn with_cache<T>(f: impl FnOnce(&Cache) -> T) -> T {
    CACHE.with(|c| f(&c.borrow()))
}

/// The component's imports, as a [`Host`].
struct Imports;

fn store_err(e: types::StoreError) -> StoreError {
    match e {
        types::StoreError::Unavailable(m) => StoreError::Unavailable(m),
        types::StoreError::NotAnInteger => StoreError::NotAnInteger,
        types::StoreError::Other(m) => StoreError::Other(m),
        types::StoreError::TooLarge(m) => StoreError::TooLarge(m),
    }
}

impl Host for Imports {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        store::get(key).map_err(store_err)
    }
    fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        store::set(key, value, ttl_ms).map_err(store_err)
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        store::delete(key).map_err(store_err)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        store::exists(key).map_err(store_err)
    }
    fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        store::expire(key, ttl_ms).map_err(store_err)
    }
    fn ttl(&self, key: &str) -> Result<TimeToLive, StoreError> {
        Ok(match store::ttl(key).map_err(store_err)? {
            types::TimeToLive::Missing => TimeToLive::Missing,
            types::TimeToLive::Forever => TimeToLive::Forever,
            types::TimeToLive::RemainingMs(ms) => TimeToLive::RemainingMs(ms),
        })
    }
    fn now_micros(&self) -> Result<u64, StoreError> {
        store::now_micros().map_err(store_err)
    }
    fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        batch::get_many(keys, max_bytes).map_err(store_err)
    }
    fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        batch::set_many(entries, ttl_ms).map_err(store_err)
    }
    fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        batch::delete_many(keys).map_err(store_err)
    }
    fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<Indirect, StoreError> {
        let found =
            batch::get_indirect(pointer, prefix, suffixes, also, max_bytes).map_err(store_err)?;
        Ok(Indirect {
            pointer: found.pointer,
            values: found.values,
            also: found.also,
        })
    }
    fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        atomics::increment(key, delta).map_err(store_err)
    }
    fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        atomics::set_if_absent(key, value, ttl_ms).map_err(store_err)
    }
    fn swap_if(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, StoreError> {
        atomics::swap_if(key, expected, new).map_err(store_err)
    }
    fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        atomics::delete_if(key, expected).map_err(store_err)
    }
    fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        let counter = atomics::Counter {
            key: counter.key.clone(),
            limit: counter.limit,
            ttl_ms: counter.ttl_ms,
        };
        Ok(
            match atomics::put_counted(entries, ttl_ms, &counter, if_absent).map_err(store_err)? {
                atomics::PutOutcome::Stored => PutOutcome::Stored,
                atomics::PutOutcome::Exists => PutOutcome::Exists,
                atomics::PutOutcome::OverLimit => PutOutcome::OverLimit,
            },
        )
    }
    fn cache_enabled(&self, user: &str) -> Result<bool, String> {
        profiles::cache_enabled(user)
    }
}

fn wit_err(e: Error) -> types::Error {
    match e {
        Error::Unavailable(m) => types::Error::Unavailable(m),
        Error::KeyTooLong(m) => types::Error::KeyTooLong(m),
        Error::ValueTooLarge(m) => types::Error::ValueTooLarge(m),
        Error::InvalidName(m) => types::Error::InvalidName(m),
        Error::InvalidArgument(m) => types::Error::InvalidArgument(m),
        Error::NotFound => types::Error::NotFound,
        Error::NotAnInteger => types::Error::NotAnInteger,
        Error::Internal(m) => types::Error::Internal(m),
        Error::ReplyTooLarge(m) => types::Error::ReplyTooLarge(m),
        Error::QuotaExceeded(m) => types::Error::QuotaExceeded(m),
    }
}

fn scope(s: types::Scope) -> Scope {
    match s {
        types::Scope::Global => Scope::Global,
        types::Scope::User(u) => Scope::User(u),
    }
}

fn expiry(e: types::Expiry) -> Expiry {
    match e {
        types::Expiry::Default => Expiry::Default,
        types::Expiry::Never => Expiry::Never,
        types::Expiry::AfterMs(ms) => Expiry::AfterMs(ms),
    }
}

fn strs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// The exported component.
struct Component;

export!(Component);

impl wit_cache::Guest for Component {
    fn get(s: types::Scope, key: String) -> Result<Option<Vec<u8>>, types::Error> {
        with_cache(|c| c.get(&Imports, &scope(s), &key)).map_err(wit_err)
    }
    fn get_many(s: types::Scope, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, types::Error> {
        with_cache(|c| c.get_many(&Imports, &scope(s), &strs(&keys))).map_err(wit_err)
    }
    fn set(
        s: types::Scope,
        key: String,
        value: Vec<u8>,
        ttl: types::Expiry,
    ) -> Result<(), types::Error> {
        with_cache(|c| c.set(&Imports, &scope(s), &key, &value, expiry(ttl))).map_err(wit_err)
    }
    fn set_many(
        s: types::Scope,
        entries: Vec<(String, Vec<u8>)>,
        ttl: types::Expiry,
    ) -> Result<(), types::Error> {
        let entries: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        with_cache(|c| c.set_many(&Imports, &scope(s), &entries, expiry(ttl))).map_err(wit_err)
    }
    fn add(
        s: types::Scope,
        key: String,
        value: Vec<u8>,
        ttl: types::Expiry,
    ) -> Result<bool, types::Error> {
        with_cache(|c| c.add(&Imports, &scope(s), &key, &value, expiry(ttl))).map_err(wit_err)
    }
    fn delete(s: types::Scope, key: String) -> Result<bool, types::Error> {
        with_cache(|c| c.delete(&Imports, &scope(s), &key)).map_err(wit_err)
    }
    fn delete_many(s: types::Scope, keys: Vec<String>) -> Result<u32, types::Error> {
        with_cache(|c| c.delete_many(&Imports, &scope(s), &strs(&keys))).map_err(wit_err)
    }
    fn has_key(s: types::Scope, key: String) -> Result<bool, types::Error> {
        with_cache(|c| c.has_key(&Imports, &scope(s), &key)).map_err(wit_err)
    }
    fn incr(s: types::Scope, key: String, delta: i64) -> Result<i64, types::Error> {
        with_cache(|c| c.incr(&Imports, &scope(s), &key, delta)).map_err(wit_err)
    }
    fn decr(s: types::Scope, key: String, delta: i64) -> Result<i64, types::Error> {
        with_cache(|c| c.decr(&Imports, &scope(s), &key, delta)).map_err(wit_err)
    }
    fn touch(s: types::Scope, key: String, ttl: types::Expiry) -> Result<bool, types::Error> {
        with_cache(|c| c.touch(&Imports, &scope(s), &key, expiry(ttl))).map_err(wit_err)
    }
    fn ttl(s: types::Scope, key: String) -> Result<types::TimeToLive, types::Error> {
        let ttl = with_cache(|c| c.ttl(&Imports, &scope(s), &key)).map_err(wit_err)?;
        Ok(match ttl {
            TimeToLive::Missing => types::TimeToLive::Missing,
            TimeToLive::Forever => types::TimeToLive::Forever,
            TimeToLive::RemainingMs(ms) => types::TimeToLive::RemainingMs(ms),
        })
    }
    fn persist(s: types::Scope, key: String) -> Result<bool, types::Error> {
        with_cache(|c| c.persist(&Imports, &scope(s), &key)).map_err(wit_err)
    }
    fn read_for_update(
        s: types::Scope,
        key: String,
    ) -> Result<wit_cache::VersionedRead, types::Error> {
        let VersionedRead { value, version } =
            with_cache(|c| c.read_for_update(&Imports, &scope(s), &key)).map_err(wit_err)?;
        Ok(wit_cache::VersionedRead { value, version })
    }
    fn set_at(
        s: types::Scope,
        key: String,
        version: u64,
        value: Vec<u8>,
        ttl: types::Expiry,
    ) -> Result<(), types::Error> {
        with_cache(|c| c.set_at(&Imports, &scope(s), &key, version, &value, expiry(ttl)))
            .map_err(wit_err)
    }
}

impl wit_locks::Guest for Component {
    fn lock(key: String, owner: String, timeout_ms: u64) -> Result<bool, types::Error> {
        with_cache(|c| c.lock(&Imports, &key, &owner, timeout_ms)).map_err(wit_err)
    }
    fn unlock(key: String, owner: String) -> Result<bool, types::Error> {
        with_cache(|c| c.unlock(&Imports, &key, &owner)).map_err(wit_err)
    }
}

impl wit_invalidation::Guest for Component {
    fn invalidate_user(user: String) -> Result<u64, types::Error> {
        with_cache(|c| c.invalidate_user(&Imports, &user)).map_err(wit_err)
    }
    fn invalidate_table(table: String) -> Result<u64, types::Error> {
        with_cache(|c| c.invalidate_table(&Imports, &table)).map_err(wit_err)
    }
    fn invalidate_all() -> Result<u64, types::Error> {
        with_cache(|c| c.invalidate_all(&Imports)).map_err(wit_err)
    }
    fn version_of(user: String) -> Result<Option<u64>, types::Error> {
        with_cache(|c| c.version_of(&Imports, &user)).map_err(wit_err)
    }
    fn versions_of(users: Vec<String>) -> Result<Vec<Option<u64>>, types::Error> {
        with_cache(|c| c.versions_of(&Imports, &strs(&users))).map_err(wit_err)
    }
}

impl wit_queries::Guest for Component {
    fn query_key(query: String, params: Vec<u8>) -> String {
        crate::query_key(&query, &params)
    }
    fn query_lookup(
        user: String,
        query: String,
        params: Vec<u8>,
        tables: Vec<String>,
    ) -> Result<wit_queries::QueryResult, types::Error> {
        let found =
            with_cache(|c| c.query_lookup(&Imports, &user, &query, &params, &strs(&tables)))
                .map_err(wit_err)?;
        Ok(wit_queries::QueryResult {
            value: found.value,
            token: wit_queries::QueryToken {
                namespace_version: found.token.namespace_version,
                table_versions: found.token.table_versions,
            },
        })
    }
    fn query_store(
        user: String,
        query: String,
        params: Vec<u8>,
        tables: Vec<String>,
        token: wit_queries::QueryToken,
        value: Vec<u8>,
        ttl: types::Expiry,
    ) -> Result<(), types::Error> {
        let token = QueryToken {
            namespace_version: token.namespace_version,
            table_versions: token.table_versions,
        };
        with_cache(|c| {
            c.query_store(
                &Imports,
                &user,
                &query,
                &params,
                &strs(&tables),
                &token,
                &value,
                expiry(ttl),
            )
        })
        .map_err(wit_err)
    }
}

fn to_wit_settings(s: &Settings) -> wit_config::Settings {
    wit_config::Settings {
        key_prefix: s.key_prefix.clone(),
        key_version: s.key_version,
        namespace_root: s.namespace_root.clone(),
        default_ttl_ms: s.default_ttl_ms,
        max_key_bytes: s.max_key_bytes,
        max_value_bytes: s.max_value_bytes,
        cluster_hash_tags: s.cluster_hash_tags,
        max_reply_bytes: s.max_reply_bytes,
        namespace_quota_bytes: s.namespace_quota_bytes,
        max_namespace_ttl_ms: s.max_namespace_ttl_ms,
    }
}

impl wit_config::Guest for Component {
    fn defaults() -> wit_config::Settings {
        to_wit_settings(&Settings::default())
    }
    fn configure(s: wit_config::Settings) -> Result<(), types::Error> {
        let cache = Cache::new(Settings {
            key_prefix: s.key_prefix,
            key_version: s.key_version,
            namespace_root: s.namespace_root,
            default_ttl_ms: s.default_ttl_ms,
            max_key_bytes: s.max_key_bytes,
            max_value_bytes: s.max_value_bytes,
            cluster_hash_tags: s.cluster_hash_tags,
            max_reply_bytes: s.max_reply_bytes,
            namespace_quota_bytes: s.namespace_quota_bytes,
            max_namespace_ttl_ms: s.max_namespace_ttl_ms,
        })
        .map_err(wit_err)?;
        CACHE.with(|c| *c.borrow_mut() = cache);
        Ok(())
    }
}
