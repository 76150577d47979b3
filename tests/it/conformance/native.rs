//! The kit on the native core: `nscache_core::Cache` over a [`Host`] that
//! wraps the core's own `MapHost` with the kit's clock, faults and flags.

use std::cell::RefCell;

use nscache_core::{
    Cache, Counter, Error, Expiry, Host, Indirect, MapHost, PutOutcome, QueryToken, Scope,
    Settings, StoreError, TimeToLive,
};
use serde_json::{Value, json};

use super::{Bench, Driver, Kit, Stored, bytes, text};

/// `MapHost` with the kit's clock, faults and flags.
struct KitHost {
    map: MapHost,
    clock_micros: u64,
    bench: RefCell<Bench>,
}

fn store_error(case: &str) -> StoreError {
    match case {
        "unavailable" => StoreError::Unavailable("injected by the conformance kit".into()),
        "not-an-integer" => StoreError::NotAnInteger,
        "too-large" => StoreError::TooLarge("injected by the conformance kit".into()),
        _ => StoreError::Other("injected by the conformance kit".into()),
    }
}

impl KitHost {
    /// Count and record an import call; its injected failure, if any.
    fn enter<'a>(
        &self,
        import: &str,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let mut bench = self.bench.borrow_mut();
        bench.touch(keys);
        match bench.faults.on_call(import) {
            Some(case) => Err(store_error(&case)),
            None => Ok(()),
        }
    }
}

impl Host for KitHost {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.enter("store.get", [key])?;
        self.map.get(key)
    }
    fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.enter("store.set", [key])?;
        self.map.set(key, value, ttl_ms)
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.enter("store.delete", [key])?;
        self.map.delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.enter("store.exists", [key])?;
        self.map.exists(key)
    }
    fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        self.enter("store.expire", [key])?;
        self.map.expire(key, ttl_ms)
    }
    fn ttl(&self, key: &str) -> Result<TimeToLive, StoreError> {
        self.enter("store.ttl", [key])?;
        self.map.ttl(key)
    }
    fn now_micros(&self) -> Result<u64, StoreError> {
        self.enter("store.now-micros", [])?;
        Ok(self.clock_micros)
    }
    fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.enter("batch.get-many", keys.iter().map(String::as_str))?;
        self.map.get_many(keys, max_bytes)
    }
    fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.enter("batch.set-many", entries.iter().map(|(k, _)| k.as_str()))?;
        self.map.set_many(entries, ttl_ms)
    }
    fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError> {
        self.enter("batch.delete-many", keys.iter().map(String::as_str))?;
        self.map.delete_many(keys)
    }
    fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<Indirect, StoreError> {
        self.enter(
            "batch.get-indirect",
            std::iter::once(pointer).chain(also.iter().map(String::as_str)),
        )?;
        self.map
            .get_indirect(pointer, prefix, suffixes, also, max_bytes)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        self.enter("atomics.increment", [key])?;
        self.map.increment(key, delta)
    }
    fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.enter("atomics.set-if-absent", [key])?;
        self.map.set_if_absent(key, value, ttl_ms)
    }
    fn swap_if(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, StoreError> {
        self.enter("atomics.swap-if", [key])?;
        self.map.swap_if(key, expected, new)
    }
    fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        self.enter("atomics.delete-if", [key])?;
        self.map.delete_if(key, expected)
    }
    fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError> {
        self.enter(
            "atomics.put-counted",
            entries
                .iter()
                .map(|(k, _)| k.as_str())
                .chain([counter.key.as_str()]),
        )?;
        self.map.put_counted(entries, ttl_ms, counter, if_absent)
    }
    fn cache_enabled(&self, user: &str) -> Result<bool, String> {
        let mut bench = self.bench.borrow_mut();
        if bench.faults.on_call("profiles.cache-enabled").is_some() {
            return Err("injected by the conformance kit".into());
        }
        Ok(!bench.disabled.contains(user))
    }
}

/// The native core under the kit.
pub struct Native {
    cache: Cache,
    host: KitHost,
}

impl Native {
    pub fn new(kit: &Kit) -> Native {
        Native {
            cache: Cache::default(),
            host: KitHost {
                map: MapHost::new(),
                clock_micros: kit.clock_micros,
                bench: RefCell::default(),
            },
        }
    }
}

fn error_case(e: &Error) -> &'static str {
    match e {
        Error::Unavailable(_) => "unavailable",
        Error::KeyTooLong(_) => "key-too-long",
        Error::ValueTooLarge(_) => "value-too-large",
        Error::InvalidName(_) => "invalid-name",
        Error::InvalidArgument(_) => "invalid-argument",
        Error::NotFound => "not-found",
        Error::NotAnInteger => "not-an-integer",
        Error::Internal(_) => "internal",
        Error::ReplyTooLarge(_) => "reply-too-large",
        Error::QuotaExceeded(_) => "quota-exceeded",
    }
}

fn result<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => json!({ "ok": ok(v) }),
        Err(e) => json!({ "err": error_case(&e) }),
    }
}

fn scope(v: &Value) -> Scope {
    match v {
        Value::String(g) if g == "global" => Scope::Global,
        v => Scope::User(
            v["user"]
                .as_str()
                .expect("scope: \"global\" or {\"user\": id}")
                .to_owned(),
        ),
    }
}

fn expiry(v: &Value) -> Expiry {
    match v.as_str() {
        Some("default") => Expiry::Default,
        Some("never") => Expiry::Never,
        _ => Expiry::AfterMs(v["after-ms"].as_u64().expect("expiry")),
    }
}

fn string(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().expect("a list").iter().map(string).collect()
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().expect("an unsigned integer")
}

fn optional(v: Option<Vec<u8>>) -> Value {
    v.as_deref().map_or(Value::Null, text)
}

fn options(v: Vec<Option<Vec<u8>>>) -> Value {
    Value::Array(v.into_iter().map(optional).collect())
}

fn ttl_value(t: TimeToLive) -> Value {
    match t {
        TimeToLive::Missing => json!("missing"),
        TimeToLive::Forever => json!("forever"),
        TimeToLive::RemainingMs(ms) => json!({ "remaining-ms": ms }),
    }
}

fn settings_value(s: &Settings) -> Value {
    json!({
        "key-prefix": s.key_prefix,
        "key-version": s.key_version,
        "namespace-root": s.namespace_root,
        "default-ttl-ms": s.default_ttl_ms,
        "max-key-bytes": s.max_key_bytes,
        "max-value-bytes": s.max_value_bytes,
        "cluster-hash-tags": s.cluster_hash_tags,
        "max-reply-bytes": s.max_reply_bytes,
        "namespace-quota-bytes": s.namespace_quota_bytes,
        "max-namespace-ttl-ms": s.max_namespace_ttl_ms,
    })
}

fn settings_of(v: &Value) -> Settings {
    Settings {
        key_prefix: string(&v["key-prefix"]).to_owned(),
        key_version: u64_of(&v["key-version"]),
        namespace_root: string(&v["namespace-root"]).to_owned(),
        default_ttl_ms: u64_of(&v["default-ttl-ms"]),
        max_key_bytes: u64_of(&v["max-key-bytes"]) as u32,
        max_value_bytes: u64_of(&v["max-value-bytes"]) as u32,
        cluster_hash_tags: v["cluster-hash-tags"].as_bool().expect("a bool"),
        max_reply_bytes: u64_of(&v["max-reply-bytes"]),
        namespace_quota_bytes: u64_of(&v["namespace-quota-bytes"]),
        max_namespace_ttl_ms: u64_of(&v["max-namespace-ttl-ms"]),
    }
}

fn token_value(t: &QueryToken) -> Value {
    json!({ "namespace-version": t.namespace_version, "table-versions": t.table_versions })
}

impl Driver for Native {
    async fn call(&mut self, func: &str, a: &[Value]) -> Value {
        let (c, h) = (&self.cache, &self.host);
        match func {
            "cache.get" => result(c.get(h, &scope(&a[0]), string(&a[1])), optional),
            "cache.get-many" => result(c.get_many(h, &scope(&a[0]), &strings(&a[1])), options),
            "cache.set" => result(
                c.set(
                    h,
                    &scope(&a[0]),
                    string(&a[1]),
                    &bytes(&a[2]),
                    expiry(&a[3]),
                ),
                |()| Value::Null,
            ),
            "cache.set-many" => {
                let entries: Vec<(String, Vec<u8>)> = a[1]
                    .as_array()
                    .expect("entries")
                    .iter()
                    .map(|e| (string(&e[0]).to_owned(), bytes(&e[1])))
                    .collect();
                let entries: Vec<(&str, &[u8])> = entries
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                result(
                    c.set_many(h, &scope(&a[0]), &entries, expiry(&a[2])),
                    |()| Value::Null,
                )
            }
            "cache.add" => result(
                c.add(
                    h,
                    &scope(&a[0]),
                    string(&a[1]),
                    &bytes(&a[2]),
                    expiry(&a[3]),
                ),
                Value::Bool,
            ),
            "cache.delete" => result(c.delete(h, &scope(&a[0]), string(&a[1])), Value::Bool),
            "cache.delete-many" => result(c.delete_many(h, &scope(&a[0]), &strings(&a[1])), |n| {
                json!(n)
            }),
            "cache.has-key" => result(c.has_key(h, &scope(&a[0]), string(&a[1])), Value::Bool),
            "cache.incr" => result(
                c.incr(
                    h,
                    &scope(&a[0]),
                    string(&a[1]),
                    a[2].as_i64().expect("delta"),
                ),
                |n| json!(n),
            ),
            "cache.decr" => result(
                c.decr(
                    h,
                    &scope(&a[0]),
                    string(&a[1]),
                    a[2].as_i64().expect("delta"),
                ),
                |n| json!(n),
            ),
            "cache.touch" => result(
                c.touch(h, &scope(&a[0]), string(&a[1]), expiry(&a[2])),
                Value::Bool,
            ),
            "cache.ttl" => result(c.ttl(h, &scope(&a[0]), string(&a[1])), ttl_value),
            "cache.persist" => result(c.persist(h, &scope(&a[0]), string(&a[1])), Value::Bool),
            "cache.read-for-update" => result(
                c.read_for_update(h, &scope(&a[0]), string(&a[1])),
                |r| json!({ "value": optional(r.value), "version": r.version }),
            ),
            "cache.set-at" => result(
                c.set_at(
                    h,
                    &scope(&a[0]),
                    string(&a[1]),
                    u64_of(&a[2]),
                    &bytes(&a[3]),
                    expiry(&a[4]),
                ),
                |()| Value::Null,
            ),
            "locks.lock" => result(
                c.lock(h, string(&a[0]), string(&a[1]), u64_of(&a[2])),
                Value::Bool,
            ),
            "locks.unlock" => result(c.unlock(h, string(&a[0]), string(&a[1])), Value::Bool),
            "invalidation.invalidate-user" => {
                result(c.invalidate_user(h, string(&a[0])), |v| json!(v))
            }
            "invalidation.invalidate-table" => {
                result(c.invalidate_table(h, string(&a[0])), |v| json!(v))
            }
            "invalidation.invalidate-all" => result(c.invalidate_all(h), |v| json!(v)),
            "invalidation.version-of" => result(c.version_of(h, string(&a[0])), |v| json!(v)),
            "invalidation.versions-of" => result(c.versions_of(h, &strings(&a[0])), |v| json!(v)),
            "queries.query-key" => {
                Value::String(nscache_core::query_key(string(&a[0]), &bytes(&a[1])))
            }
            "queries.query-lookup" => result(
                c.query_lookup(
                    h,
                    string(&a[0]),
                    string(&a[1]),
                    &bytes(&a[2]),
                    &strings(&a[3]),
                ),
                |r| json!({ "value": optional(r.value), "token": token_value(&r.token) }),
            ),
            "queries.query-store" => {
                let t = &a[4];
                let token = QueryToken {
                    namespace_version: u64_of(&t["namespace-version"]),
                    table_versions: t["table-versions"]
                        .as_array()
                        .expect("table-versions")
                        .iter()
                        .map(u64_of)
                        .collect(),
                };
                result(
                    c.query_store(
                        h,
                        string(&a[0]),
                        string(&a[1]),
                        &bytes(&a[2]),
                        &strings(&a[3]),
                        &token,
                        &bytes(&a[5]),
                        expiry(&a[6]),
                    ),
                    |()| Value::Null,
                )
            }
            "config.defaults" => settings_value(&Settings::default()),
            "config.configure" => match Cache::new(settings_of(&a[0])) {
                Ok(cache) => {
                    self.cache = cache;
                    json!({ "ok": null })
                }
                Err(e) => json!({ "err": error_case(&e) }),
            },
            other => panic!("the kit calls an unknown export {other}"),
        }
    }

    fn bench(&mut self) -> &mut Bench {
        self.host.bench.get_mut()
    }

    async fn put(&mut self, key: &str, value: &[u8]) {
        self.host.map.set(key, value, None).expect("MapHost set");
    }

    async fn remove(&mut self, key: &str) {
        self.host.map.delete(key).expect("MapHost delete");
    }

    async fn read(&mut self, key: &str) -> Option<Stored> {
        let value = self.host.map.get(key).expect("MapHost get")?;
        let ttl_ms = match self.host.map.ttl(key).expect("MapHost ttl") {
            TimeToLive::RemainingMs(ms) => Some(ms),
            _ => None,
        };
        Some(Stored { value, ttl_ms })
    }
}

#[tokio::test]
async fn the_native_core_passes_the_conformance_kit() {
    let failures = super::run(async |kit, _| Native::new(kit)).await;
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
