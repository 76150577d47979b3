//! nscache: a per-user namespaced cache with O(1) invalidation.
//!
//! The cache logic (key layout, versioning, limits, failure policy) is a
//! WebAssembly component built from `core/` ([`COMPONENT_WASM`], contract in
//! `wit/`); this crate runs it on wasmtime and binds its imports to a
//! [`store::Store`] (Redis, or the embedded memory store) and a
//! [`profiles::ProfileSource`] (the users' `cache_enabled` flags).
//!
//! ```
//! use std::time::Duration;
//! use nscache::{Cache, Expiry};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), nscache::CacheError> {
//! // `Cache::builder().redis_url("redis://127.0.0.1:6379/1")` for Redis.
//! let cache = Cache::memory().await?;
//!
//! // Global keys, Django's layout: `revisbali:1:invoice_seq:2026`.
//! let seq = cache.global();
//! seq.add("invoice_seq:2026", "0", Expiry::Never).await?;
//! assert_eq!(seq.incr("invoice_seq:2026", 1).await?, 1);
//!
//! // A user's namespace: `cache:42:v{n}:data:dashboard`.
//! let alice = cache.user("42");
//! let page = alice.get_or_set("dashboard", Expiry::secs(60), || async {
//!     Ok::<_, std::io::Error>(b"rendered".to_vec())
//! }).await.unwrap();
//! assert_eq!(page, b"rendered");
//!
//! // O(1) invalidation: one version bump, whatever the number of keys.
//! cache.invalidate_user("42").await?;
//! assert_eq!(alice.get("dashboard").await?, None);
//!
//! // Locks with an owner token and a timeout.
//! let token = cache.lock("cron:full_backup:run_lock", Duration::from_secs(30)).await?.expect("free");
//! assert!(cache.unlock("cron:full_backup:run_lock", &token).await?);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

#[allow(missing_docs)]
mod bindings;
#[macro_use]
mod cache;
mod compile_cache;
mod error;
pub mod feed;
mod imports;
#[cfg(feature = "axum")]
pub mod layer;
pub mod metrics;
pub mod profiles;
pub mod query;
mod runtime;
pub mod settings;
mod single_flight;
pub mod sql;
mod stats;
pub mod store;
mod types;
pub mod wit_version;

/// The README's Rust examples, compiled as doc-tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Which keyspace an operation targets: the global one, or a user's
/// namespace (the WIT `scope`). [`Cache::keyspace`] gives its handle.
pub use bindings::nscache::cache::types::Scope;
pub use cache::{Cache, CacheBuilder, Keyspace};
pub use error::{CacheError, GetOrSetError};
pub use runtime::{COMPONENT_WASM, component_exports};
pub use settings::Settings;
pub use stats::StoreStatsSnapshot;
pub use types::{Expiry, InvalidExpiry, LockToken, Ttl};
