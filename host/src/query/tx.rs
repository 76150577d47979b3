//! [`CachedTransaction`]: a Postgres transaction whose writes invalidate the
//! query cache when it commits — not before, and not at all if it rolls back.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::QueryError;
use crate::{Cache, CacheError, Expiry, Keyspace};

/// What [`CachedTransaction::commit`] can report.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// The database refused (nothing was committed, nothing invalidated).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The transaction committed, but invalidating these tables failed: their
    /// cached queries may be stale until invalidated (or until the table
    /// watcher, if any, does it).
    #[error("committed, but invalidating {tables:?} failed: {error}")]
    Invalidation {
        /// The tables not invalidated.
        tables: Vec<String>,
        /// Why.
        error: CacheError,
    },
}

/// A loader that runs on the transaction's connection.
pub type TxLoad<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

/// A transaction that knows which tables it wrote.
///
/// - Record each write with [`CachedTransaction::wrote`] (tables watched by a
///   [`TableWatcher`](super::TableWatcher) are also invalidated by their
///   trigger, whose `NOTIFY` Postgres delivers only on commit).
/// - Reads through [`CachedTransaction::get_or_load_json`] use the cache until
///   the transaction has written; after that they bypass it, so that neither
///   does the transaction see cached results older than its own writes, nor do
///   other users ever see its uncommitted data.
/// - [`CachedTransaction::commit`] commits, then invalidates every table
///   written; a rollback (or dropping it) invalidates nothing.
pub struct CachedTransaction {
    tx: Transaction<'static, Postgres>,
    cache: Cache,
    written: BTreeSet<String>,
}

impl std::fmt::Debug for CachedTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTransaction")
            .field("written", &self.written)
            .finish()
    }
}

impl CachedTransaction {
    /// Begin a transaction on `pool`.
    pub async fn begin(cache: &Cache, pool: &PgPool) -> Result<CachedTransaction, sqlx::Error> {
        Ok(CachedTransaction {
            tx: pool.begin().await?,
            cache: cache.clone(),
            written: BTreeSet::new(),
        })
    }

    /// The transaction's connection, for the application's queries.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Record that the transaction wrote `table` (by its name in the cache).
    pub fn wrote(&mut self, table: &str) {
        self.written.insert(table.to_owned());
    }

    /// True once the transaction has written: its reads bypass the cache.
    pub fn is_dirty(&self) -> bool {
        !self.written.is_empty()
    }

    /// A cached query result for `user`, loaded on the transaction's
    /// connection; bypasses the cache once the transaction has written.
    pub async fn get_or_load_json<T, P, F, E>(
        &mut self,
        user: &Keyspace,
        query: &str,
        params: &P,
        tables: &[&str],
        ttl: Expiry,
        load: F,
    ) -> Result<T, QueryError<E>>
    where
        T: Serialize + DeserializeOwned,
        P: Serialize + ?Sized,
        F: for<'c> FnOnce(&'c mut PgConnection) -> TxLoad<'c, T, E>,
    {
        if self.is_dirty() {
            return load(&mut self.tx).await.map_err(QueryError::Load);
        }
        let conn: &mut PgConnection = &mut self.tx;
        user.get_or_load_json(query, params, tables, ttl, move || load(conn))
            .await
    }

    /// Commit, then invalidate every table written.
    pub async fn commit(self) -> Result<(), TransactionError> {
        self.tx.commit().await?;
        let mut failed = Vec::new();
        let mut last_error = None;
        for table in &self.written {
            if let Err(e) = self.cache.invalidate_table(table).await {
                failed.push(table.clone());
                last_error = Some(e);
            }
        }
        match last_error {
            Some(error) => Err(TransactionError::Invalidation {
                tables: failed,
                error,
            }),
            None => Ok(()),
        }
    }

    /// Roll back: nothing is invalidated.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}
