//! The five cache patterns of the reference system and a user namespace, on
//! the embedded memory store, or on Redis when `REDIS_URL` is set:
//!
//! ```text
//! cargo run --release --example quickstart
//! REDIS_URL=redis://127.0.0.1:6379/1 cargo run --release --example quickstart
//! ```

use std::time::{Duration, Instant};

use nscache::{Cache, Expiry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let cache = Cache::builder().from_env()?.build().await?;
    println!(
        "nscache on the {} store (component loaded in {:?})",
        cache.store().kind(),
        started.elapsed()
    );
    let g = cache.global();

    // 1. Access-token caching.
    g.set(
        "meta_whatsapp:runtime_access_token",
        "EAAG...",
        Expiry::secs(3600),
    )
    .await?;
    g.set(
        "meta_whatsapp:runtime_access_token_expires_at",
        "1798761600",
        Expiry::secs(3600),
    )
    .await?;
    println!(
        "token ttl: {:?}",
        g.ttl("meta_whatsapp:runtime_access_token").await?
    );

    // 2. Cron locks.
    match cache
        .lock("cron:full_backup:run_lock", Duration::from_secs(600))
        .await?
    {
        Some(token) => {
            println!("full_backup: lock taken, running");
            cache.unlock("cron:full_backup:run_lock", &token).await?;
        }
        None => println!("full_backup: another worker holds the lock"),
    }

    // 3. Invoice sequence.
    g.add("invoice_seq:2026", "0", Expiry::Never).await?;
    println!(
        "next invoice number: {}",
        g.incr("invoice_seq:2026", 1).await?
    );

    // 4 and 5. Stream cursors.
    for stream in ["calendar_reminders", "workflow_notifications"] {
        let cursor = format!("{stream}:stream:cursor");
        g.add(&cursor, "0", Expiry::Never).await?;
        let position = g.incr(&cursor, 1).await?;
        g.set(
            &format!("{stream}:stream:last_event"),
            format!("evt_{position}"),
            Expiry::Never,
        )
        .await?;
        println!("{stream} cursor at {position}");
    }

    // A user namespace, invalidated in O(1).
    let alice = cache.user("42");
    let page = alice
        .get_or_set("dashboard", Expiry::Default, || async {
            Ok::<_, anyhow::Error>(b"<h1>Hi Alice</h1>".to_vec())
        })
        .await?;
    println!("dashboard: {}", String::from_utf8_lossy(&page));
    let version = cache.invalidate_user("42").await?;
    println!(
        "user 42 invalidated (namespace version {version}); dashboard cached: {}",
        alice.has_key("dashboard").await?
    );
    Ok(())
}
