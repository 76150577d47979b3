//! Storage backends behind one trait: [`Store`] is what the component's
//! `store`, `batch` and `atomics` imports need, one method per primitive.
//! [`TtlReads`] adds what only a cache in front of a store needs: reads that
//! answer each key's remaining lifetime with its value.
//!
//! - [`RedisStore`]: Redis through redis-rs connection managers (cheap clones
//!   that reconnect by themselves); multi-key steps are server-side scripts or
//!   atomic pipelines. Implements [`TtlReads`].
//! - [`ClusterStore`]: Redis Cluster (`redis+cluster://…`), the same
//!   primitives per hash slot, version writes confirmed by a replica (`WAIT`).
//! - [`MemoryStore`]: the embedded default, bounded and TTL-aware, for running
//!   without services. Implements [`TtlReads`].
//! - [`L1Store`]: an in-process cache in front of another store (Redis),
//!   coherent across processes through Redis pub/sub. It requires
//!   [`TtlReads`] of the store it fronts, and does not offer them itself.
//!
//! The contract of each method is the WIT function of the same name
//! (`wit/store.wit`, `wit/batch.wit`, `wit/atomics.wit`). Lifetimes are
//! answered as [`Ttl`]: a remaining duration is a whole number of
//! milliseconds, rounded down (what Redis's `PTTL` answers), so that nothing
//! derived from it outlives the key. The integration tests hold every backend
//! to this contract (`tests/it/store_conformance/`): a new backend is its
//! own file here and one line in that suite.

mod cluster;
mod l1;
mod memory;
pub(crate) mod redis;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::types::Ttl;

pub use self::cluster::{
    CLUSTER_SCHEME, ClusterOptions, ClusterStore, cluster_primaries, is_cluster_url,
};
pub(crate) use self::l1::{AnswerName, recording};
pub use self::l1::{L1Options, L1Store};
pub use self::memory::MemoryStore;
pub(crate) use self::redis::database_number as redis_database_number;
pub use self::redis::{RedisOptions, RedisStore, RedisTls};

/// Why a storage primitive failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (refused, timed out, connection lost).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An increment found a non-integer value, or would overflow.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// Any other failure, with a message for the log.
    #[error("store error: {0}")]
    Other(String),
    /// A read found more bytes than its `max_bytes` allowed.
    #[error("read over budget: {0}")]
    TooLarge(String),
}

impl StoreError {
    /// The error of a read that found more than `max_bytes` bytes of values.
    pub fn over_budget(max_bytes: u64) -> StoreError {
        StoreError::TooLarge(format!("the values found are more than {max_bytes} bytes"))
    }
}

/// A byte counter that [`Store::put_counted`] adds to (`atomics.counter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The counter's key (an integer, created at 0).
    pub key: String,
    /// The most the counter may reach.
    pub limit: u64,
    /// The counter's expiry, set at every counted write.
    pub ttl_ms: u64,
}

/// What [`Store::put_counted`] did (`atomics.put-outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Every entry was stored and the counter raised by their sizes.
    Stored,
    /// `if_absent` was asked and the key exists: nothing written.
    Exists,
    /// The counter would pass its limit: nothing written.
    OverLimit,
}

/// The bytes of the values in `values`.
pub(crate) fn values_size(values: &[Option<Vec<u8>>]) -> u64 {
    values.iter().flatten().map(|v| v.len() as u64).sum()
}

/// What one [`Store::get_indirect`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndirectRead {
    /// The value of the pointer key.
    pub pointer: Option<Vec<u8>>,
    /// The value at `prefix ++ pointer ++ suffix` for each suffix.
    pub values: Vec<Option<Vec<u8>>>,
    /// The values of the `also` keys.
    pub also: Vec<Option<Vec<u8>>>,
}

/// How the store uses memory (for `/health` and the dashboard).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryInfo {
    /// Bytes in use.
    pub used_bytes: u64,
    /// The limit, if any (`maxmemory`).
    pub max_bytes: Option<u64>,
    /// What happens at the limit (`maxmemory-policy`).
    pub eviction_policy: String,
    /// Keys evicted since the store started.
    pub evicted_keys: u64,
    /// The server's version, if it has one.
    pub version: Option<String>,
}

/// The storage primitives the cache component imports. One implementation
/// per backend, each in its own file. Every method is one atomic step.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Which backend this is (`"redis"`, `"memory"`), for logs and `/health`.
    fn kind(&self) -> &'static str;
    /// Check the store answers; returns the round-trip time.
    async fn ping(&self) -> Result<Duration, StoreError>;
    /// Memory use and eviction policy.
    async fn memory_info(&self) -> Result<MemoryInfo, StoreError>;
    /// `store.get`
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// `store.set`
    async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError>;
    /// `store.delete`
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// `store.exists`
    async fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// `store.expire`
    async fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError>;
    /// `store.ttl` (a remaining duration in whole milliseconds, rounded down)
    async fn ttl(&self, key: &str) -> Result<Ttl, StoreError>;
    /// `store.now-micros`
    async fn now_micros(&self) -> Result<u64, StoreError>;
    /// `batch.get-many`: [`StoreError::TooLarge`] when the values found add
    /// up to more than `max_bytes`.
    async fn get_many(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// `batch.set-many`
    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError>;
    /// `batch.delete-many`
    async fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError>;
    /// `batch.get-indirect`: the entries and the `also` keys count against
    /// `max_bytes` as in [`Store::get_many`].
    async fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<IndirectRead, StoreError>;
    /// `atomics.increment`
    async fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError>;
    /// `atomics.set-if-absent`
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError>;
    /// `atomics.swap-if`
    async fn swap_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;
    /// `atomics.delete-if`
    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError>;
    /// `atomics.put-counted`: store the entries (with `if_absent`, only the
    /// first, and only if its key is missing) and add the sizes of their
    /// values to `counter`, as one atomic step — or nothing, when the counter
    /// would pass its limit.
    async fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError>;
}

/// Reads that answer each key's remaining lifetime with its value, in the
/// same atomic step: what a cache in front of a store ([`L1Store`]) needs to
/// honour expiry exactly. Lifetimes are as [`Store::ttl`] answers them.
#[async_trait]
pub trait TtlReads: Store {
    /// [`Store::get_many`], each value with its key's remaining lifetime.
    async fn get_many_ttl(
        &self,
        keys: &[String],
        max_bytes: u64,
    ) -> Result<Vec<(Option<Vec<u8>>, Ttl)>, StoreError>;
    /// [`Store::get_indirect`] with the remaining lifetime of every key read:
    /// the pointer, then each entry (`Missing` when the pointer is), then the
    /// `also` keys.
    async fn get_indirect_ttl(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<(IndirectRead, Vec<Ttl>), StoreError>;
}

/// The pointer's value as the text it puts in the keys `prefix ++ pointer ++
/// suffix` that [`Store::get_indirect`] reads; `None` when it is not UTF-8:
/// then it names no key (keys are strings) and every such entry is missing.
pub(crate) fn pointer_text(pointer: &[u8]) -> Option<&str> {
    std::str::from_utf8(pointer).ok()
}

/// A remaining lifetime as the stores answer it: whole milliseconds, rounded
/// down.
pub(crate) fn remaining(left: Duration) -> Ttl {
    Ttl::Remaining(Duration::from_millis(
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
    ))
}
