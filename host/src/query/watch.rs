//! Automatic invalidation from Postgres: a trigger on each watched table
//! `NOTIFY`s the channel `nscache_table_changes` on INSERT, UPDATE, DELETE and
//! TRUNCATE (once per statement, delivered on commit), and a
//! [`TableWatcher`] `LISTEN`s and bumps the table's version — so raw SQL,
//! other services and `psql` edits invalidate cached queries too.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::sql::{Identifier, InvalidIdentifier};
use crate::{Cache, CacheError};

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
    // Written by watch_table from a validated identifier, but anyone who can
    // write that table could have changed it since: check it again.
    let relation = Identifier::parse_quoted(&relation)?;
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
/// When an invalidation fails because the store is unreachable it is retried
/// every second until it succeeds. Any database role can `NOTIFY` the
/// channel: a notification that does not name a watched table (not an
/// identifier, too long, or not in `nscache_watched_tables`) is dropped and
/// counted ([`TableWatcher::dropped`]), never retried.
#[derive(Debug)]
pub struct TableWatcher {
    listening: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TableWatcher {
    /// Start listening on `pool`'s database, invalidating through `cache`.
    pub fn spawn(pool: PgPool, cache: Cache) -> TableWatcher {
        let listening = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let state = Listening {
            pool,
            cache,
            listening: listening.clone(),
            dropped: dropped.clone(),
            watched: BTreeSet::new(),
            pending: BTreeSet::new(),
        };
        let task = tokio::spawn(state.run());
        TableWatcher {
            listening,
            dropped,
            task,
        }
    }

    /// True while subscribed to the channel.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Notifications dropped because they named no watched table, and
    /// invalidations dropped because the cache refused the name.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for TableWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The watcher's task.
struct Listening {
    pool: PgPool,
    cache: Cache,
    listening: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    /// The names in `nscache_watched_tables`, as last read.
    watched: BTreeSet<String>,
    /// Tables changed and not yet invalidated (the store was unreachable).
    pending: BTreeSet<String>,
}

impl Listening {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
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
            self.refresh_watched().await;
            self.pending.extend(self.watched.iter().cloned());
            self.invalidate_pending().await;
            self.listening.store(true, Ordering::SeqCst);
            backoff = Duration::from_millis(100);
            loop {
                match tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await {
                    Ok(Ok(Some(notification))) => {
                        self.heard(notification.payload()).await;
                        self.invalidate_pending().await;
                    }
                    // The connection was lost: start over (and bump everything).
                    Ok(Ok(None)) | Ok(Err(_)) => break,
                    // Quiet second: retry failed invalidations, if any.
                    Err(_) => self.invalidate_pending().await,
                }
            }
            self.listening.store(false, Ordering::SeqCst);
            tracing::warn!("table watcher: LISTEN connection lost; reconnecting");
        }
    }

    async fn refresh_watched(&mut self) {
        match watched_tables(&self.pool).await {
            Ok(tables) => self.watched = tables.into_iter().collect(),
            Err(e) => tracing::warn!(error = %e, "table watcher: cannot list watched tables"),
        }
    }

    /// A notification: queue the table if it is a watched one, else drop it.
    async fn heard(&mut self, payload: &str) {
        let valid = Identifier::parse(payload).is_ok();
        if valid && !self.watched.contains(payload) {
            // Watched since we last looked?
            self.refresh_watched().await;
        }
        if valid && self.watched.contains(payload) {
            self.pending.insert(payload.to_owned());
        } else {
            self.drop_one(payload, "names no watched table");
        }
    }

    fn drop_one(&self, name: &str, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::SeqCst) + 1;
        // Logged once per power of two, so that a flood does not flood the log.
        if n.is_power_of_two() {
            let shown: String = name.chars().take(64).collect();
            tracing::warn!(name = %shown, dropped = n, "table watcher: dropped a notification that {why}");
        }
    }

    async fn invalidate_pending(&mut self) {
        let tables: Vec<String> = self.pending.iter().cloned().collect();
        for table in tables {
            match self.cache.invalidate_table(&table).await {
                Ok(_) => {
                    self.pending.remove(&table);
                }
                Err(CacheError::Unavailable(e)) => {
                    tracing::warn!(table, error = %e, "invalidating a changed table failed; retrying")
                }
                Err(e) => {
                    // Not an outage: retrying would fail the same way forever.
                    self.pending.remove(&table);
                    self.drop_one(&table, &format!("the cache refused ({e})"));
                }
            }
        }
    }
}
