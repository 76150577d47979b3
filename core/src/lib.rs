//! The logic of nscache, written once: key layout, per-user namespace
//! versioning with O(1) invalidation, expiry rules, limits and the failure
//! policy.
//!
//! Built for `wasm32-unknown-unknown` (and encoded by `host/build.rs`) this
//! crate is the cache **component**
//! (`wit/world.wit`; `src/component.rs` holds the glue); built natively it is a
//! plain library used by unit tests and benches. Nothing here knows about
//! Redis, HTTP or Postgres: every I/O goes through the [`Host`] trait, which
//! mirrors the component's imports.
//!
//! ```
//! use nscache_core::{Cache, Expiry, MapHost, Scope};
//!
//! let host = MapHost::new();
//! let cache = Cache::default();
//! let alice = Scope::User("42".into());
//!
//! cache.set(&host, &alice, "profile", b"{\"name\":\"Alice\"}", Expiry::Default)?;
//! assert!(cache.get(&host, &alice, "profile")?.is_some());
//!
//! // O(1) invalidation: one version bump hides every entry of the namespace.
//! cache.invalidate_user(&host, "42")?;
//! assert_eq!(cache.get(&host, &alice, "profile")?, None);
//!
//! // Global keys use Django's layout and are never user-scoped.
//! cache.set(&host, &Scope::Global, "invoice_seq:2026", b"7", Expiry::Never)?;
//! assert_eq!(cache.incr(&host, &Scope::Global, "invoice_seq:2026", 1)?, 8);
//! assert!(host.keys().contains(&"revisbali:1:invoice_seq:2026".to_string()));
//! # Ok::<(), nscache_core::Error>(())
//! ```
#![deny(missing_docs)]

mod cache;
mod error;
mod expiry;
mod host;
pub mod layout;
mod map_host;
mod queries;
mod seen;
mod settings;
mod versions;

#[cfg(target_arch = "wasm32")]
mod component;

pub use cache::{Cache, Scope, VersionedRead};
pub use error::{Error, StoreError};
pub use expiry::{Expiry, TimeToLive};
pub use host::{Counter, Host, Indirect, PutOutcome};
pub use layout::{Kind, Layout};
pub use map_host::MapHost;
pub use queries::{MAX_TABLES, QueryResult, QueryToken, normalise_query, query_key};
pub use settings::{MAX_NAME_BYTES, Settings};
pub use versions::LAYOUT;

#[cfg(test)]
mod tests;
