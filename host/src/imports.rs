//! The host side of the component's imports: every primitive forwards to the
//! [`Store`], every `cache-enabled` to the [`ProfileSource`]. Nothing is
//! decided here; failures become `store-error` values for the component,
//! which applies its failure policy. Failures are counted and logged.

use std::sync::Arc;

use crate::bindings::nscache::cache::batch::Indirect;
use crate::bindings::nscache::cache::types::{StoreError as WitStoreError, TimeToLive as WitTtl};
use crate::bindings::nscache::cache::{atomics, batch, profiles, store, types};
use crate::profiles::ProfileSource;
use crate::stats::StoreStats;
use crate::store::{Counter, PutOutcome, Store, StoreError};
use crate::types::Ttl;

/// The data of every wasmtime `Store` running the component.
#[derive(Debug, Clone)]
pub(crate) struct HostState {
    pub store: Arc<dyn Store>,
    pub profiles: Arc<dyn ProfileSource>,
    pub stats: Arc<StoreStats>,
    /// What one instance may allocate (its linear memory, its tables).
    pub limits: wasmtime::StoreLimits,
}

impl HostState {
    fn track<T>(
        &self,
        op: &'static str,
        result: Result<T, StoreError>,
    ) -> Result<T, WitStoreError> {
        self.stats.record_call(op);
        result.map_err(|e| {
            if let StoreError::TooLarge(m) = e {
                // A refusal the component turns into `reply-too-large`, not a
                // failure of the store.
                return WitStoreError::TooLarge(m);
            }
            let unavailable = matches!(e, StoreError::Unavailable(_));
            if self.stats.record_error(unavailable) {
                tracing::warn!(
                    backend = self.store.kind(),
                    op,
                    error = %e,
                    "cache store call failed"
                );
            }
            match e {
                StoreError::Unavailable(m) => WitStoreError::Unavailable(m),
                StoreError::NotAnInteger => WitStoreError::NotAnInteger,
                StoreError::Other(m) => WitStoreError::Other(m),
                StoreError::TooLarge(m) => WitStoreError::TooLarge(m),
            }
        })
    }
}

impl types::Host for HostState {}

/// A store's answer to `ttl` as the component takes it: the one place the
/// remaining duration becomes milliseconds (rounded down, as the stores
/// answer it: a whole number of milliseconds already).
fn wit_ttl(ttl: Ttl) -> WitTtl {
    match ttl {
        Ttl::Missing => WitTtl::Missing,
        Ttl::Forever => WitTtl::Forever,
        Ttl::Remaining(left) => {
            WitTtl::RemainingMs(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
        }
    }
}

impl store::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, WitStoreError> {
        self.track("get", self.store.get(&key).await)
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), WitStoreError> {
        self.track("set", self.store.set(&key, &value, ttl_ms).await)
    }

    async fn delete(&mut self, key: String) -> Result<bool, WitStoreError> {
        self.track("delete", self.store.delete(&key).await)
    }

    async fn exists(&mut self, key: String) -> Result<bool, WitStoreError> {
        self.track("exists", self.store.exists(&key).await)
    }

    async fn expire(&mut self, key: String, ttl_ms: Option<u64>) -> Result<bool, WitStoreError> {
        self.track("expire", self.store.expire(&key, ttl_ms).await)
    }

    async fn ttl(&mut self, key: String) -> Result<WitTtl, WitStoreError> {
        let ttl = self.track("ttl", self.store.ttl(&key).await)?;
        Ok(wit_ttl(ttl))
    }

    async fn now_micros(&mut self) -> Result<u64, WitStoreError> {
        self.track("now-micros", self.store.now_micros().await)
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        keys: Vec<String>,
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, WitStoreError> {
        self.track("get-many", self.store.get_many(&keys, max_bytes).await)
    }

    async fn set_many(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<(), WitStoreError> {
        self.track("set-many", self.store.set_many(&entries, ttl_ms).await)
    }

    async fn delete_many(&mut self, keys: Vec<String>) -> Result<u32, WitStoreError> {
        self.track("delete-many", self.store.delete_many(&keys).await)
    }

    async fn get_indirect(
        &mut self,
        pointer: String,
        prefix: String,
        suffixes: Vec<String>,
        also: Vec<String>,
        max_bytes: u64,
    ) -> Result<Indirect, WitStoreError> {
        let found = self.track(
            "get-indirect",
            self.store
                .get_indirect(&pointer, &prefix, &suffixes, &also, max_bytes)
                .await,
        )?;
        Ok(Indirect {
            pointer: found.pointer,
            values: found.values,
            also: found.also,
        })
    }
}

impl atomics::Host for HostState {
    async fn increment(&mut self, key: String, delta: i64) -> Result<Option<i64>, WitStoreError> {
        self.track("increment", self.store.increment(&key, delta).await)
    }

    async fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, WitStoreError> {
        self.track(
            "set-if-absent",
            self.store.set_if_absent(&key, &value, ttl_ms).await,
        )
    }

    async fn swap_if(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, WitStoreError> {
        self.track(
            "swap-if",
            self.store.swap_if(&key, expected.as_deref(), &new).await,
        )
    }

    async fn delete_if(&mut self, key: String, expected: Vec<u8>) -> Result<bool, WitStoreError> {
        self.track("delete-if", self.store.delete_if(&key, &expected).await)
    }

    async fn put_counted(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
        counter: atomics::Counter,
        if_absent: bool,
    ) -> Result<atomics::PutOutcome, WitStoreError> {
        let counter = Counter {
            key: counter.key,
            limit: counter.limit,
            ttl_ms: counter.ttl_ms,
        };
        let outcome = self.track(
            "put-counted",
            self.store
                .put_counted(&entries, ttl_ms, &counter, if_absent)
                .await,
        )?;
        Ok(match outcome {
            PutOutcome::Stored => atomics::PutOutcome::Stored,
            PutOutcome::Exists => atomics::PutOutcome::Exists,
            PutOutcome::OverLimit => atomics::PutOutcome::OverLimit,
        })
    }
}

impl profiles::Host for HostState {
    async fn cache_enabled(&mut self, user: String) -> Result<bool, String> {
        self.profiles
            .cache_enabled(&user)
            .await
            .map_err(|e| e.to_string())
    }
}
