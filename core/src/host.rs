//! What the cache logic needs from its host: the imported WIT interfaces
//! (`store`, `batch`, `atomics`, `profiles`) as one Rust trait.
//!
//! In the component, [`crate::component`] implements it by calling the
//! imports; natively, [`crate::MapHost`] implements it for tests and benches.

use crate::error::StoreError;
use crate::expiry::TimeToLive;

/// What one [`Host::get_indirect`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Indirect {
    /// The value of the pointer key.
    pub pointer: Option<Vec<u8>>,
    /// The value at `prefix ++ pointer ++ suffix` for each suffix.
    pub values: Vec<Option<Vec<u8>>>,
    /// The values of the `also` keys.
    pub also: Vec<Option<Vec<u8>>>,
}

/// A byte counter a counted write adds to (`atomics.counter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The counter's key.
    pub key: String,
    /// The most it may reach.
    pub limit: u64,
    /// Its expiry, set at every counted write.
    pub ttl_ms: u64,
}

/// What a counted write did (`atomics.put-outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored; the counter raised.
    Stored,
    /// `if_absent` and the key exists: nothing written.
    Exists,
    /// The counter would pass its limit: nothing written.
    OverLimit,
}

/// Storage primitives and user flags, as the WIT imports define them. Every
/// method is one atomic step on the store; see `wit/*.wit` for the contract.
pub trait Host {
    /// `store.get`
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// `store.set`
    fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError>;
    /// `store.delete`
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// `store.exists`
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// `store.expire`
    fn expire(&self, key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError>;
    /// `store.ttl`
    fn ttl(&self, key: &str) -> Result<TimeToLive, StoreError>;
    /// `store.now-micros`
    fn now_micros(&self) -> Result<u64, StoreError>;
    /// `batch.get-many`
    fn get_many(&self, keys: &[String], max_bytes: u64)
    -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// `batch.set-many`
    fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError>;
    /// `batch.delete-many`
    fn delete_many(&self, keys: &[String]) -> Result<u32, StoreError>;
    /// `batch.get-indirect`
    fn get_indirect(
        &self,
        pointer: &str,
        prefix: &str,
        suffixes: &[String],
        also: &[String],
        max_bytes: u64,
    ) -> Result<Indirect, StoreError>;
    /// `atomics.increment`
    fn increment(&self, key: &str, delta: i64) -> Result<Option<i64>, StoreError>;
    /// `atomics.set-if-absent`
    fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError>;
    /// `atomics.swap-if`
    fn swap_if(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, StoreError>;
    /// `atomics.delete-if`
    fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError>;
    /// `atomics.put-counted`
    fn put_counted(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl_ms: Option<u64>,
        counter: &Counter,
        if_absent: bool,
    ) -> Result<PutOutcome, StoreError>;
    /// `profiles.cache-enabled`
    fn cache_enabled(&self, user: &str) -> Result<bool, String>;
}
