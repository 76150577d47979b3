//! The invoices example, on a schema of its own in the test Postgres.

#[allow(dead_code)]
#[path = "../examples/invoices.rs"]
mod example;

use std::str::FromStr;

use nscache::Cache;
use sqlx::postgres::{PgConnectOptions, PgPool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invoices_example_runs_end_to_end() {
    let url = std::env::var("NSCACHE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = PgPool::connect(&url).await.unwrap();
    let schema = format!(
        "ex{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let pool = PgPool::connect_with(
        PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str())]),
    )
    .await
    .unwrap();
    let cache = Cache::memory().await.unwrap();
    let (app, watcher) = example::Invoices::setup(pool, cache).await.unwrap();
    assert!(watcher.is_listening());
    let loads = example::walkthrough(&app, "alice").await.unwrap();
    // Read twice (1 load), after the commit (1), after the UPDATE (1).
    assert_eq!(loads, 3);
    let rows = app.list("alice").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].amount_cents, 4201,
        "the cached list shows the other client's update"
    );
    drop(watcher);
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
