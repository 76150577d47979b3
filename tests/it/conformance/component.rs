//! The kit on the component, run by wasmtime as any Rust host would run it:
//! the embedded `nscache::COMPONENT_WASM`, its imports bound (through the
//! WIT bindings) to the host library's stores, `MemoryStore` and
//! `RedisStore`, and its exports called by name with values built from the
//! kit's JSON through the component's own types.

use std::sync::{Arc, OnceLock};

use nscache::Ttl;
use nscache::store::{
    Counter, MemoryStore, PutOutcome, RedisOptions, RedisStore, Store, StoreError,
};
use nscache_tests::{redis_url, unique};
use serde_json::{Value, json};
use wasmtime::component::types::Type;
use wasmtime::component::{Component, HasSelf, Instance, Linker, Val};
use wasmtime::{Config, Engine};

use super::{Bench, Driver, Kit, Stored, bytes, text};

mod wit {
    wasmtime::component::bindgen!({
        world: "cache-component",
        path: "../wit",
        imports: { default: async },
        exports: { default: async },
    });
}

use wit::nscache::cache::types::{StoreError as WitStoreError, TimeToLive as WitTtl};
use wit::nscache::cache::{atomics, batch, profiles, store, types};

/// The engine and the compiled component, once per test process.
fn compiled() -> &'static (Engine, Component, Linker<KitState>) {
    static COMPILED: OnceLock<(Engine, Component, Linker<KitState>)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let engine = Engine::new(&Config::new()).expect("engine");
        let component = Component::new(&engine, nscache::COMPONENT_WASM).expect("component");
        let mut linker = Linker::new(&engine);
        // Exactly the world's imports: no WASI, nothing stubbed.
        wit::CacheComponent::add_to_linker::<KitState, HasSelf<KitState>>(&mut linker, |s| s)
            .expect("imports");
        (engine, component, linker)
    })
}

/// The host side of the imports, for one scenario.
pub struct KitState {
    store: Arc<dyn Store>,
    /// Put before every storage key, so that runs share a Redis safely.
    prefix: String,
    clock_micros: u64,
    bench: Bench,
}

impl KitState {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn keys(&self, keys: &[String]) -> Vec<String> {
        keys.iter().map(|k| self.key(k)).collect()
    }

    fn enter<'a>(
        &mut self,
        import: &str,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), WitStoreError> {
        self.bench.touch(keys);
        match self.bench.faults.on_call(import).as_deref() {
            None => Ok(()),
            Some("unavailable") => Err(WitStoreError::Unavailable(
                "injected by the conformance kit".into(),
            )),
            Some("not-an-integer") => Err(WitStoreError::NotAnInteger),
            Some("too-large") => Err(WitStoreError::TooLarge(
                "injected by the conformance kit".into(),
            )),
            Some(_) => Err(WitStoreError::Other(
                "injected by the conformance kit".into(),
            )),
        }
    }
}

fn wit_err(e: StoreError) -> WitStoreError {
    match e {
        StoreError::Unavailable(m) => WitStoreError::Unavailable(m),
        StoreError::NotAnInteger => WitStoreError::NotAnInteger,
        StoreError::Other(m) => WitStoreError::Other(m),
        StoreError::TooLarge(m) => WitStoreError::TooLarge(m),
    }
}

impl types::Host for KitState {}

impl store::Host for KitState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, WitStoreError> {
        self.enter("store.get", [key.as_str()])?;
        self.store.get(&self.key(&key)).await.map_err(wit_err)
    }
    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), WitStoreError> {
        self.enter("store.set", [key.as_str()])?;
        self.store
            .set(&self.key(&key), &value, ttl_ms)
            .await
            .map_err(wit_err)
    }
    async fn delete(&mut self, key: String) -> Result<bool, WitStoreError> {
        self.enter("store.delete", [key.as_str()])?;
        self.store.delete(&self.key(&key)).await.map_err(wit_err)
    }
    async fn exists(&mut self, key: String) -> Result<bool, WitStoreError> {
        self.enter("store.exists", [key.as_str()])?;
        self.store.exists(&self.key(&key)).await.map_err(wit_err)
    }
    async fn expire(&mut self, key: String, ttl_ms: Option<u64>) -> Result<bool, WitStoreError> {
        self.enter("store.expire", [key.as_str()])?;
        self.store
            .expire(&self.key(&key), ttl_ms)
            .await
            .map_err(wit_err)
    }
    async fn ttl(&mut self, key: String) -> Result<WitTtl, WitStoreError> {
        self.enter("store.ttl", [key.as_str()])?;
        Ok(
            match self.store.ttl(&self.key(&key)).await.map_err(wit_err)? {
                Ttl::Missing => WitTtl::Missing,
                Ttl::Forever => WitTtl::Forever,
                Ttl::Remaining(left) => WitTtl::RemainingMs(left.as_millis() as u64),
            },
        )
    }
    async fn now_micros(&mut self) -> Result<u64, WitStoreError> {
        self.enter("store.now-micros", [])?;
        Ok(self.clock_micros)
    }
}

impl batch::Host for KitState {
    async fn get_many(
        &mut self,
        keys: Vec<String>,
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, WitStoreError> {
        self.enter("batch.get-many", keys.iter().map(String::as_str))?;
        self.store
            .get_many(&self.keys(&keys), max_bytes)
            .await
            .map_err(wit_err)
    }
    async fn set_many(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<(), WitStoreError> {
        self.enter("batch.set-many", entries.iter().map(|(k, _)| k.as_str()))?;
        let entries: Vec<(String, Vec<u8>)> = entries
            .into_iter()
            .map(|(k, v)| (self.key(&k), v))
            .collect();
        self.store.set_many(&entries, ttl_ms).await.map_err(wit_err)
    }
    async fn delete_many(&mut self, keys: Vec<String>) -> Result<u32, WitStoreError> {
        self.enter("batch.delete-many", keys.iter().map(String::as_str))?;
        self.store
            .delete_many(&self.keys(&keys))
            .await
            .map_err(wit_err)
    }
    async fn get_indirect(
        &mut self,
        pointer: String,
        prefix: String,
        suffixes: Vec<String>,
        also: Vec<String>,
        max_bytes: u64,
    ) -> Result<batch::Indirect, WitStoreError> {
        self.enter(
            "batch.get-indirect",
            std::iter::once(pointer.as_str()).chain(also.iter().map(String::as_str)),
        )?;
        let found = self
            .store
            .get_indirect(
                &self.key(&pointer),
                &self.key(&prefix),
                &suffixes,
                &self.keys(&also),
                max_bytes,
            )
            .await
            .map_err(wit_err)?;
        Ok(batch::Indirect {
            pointer: found.pointer,
            values: found.values,
            also: found.also,
        })
    }
}

impl atomics::Host for KitState {
    async fn increment(&mut self, key: String, delta: i64) -> Result<Option<i64>, WitStoreError> {
        self.enter("atomics.increment", [key.as_str()])?;
        self.store
            .increment(&self.key(&key), delta)
            .await
            .map_err(wit_err)
    }
    async fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, WitStoreError> {
        self.enter("atomics.set-if-absent", [key.as_str()])?;
        self.store
            .set_if_absent(&self.key(&key), &value, ttl_ms)
            .await
            .map_err(wit_err)
    }
    async fn swap_if(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, WitStoreError> {
        self.enter("atomics.swap-if", [key.as_str()])?;
        self.store
            .swap_if(&self.key(&key), expected.as_deref(), &new)
            .await
            .map_err(wit_err)
    }
    async fn delete_if(&mut self, key: String, expected: Vec<u8>) -> Result<bool, WitStoreError> {
        self.enter("atomics.delete-if", [key.as_str()])?;
        self.store
            .delete_if(&self.key(&key), &expected)
            .await
            .map_err(wit_err)
    }
    async fn put_counted(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
        counter: atomics::Counter,
        if_absent: bool,
    ) -> Result<atomics::PutOutcome, WitStoreError> {
        self.enter(
            "atomics.put-counted",
            entries
                .iter()
                .map(|(k, _)| k.as_str())
                .chain([counter.key.as_str()]),
        )?;
        let entries: Vec<(String, Vec<u8>)> = entries
            .into_iter()
            .map(|(k, v)| (self.key(&k), v))
            .collect();
        let counter = Counter {
            key: self.key(&counter.key),
            limit: counter.limit,
            ttl_ms: counter.ttl_ms,
        };
        Ok(
            match self
                .store
                .put_counted(&entries, ttl_ms, &counter, if_absent)
                .await
                .map_err(wit_err)?
            {
                PutOutcome::Stored => atomics::PutOutcome::Stored,
                PutOutcome::Exists => atomics::PutOutcome::Exists,
                PutOutcome::OverLimit => atomics::PutOutcome::OverLimit,
            },
        )
    }
}

impl profiles::Host for KitState {
    async fn cache_enabled(&mut self, user: String) -> Result<bool, String> {
        if self
            .bench
            .faults
            .on_call("profiles.cache-enabled")
            .is_some()
        {
            return Err("injected by the conformance kit".into());
        }
        Ok(!self.bench.disabled.contains(&user))
    }
}

/// One component instance under the kit.
pub struct ComponentDriver {
    store: wasmtime::Store<KitState>,
    instance: Instance,
    /// Remove the scenario's keys afterwards (a shared Redis).
    cleanup: bool,
}

impl ComponentDriver {
    pub async fn new(kit: &Kit, backend: Arc<dyn Store>, shared: bool) -> ComponentDriver {
        let (engine, component, linker) = compiled();
        let state = KitState {
            store: backend,
            prefix: if shared {
                format!("{}:", unique("kit"))
            } else {
                String::new()
            },
            clock_micros: kit.clock_micros,
            bench: Bench::default(),
        };
        let mut store = wasmtime::Store::new(engine, state);
        let instance = linker
            .instantiate_async(&mut store, component)
            .await
            .expect("instantiate");
        ComponentDriver {
            store,
            instance,
            cleanup: shared,
        }
    }
}

/// A WIT value from the kit's JSON, guided by the component's type.
fn to_val(ty: &Type, v: &Value) -> Val {
    let int = || v.as_i64().unwrap_or_else(|| panic!("an integer, not {v}"));
    match ty {
        Type::Bool => Val::Bool(v.as_bool().expect("a bool")),
        Type::U8 => Val::U8(int() as u8),
        Type::U32 => Val::U32(int() as u32),
        Type::S64 => Val::S64(int()),
        Type::U64 => Val::U64(v.as_u64().expect("a u64")),
        Type::String => Val::String(v.as_str().expect("a string").to_owned()),
        Type::List(list) => match list.ty() {
            Type::U8 => Val::List(bytes(v).into_iter().map(Val::U8).collect()),
            item => Val::List(
                v.as_array()
                    .expect("a list")
                    .iter()
                    .map(|x| to_val(&item, x))
                    .collect(),
            ),
        },
        Type::Tuple(tuple) => Val::Tuple(
            tuple
                .types()
                .zip(v.as_array().expect("a tuple"))
                .map(|(t, x)| to_val(&t, x))
                .collect(),
        ),
        Type::Record(record) => Val::Record(
            record
                .fields()
                .map(|f| (f.name.to_owned(), to_val(&f.ty, &v[f.name])))
                .collect(),
        ),
        Type::Option(option) => Val::Option(if v.is_null() {
            None
        } else {
            Some(Box::new(to_val(&option.ty(), v)))
        }),
        Type::Variant(variant) => {
            let (case, payload) = match v {
                Value::String(case) => (case.as_str(), None),
                Value::Object(one) => {
                    let (case, payload) = one.iter().next().expect("a variant case");
                    (case.as_str(), Some(payload))
                }
                other => panic!("not a variant: {other}"),
            };
            let ty = variant
                .cases()
                .find(|c| c.name == case)
                .unwrap_or_else(|| panic!("no case {case}"))
                .ty;
            Val::Variant(
                case.to_owned(),
                ty.zip(payload).map(|(t, p)| Box::new(to_val(&t, p))),
            )
        }
        Type::Enum(_) => Val::Enum(v.as_str().expect("an enum case").to_owned()),
        other => panic!("the kit has no encoding for {other:?}"),
    }
}

/// The kit's JSON for a WIT value.
fn from_val(ty: &Type, v: &Val) -> Value {
    match (ty, v) {
        (Type::List(list), Val::List(items)) if matches!(list.ty(), Type::U8) => text(
            &items
                .iter()
                .map(|b| match b {
                    Val::U8(b) => *b,
                    _ => unreachable!(),
                })
                .collect::<Vec<u8>>(),
        ),
        (Type::List(list), Val::List(items)) => {
            Value::Array(items.iter().map(|x| from_val(&list.ty(), x)).collect())
        }
        (Type::Tuple(tuple), Val::Tuple(items)) => Value::Array(
            tuple
                .types()
                .zip(items)
                .map(|(t, x)| from_val(&t, x))
                .collect(),
        ),
        (Type::Record(record), Val::Record(fields)) => Value::Object(
            record
                .fields()
                .zip(fields)
                .map(|(f, (_, x))| (f.name.to_owned(), from_val(&f.ty, x)))
                .collect(),
        ),
        (Type::Option(option), Val::Option(x)) => x
            .as_ref()
            .map_or(Value::Null, |x| from_val(&option.ty(), x)),
        (Type::Result(result), Val::Result(Ok(x))) => {
            json!({ "ok": x.as_ref().zip(result.ok()).map_or(Value::Null, |(x, t)| from_val(&t, x)) })
        }
        // Errors are compared by case: their messages are for people.
        (Type::Result(_), Val::Result(Err(e))) => match e.as_deref() {
            Some(Val::Variant(case, _)) => json!({ "err": case }),
            other => json!({ "err": format!("{other:?}") }),
        },
        (Type::Variant(variant), Val::Variant(case, payload)) => {
            let ty = variant.cases().find(|c| c.name == case).and_then(|c| c.ty);
            match (ty, payload) {
                (Some(t), Some(p)) => json!({ case: from_val(&t, p) }),
                _ => Value::String(case.clone()),
            }
        }
        (_, Val::Enum(case)) => Value::String(case.clone()),
        (_, Val::Bool(b)) => Value::Bool(*b),
        (_, Val::U8(n)) => json!(n),
        (_, Val::U32(n)) => json!(n),
        (_, Val::S64(n)) => json!(n),
        (_, Val::U64(n)) => json!(n),
        (_, Val::String(s)) => Value::String(s.clone()),
        (ty, v) => panic!("the kit has no encoding for {v:?} as {ty:?}"),
    }
}

impl Driver for ComponentDriver {
    async fn call(&mut self, func: &str, args: &[Value]) -> Value {
        let (interface, name) = func.split_once('.').expect("interface.function");
        let store = &mut self.store;
        let instance_name = format!(
            "nscache:cache/{interface}@{}",
            nscache::wit_version::VERSION
        );
        let iface = self
            .instance
            .get_export_index(&mut *store, None, &instance_name)
            .unwrap_or_else(|| panic!("no export {instance_name}"));
        let index = self
            .instance
            .get_export_index(&mut *store, Some(&iface), name)
            .unwrap_or_else(|| panic!("no export {func}"));
        let f = self
            .instance
            .get_func(&mut *store, index)
            .expect("a function");
        let ty = f.ty(&*store);
        let params: Vec<Val> = ty
            .params()
            .zip(args)
            .map(|((_, t), a)| to_val(&t, a))
            .collect();
        assert_eq!(
            params.len(),
            ty.params().len(),
            "{func}: wrong number of arguments"
        );
        let result_types: Vec<Type> = ty.results().collect();
        let mut results = vec![Val::Bool(false); result_types.len()];
        f.call_async(&mut *store, &params, &mut results)
            .await
            .unwrap_or_else(|trap| panic!("{func} trapped: {trap:?}"));
        match result_types.first() {
            Some(t) => from_val(t, &results[0]),
            None => Value::Null,
        }
    }

    fn bench(&mut self) -> &mut Bench {
        &mut self.store.data_mut().bench
    }

    async fn put(&mut self, key: &str, value: &[u8]) {
        let state = self.store.data();
        state
            .store
            .set(&state.key(key), value, None)
            .await
            .expect("put");
    }

    async fn remove(&mut self, key: &str) {
        let state = self.store.data();
        state.store.delete(&state.key(key)).await.expect("remove");
    }

    async fn read(&mut self, key: &str) -> Option<Stored> {
        let state = self.store.data();
        let key = state.key(key);
        let value = state.store.get(&key).await.expect("read")?;
        let ttl_ms = match state.store.ttl(&key).await.expect("ttl") {
            Ttl::Remaining(left) => Some(left.as_millis() as u64),
            _ => None,
        };
        Some(Stored { value, ttl_ms })
    }

    async fn finish(&mut self) {
        if self.cleanup {
            let state = self.store.data();
            let keys: Vec<String> = state.bench.touched.iter().map(|k| state.key(k)).collect();
            if !keys.is_empty() {
                state.store.delete_many(&keys).await.expect("cleanup");
            }
        }
    }
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_component_on_the_memory_store_passes_the_conformance_kit() {
    report(
        super::run(async |kit, _| {
            ComponentDriver::new(kit, Arc::new(MemoryStore::default()), false).await
        })
        .await,
    );
}

#[tokio::test]
async fn the_component_on_redis_passes_the_conformance_kit() {
    let mut options = RedisOptions::new(redis_url());
    options.pool_size = 2;
    let redis: Arc<dyn Store> = Arc::new(RedisStore::new(&options).expect("redis store"));
    report(super::run(async |kit, _| ComponentDriver::new(kit, redis.clone(), true).await).await);
}
