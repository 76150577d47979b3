//! Invoices per user with the query cache, end to end: cached reads, a write
//! in a transaction that invalidates on commit, and a write from another
//! client (psql) that invalidates through the table's trigger.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo run --example invoices
//! ```
//! (`REDIS_URL` too, to cache in Redis rather than in process.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nscache::query::{CachedTransaction, TableWatcher, watch_table};
use nscache::{Cache, Expiry};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// One invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// Row id.
    pub id: i32,
    /// Whose.
    pub user_id: String,
    /// How much.
    pub amount_cents: i32,
}

const LIST: &str =
    "SELECT id, user_id, amount_cents FROM demo_invoices WHERE user_id = $1 ORDER BY id";

/// The application: invoices read through the cache.
pub struct Invoices {
    /// The database.
    pub pool: PgPool,
    /// The cache.
    pub cache: Cache,
    /// How many times the list was read from the database.
    pub loads: AtomicU64,
}

impl Invoices {
    /// Create the table (if needed) and watch it.
    pub async fn setup(pool: PgPool, cache: Cache) -> anyhow::Result<(Invoices, TableWatcher)> {
        sqlx::query("CREATE TABLE IF NOT EXISTS demo_invoices (id SERIAL PRIMARY KEY, user_id TEXT NOT NULL, amount_cents INT NOT NULL)").execute(&pool).await?;
        watch_table(&pool, "demo_invoices", "demo_invoices").await?;
        let watcher = TableWatcher::spawn(pool.clone(), cache.clone());
        let started = Instant::now();
        while !watcher.is_listening() && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok((
            Invoices {
                pool,
                cache,
                loads: AtomicU64::new(0),
            },
            watcher,
        ))
    }

    /// A user's invoices, from the cache when it can.
    pub async fn list(&self, user: &str) -> anyhow::Result<Vec<Invoice>> {
        Ok(self
            .cache
            .user(user)
            .get_or_load_json(
                LIST,
                &[user],
                &["demo_invoices"],
                Expiry::secs(300),
                || async {
                    self.loads.fetch_add(1, Ordering::SeqCst);
                    let rows: Vec<(i32, String, i32)> = sqlx::query_as(LIST)
                        .bind(user)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok::<_, sqlx::Error>(
                        rows.into_iter()
                            .map(|(id, user_id, amount_cents)| Invoice {
                                id,
                                user_id,
                                amount_cents,
                            })
                            .collect::<Vec<_>>(),
                    )
                },
            )
            .await?)
    }

    /// Add an invoice in a transaction: the cache is invalidated on commit.
    pub async fn add(&self, user: &str, amount_cents: i32) -> anyhow::Result<()> {
        let mut tx = CachedTransaction::begin(&self.cache, &self.pool).await?;
        sqlx::query("INSERT INTO demo_invoices (user_id, amount_cents) VALUES ($1, $2)")
            .bind(user)
            .bind(amount_cents)
            .execute(tx.connection())
            .await?;
        tx.wrote("demo_invoices");
        tx.commit().await?;
        Ok(())
    }
}

/// Walk through the pattern; prints what happens, returns the database loads.
pub async fn walkthrough(app: &Invoices, user: &str) -> anyhow::Result<u64> {
    let first = app.list(user).await?;
    let again = app.list(user).await?;
    println!(
        "{user}: {} invoices; read twice, loaded {} time(s)",
        again.len(),
        app.loads.load(Ordering::SeqCst)
    );
    assert_eq!(first, again);
    app.add(user, 4200).await?;
    println!(
        "{user}: added one in a transaction; now {} invoices",
        app.list(user).await?.len()
    );
    // Another client writes the table directly: its trigger invalidates.
    sqlx::query("UPDATE demo_invoices SET amount_cents = amount_cents + 1 WHERE user_id = $1")
        .bind(user)
        .execute(&app.pool)
        .await?;
    let before = app.loads.load(Ordering::SeqCst);
    let written = Instant::now();
    while app.loads.load(Ordering::SeqCst) == before && written.elapsed() < Duration::from_secs(5) {
        app.list(user).await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "{user}: an UPDATE from another connection was seen after {:?}",
        written.elapsed()
    );
    Ok(app.loads.load(Ordering::SeqCst))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set DATABASE_URL to a Postgres database"))?;
    let pool = PgPool::connect(&url).await?;
    let cache = Cache::builder().from_env()?.build().await?;
    let (app, _watcher) = Invoices::setup(pool, cache).await?;
    let loads = walkthrough(&app, "alice").await?;
    println!("{loads} database loads in all");
    Ok(())
}
