//! Cached query results for Rust applications: per user, keyed by the
//! normalised query and its parameters, invalidated per table in O(1) — the
//! reference's cacheops, for any database.
//!
//! ```no_run
//! # async fn demo(cache: nscache::Cache, pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use nscache::Expiry;
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Invoice { id: i64, amount_cents: i64 }
//!
//! let alice = cache.user("42");
//! let sql = "SELECT id, amount_cents FROM invoices WHERE user_id = $1 ORDER BY id";
//! let invoices: Vec<Invoice> = alice
//!     .get_or_load_json(sql, &[42], &["invoices"], Expiry::secs(300), || async {
//!         let rows: Vec<(i64, i64)> = sqlx::query_as(sql).bind(42_i64).fetch_all(&pool).await?;
//!         Ok::<_, sqlx::Error>(rows.into_iter().map(|(id, amount_cents)| Invoice { id, amount_cents }).collect())
//!     })
//!     .await?;
//! // Any write to `invoices` (through nscache, or by any client once the table
//! // is watched) makes this, and every other query over `invoices`, a miss.
//! cache.invalidate_table("invoices").await?;
//! # let _ = invoices; Ok(()) }
//! ```
//!
//! With the `postgres` feature, [`CachedTransaction`] defers invalidation to
//! commit, and [`TableWatcher`] invalidates from Postgres `NOTIFY`s.

#[cfg(feature = "postgres")]
mod tx;
#[cfg(feature = "postgres")]
mod watch;

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::exports::nscache::cache::queries::QueryToken;
use crate::bindings::nscache::cache::types::Scope;
use crate::error::{CacheError, GetOrSetError};
use crate::metrics::Op;
use crate::single_flight::{Role, follow};
use crate::{Expiry, Keyspace};

#[cfg(feature = "postgres")]
pub use self::tx::{CachedTransaction, TransactionError};
#[cfg(feature = "postgres")]
pub use self::watch::{TableWatcher, WatchError, unwatch_table, watch_table, watched_tables};

/// What [`Keyspace::get_or_load_json`] returns on failure.
#[derive(Debug, thiserror::Error)]
pub enum QueryError<E> {
    /// The cache failed (only errors the failure policy lets through).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The loader failed; nothing was stored.
    #[error("loader failed: {0}")]
    Load(E),
    /// The parameters or the result could not be (de)serialised as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The loader's failure inside [`Keyspace::get_or_load_json`].
#[derive(Debug)]
enum JsonLoad<E> {
    Load(E),
    Encode(serde_json::Error),
}

impl Keyspace {
    fn user_for_queries(&self) -> Result<&str, CacheError> {
        match &self.scope {
            Scope::User(u) => Ok(u),
            Scope::Global => Err(CacheError::InvalidArgument(
                "query results are cached per user: use cache.user(id)".into(),
            )),
        }
    }

    /// The cached result of `query` with `params` (bytes, serialised as the
    /// caller likes), which reads `tables`; on a miss, run `load` and store
    /// its result.
    ///
    /// Race-safe: the result is stored under the namespace and table versions
    /// read before loading, so a result loaded across an invalidation of any
    /// of its tables (or of the user) is never served after it. Single-flight
    /// within this process. Respects the user's `cache_enabled` flag.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        query: &str,
        params: &[u8],
        tables: &[&str],
        ttl: Expiry,
        load: F,
    ) -> Result<Vec<u8>, GetOrSetError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let user = self.user_for_queries()?.to_owned();
        let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
        let mut load = Some(load);
        loop {
            let found = call!(
                self.cache,
                Op::QueryLookup,
                nscache_cache_queries.call_query_lookup(&user, query, params, &tables)
            )?;
            self.cache.inner.metrics.record_reads(
                u64::from(found.value.is_some()),
                u64::from(found.value.is_none()),
            );
            if let Some(value) = found.value {
                return Ok(value);
            }
            let token: QueryToken = found.token;
            let role = if token.namespace_version == 0 {
                None // bypassed: nothing will be stored, nothing to share
            } else {
                let key = call!(@infallible self.cache, Op::QueryLookup, nscache_cache_queries.call_query_key(query, params))?;
                match self.cache.inner.flights.join((
                    format!("q:{user}:{:?}", token.table_versions),
                    key,
                    token.namespace_version,
                )) {
                    Role::Follower(rx) => match follow(rx).await {
                        Some(value) => return Ok(value),
                        None => continue, // the leader failed: try again
                    },
                    Role::Leader(leader) => Some(leader),
                }
            };
            let load = load
                .take()
                .expect("the loader runs at most once: a leader returns after loading");
            let value = load().await.map_err(GetOrSetError::Load)?;
            call!(
                self.cache,
                Op::QueryStore,
                nscache_cache_queries.call_query_store(
                    &user,
                    query,
                    params,
                    &tables,
                    &token,
                    &value,
                    ttl.to_wit()
                )
            )?;
            if let Some(leader) = role {
                leader.publish(&value);
            }
            return Ok(value);
        }
    }

    /// [`Keyspace::get_or_load`] for typed results: `params` and the result
    /// are serialised as JSON (rows from `sqlx` or `tokio-postgres` mapped into
    /// a `Serialize + DeserializeOwned` type).
    pub async fn get_or_load_json<T, P, F, Fut, E>(
        &self,
        query: &str,
        params: &P,
        tables: &[&str],
        ttl: Expiry,
        load: F,
    ) -> Result<T, QueryError<E>>
    where
        T: Serialize + DeserializeOwned,
        P: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let params = serde_json::to_vec(params)?;
        let loaded = self
            .get_or_load(query, &params, tables, ttl, || async {
                let value = load().await.map_err(JsonLoad::Load)?;
                serde_json::to_vec(&value).map_err(JsonLoad::Encode)
            })
            .await;
        match loaded {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(GetOrSetError::Cache(e)) => Err(QueryError::Cache(e)),
            Err(GetOrSetError::Load(JsonLoad::Load(e))) => Err(QueryError::Load(e)),
            Err(GetOrSetError::Load(JsonLoad::Encode(e))) => Err(QueryError::Json(e)),
        }
    }
}
