//! Automatic invalidation from Postgres: a trigger on each watched table
//! `NOTIFY`s the channel `nscache_table_changes` on INSERT, UPDATE, DELETE and
//! TRUNCATE (once per statement, delivered on commit), and a
//! [`TableWatcher`] `LISTEN`s and bumps the table's version — so raw SQL,
//! other services and `psql` edits invalidate cached queries too.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::Cache;
use crate::sql::{Identifier, InvalidIdentifier};

/// Why a table could not be watched or unwatched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The table or cache name is not a plain SQL identifier.
    #[error(transparent)]
    InvalidName(#[from] InvalidIdentifier),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The notification channel.
pub const CHANNEL: &str = "nscache_table_changes";

/// Install (or replace) the triggers on `relation` (a table, optionally
/// `schema.table`) that announce its changes under the cache table name
/// `name`, and record it as watched. Idempotent.
pub async fn watch_table(pool: &PgPool, relation: &str, name: &str) -> Result<(), WatchError> {
    let relation = Identifier::parse(relation)?;
    // The name is embedded in the trigger as a literal: keep it to identifier characters.
    let name = Identifier::parse(name)?.name().to_owned();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7249862)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS nscache_watched_tables (name TEXT PRIMARY KEY, relation TEXT NOT NULL, since TIMESTAMPTZ NOT NULL DEFAULT now())").execute(&mut *tx).await?;
    sqlx::query(
        "CREATE OR REPLACE FUNCTION nscache_notify_table_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM pg_notify('nscache_table_changes', TG_ARGV[0]);
           RETURN NULL;
         END $$",
    )
    .execute(&mut *tx)
    .await?;
    for (trigger, events) in [
        ("nscache_watch", "INSERT OR UPDATE OR DELETE"),
        ("nscache_watch_truncate", "TRUNCATE"),
    ] {
        sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger} ON {relation}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("CREATE TRIGGER {trigger} AFTER {events} ON {relation} FOR EACH STATEMENT EXECUTE FUNCTION nscache_notify_table_change('{name}')"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("INSERT INTO nscache_watched_tables (name, relation) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET relation = EXCLUDED.relation")
        .bind(&name)
        .bind(relation.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Remove the triggers of the watched table `name`. False if it was not watched.
pub async fn unwatch_table(pool: &PgPool, name: &str) -> Result<bool, WatchError> {
    let mut tx = pool.begin().await?;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('nscache_watched_tables')::text")
            .fetch_one(&mut *tx)
            .await?;
    if exists.is_none() {
        return Ok(false);
    }
    let relation: Option<String> =
        sqlx::query_scalar("DELETE FROM nscache_watched_tables WHERE name = $1 RETURNING relation")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(relation) = relation else {
        return Ok(false);
    };
    // `relation` was written by watch_table from a validated identifier, quoted.
    for trigger in ["nscache_watch", "nscache_watch_truncate"] {
        sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger} ON {relation}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// The watched tables' cache names.
pub async fn watched_tables(pool: &PgPool) -> Result<Vec<String>, WatchError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('nscache_watched_tables')::text")
            .fetch_one(pool)
            .await?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT name FROM nscache_watched_tables ORDER BY name")
            .fetch_all(pool)
            .await?,
    )
}

/// Listens for table changes and invalidates their cached queries.
///
/// When the `LISTEN` connection is lost it reconnects and bumps every watched
/// table, since a change may have been missed meanwhile (also on start).
/// When an invalidation fails (Redis unreachable) it is retried every second
/// until it succeeds.
#[derive(Debug)]
pub struct TableWatcher {
    listening: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TableWatcher {
    /// Start listening on `pool`'s database, invalidating through `cache`.
    pub fn spawn(pool: PgPool, cache: Cache) -> TableWatcher {
        let listening = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(listen(pool, cache, listening.clone()));
        TableWatcher { listening, task }
    }

    /// True while subscribed to the channel.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }
}

impl Drop for TableWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn invalidate_all(pending: &mut BTreeSet<String>, cache: &Cache) {
    let tables: Vec<String> = pending.iter().cloned().collect();
    for table in tables {
        match cache.invalidate_table(&table).await {
            Ok(_) => {
                pending.remove(&table);
            }
            Err(e) => {
                tracing::warn!(table, error = %e, "invalidating a changed table failed; retrying")
            }
        }
    }
}

async fn listen(pool: PgPool, cache: Cache, listening: Arc<AtomicBool>) {
    let mut pending = BTreeSet::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "table watcher: cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "table watcher: LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
        // Changes made while nobody listened are unknown: bump every watched table.
        match watched_tables(&pool).await {
            Ok(tables) => pending.extend(tables),
            Err(e) => tracing::warn!(error = %e, "table watcher: cannot list watched tables"),
        }
        invalidate_all(&mut pending, &cache).await;
        listening.store(true, Ordering::SeqCst);
        backoff = Duration::from_millis(100);
        loop {
            match tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await {
                Ok(Ok(Some(notification))) => {
                    pending.insert(notification.payload().to_owned());
                    invalidate_all(&mut pending, &cache).await;
                }
                // The connection was lost: start over (and bump everything).
                Ok(Ok(None)) | Ok(Err(_)) => break,
                // Quiet second: retry failed invalidations, if any.
                Err(_) => invalidate_all(&mut pending, &cache).await,
            }
        }
        listening.store(false, Ordering::SeqCst);
        tracing::warn!("table watcher: LISTEN connection lost; reconnecting");
    }
}
