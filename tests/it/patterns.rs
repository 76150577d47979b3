//! The five cache patterns of the reference system (DESIGN.md), each with the
//! operations the reference lists, on every backend.

use std::time::Duration;

use nscache::{Cache, CacheError, Expiry, Ttl};
use nscache_tests::{Backend, raw_connection, redis_url, suite};
use redis::AsyncCommands;

const TOKEN: &str = "meta_whatsapp:runtime_access_token";
const TOKEN_EXPIRES: &str = "meta_whatsapp:runtime_access_token_expires_at";
const LOCKS: [&str; 4] = [
    "cron:full_backup:enqueue_lock",
    "cron:full_backup:run_lock",
    "cron:clear_cache:enqueue_lock",
    "cron:clear_cache:run_lock",
];
const SEQ: &str = "invoice_seq:2026";

fn s(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8(b).expect("utf-8"))
}

// Pattern 1: Meta WhatsApp access token — set with TTL, get, delete_many.

async fn token_is_cached_with_its_ttl(b: Backend) {
    let g = b.cache().await.global();
    g.set(TOKEN, "EAAG-token-1", Expiry::secs(3600))
        .await
        .unwrap();
    assert_eq!(
        s(g.get(TOKEN).await.unwrap()).as_deref(),
        Some("EAAG-token-1")
    );
    match g.ttl(TOKEN).await.unwrap() {
        Ttl::Remaining(d) => assert!(
            d > Duration::from_secs(3590) && d <= Duration::from_secs(3600),
            "{d:?}"
        ),
        other => panic!("expected a TTL, got {other:?}"),
    }
}

async fn token_and_expiry_are_read_together(b: Backend) {
    let g = b.cache().await.global();
    g.set(TOKEN, "EAAG-token-2", Expiry::secs(3600))
        .await
        .unwrap();
    g.set(TOKEN_EXPIRES, "1798761600", Expiry::secs(3600))
        .await
        .unwrap();
    let both = g.get_many(&[TOKEN, TOKEN_EXPIRES]).await.unwrap();
    assert_eq!(
        both,
        vec![Some(b"EAAG-token-2".to_vec()), Some(b"1798761600".to_vec())]
    );
}

async fn token_expires(b: Backend) {
    let g = b.cache().await.global();
    g.set(
        TOKEN,
        "short-lived",
        Expiry::After(Duration::from_millis(150)),
    )
    .await
    .unwrap();
    assert!(g.get(TOKEN).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(g.get(TOKEN).await.unwrap(), None);
    assert_eq!(g.ttl(TOKEN).await.unwrap(), Ttl::Missing);
}

async fn token_cache_is_cleared_with_delete_many(b: Backend) {
    let g = b.cache().await.global();
    g.set(TOKEN, "t", Expiry::Default).await.unwrap();
    g.set(TOKEN_EXPIRES, "1", Expiry::Default).await.unwrap();
    assert_eq!(g.delete_many(&[TOKEN, TOKEN_EXPIRES]).await.unwrap(), 2);
    assert_eq!(
        g.get_many(&[TOKEN, TOKEN_EXPIRES]).await.unwrap(),
        vec![None, None]
    );
    assert_eq!(g.delete_many(&[TOKEN, TOKEN_EXPIRES]).await.unwrap(), 0);
}

async fn token_refresh_replaces_value_and_ttl(b: Backend) {
    let g = b.cache().await.global();
    g.set(TOKEN, "old", Expiry::Never).await.unwrap();
    g.set(TOKEN, "new", Expiry::secs(60)).await.unwrap();
    assert_eq!(s(g.get(TOKEN).await.unwrap()).as_deref(), Some("new"));
    assert!(
        matches!(g.ttl(TOKEN).await.unwrap(), Ttl::Remaining(d) if d <= Duration::from_secs(60))
    );
}

// Pattern 2: cron locks — add, get, delete, delete_many.

async fn cron_lock_is_taken_once(b: Backend) {
    let g = b.cache().await.global();
    assert!(
        g.add(LOCKS[1], "worker-a", Expiry::secs(600))
            .await
            .unwrap()
    );
    assert!(
        !g.add(LOCKS[1], "worker-b", Expiry::secs(600))
            .await
            .unwrap(),
        "add on an existing key"
    );
    assert_eq!(
        s(g.get(LOCKS[1]).await.unwrap()).as_deref(),
        Some("worker-a"),
        "the loser did not overwrite"
    );
}

async fn cron_lock_release_lets_the_next_run_in(b: Backend) {
    let g = b.cache().await.global();
    assert!(g.add(LOCKS[0], "run-1", Expiry::secs(600)).await.unwrap());
    assert!(g.delete(LOCKS[0]).await.unwrap());
    assert_eq!(g.get(LOCKS[0]).await.unwrap(), None);
    assert!(g.add(LOCKS[0], "run-2", Expiry::secs(600)).await.unwrap());
    assert!(!g.delete("cron:never:taken").await.unwrap());
}

async fn cron_locks_reset_with_delete_many(b: Backend) {
    let g = b.cache().await.global();
    for lock in LOCKS {
        assert!(g.add(lock, "x", Expiry::secs(600)).await.unwrap());
    }
    assert_eq!(g.delete_many(&LOCKS).await.unwrap(), 4);
    for lock in LOCKS {
        assert!(
            g.add(lock, "y", Expiry::secs(600)).await.unwrap(),
            "{lock} free again"
        );
    }
}

async fn cron_lock_expires_when_its_holder_dies(b: Backend) {
    let g = b.cache().await.global();
    assert!(
        g.add(
            LOCKS[3],
            "crashed",
            Expiry::After(Duration::from_millis(150))
        )
        .await
        .unwrap()
    );
    assert!(!g.add(LOCKS[3], "next", Expiry::secs(600)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(g.add(LOCKS[3], "next", Expiry::secs(600)).await.unwrap());
}

async fn cron_lock_status_is_visible(b: Backend) {
    let g = b.cache().await.global();
    assert!(!g.has_key(LOCKS[2]).await.unwrap());
    assert!(g.add(LOCKS[2], "1", Expiry::secs(600)).await.unwrap());
    assert!(g.has_key(LOCKS[2]).await.unwrap());
}

// Pattern 3: invoice sequence — add, incr, set, get; unique under concurrency
// (see concurrency.rs for 1000 concurrent increments).

async fn invoice_sequence_starts_with_add(b: Backend) {
    let g = b.cache().await.global();
    assert!(g.add(SEQ, "0", Expiry::Never).await.unwrap());
    assert!(!g.add(SEQ, "100", Expiry::Never).await.unwrap());
    assert_eq!(s(g.get(SEQ).await.unwrap()).as_deref(), Some("0"));
}

async fn invoice_sequence_increments(b: Backend) {
    let g = b.cache().await.global();
    g.add(SEQ, "0", Expiry::Never).await.unwrap();
    let numbers: Vec<i64> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(g.incr(SEQ, 1).await.unwrap());
        }
        v
    };
    assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
    assert_eq!(s(g.get(SEQ).await.unwrap()).as_deref(), Some("5"));
}

async fn invoice_sequence_can_be_reset_with_set(b: Backend) {
    let g = b.cache().await.global();
    g.add(SEQ, "0", Expiry::Never).await.unwrap();
    g.incr(SEQ, 1).await.unwrap();
    g.set(SEQ, "1000", Expiry::Never).await.unwrap();
    assert_eq!(g.incr(SEQ, 1).await.unwrap(), 1001);
    assert_eq!(g.incr(SEQ, 10).await.unwrap(), 1011);
}

async fn invoice_incr_on_a_missing_key_is_an_error(b: Backend) {
    let g = b.cache().await.global();
    assert_eq!(
        g.incr("invoice_seq:1999", 1).await,
        Err(CacheError::NotFound)
    );
    assert!(
        !g.has_key("invoice_seq:1999").await.unwrap(),
        "incr created nothing"
    );
}

async fn invoice_sequences_per_year_are_independent(b: Backend) {
    let g = b.cache().await.global();
    g.add("invoice_seq:2026", "0", Expiry::Never).await.unwrap();
    g.add("invoice_seq:2027", "0", Expiry::Never).await.unwrap();
    g.incr("invoice_seq:2026", 1).await.unwrap();
    g.incr("invoice_seq:2026", 1).await.unwrap();
    assert_eq!(g.incr("invoice_seq:2027", 1).await.unwrap(), 1);
}

async fn invoice_sequence_rejects_a_non_integer(b: Backend) {
    let g = b.cache().await.global();
    g.set(SEQ, "INV-0001", Expiry::Never).await.unwrap();
    assert_eq!(g.incr(SEQ, 1).await, Err(CacheError::NotAnInteger));
    assert_eq!(
        s(g.get(SEQ).await.unwrap()).as_deref(),
        Some("INV-0001"),
        "left untouched"
    );
}

// Patterns 4 and 5: stream cursors — add, incr, set, get, delete_many.

async fn cursor_lifecycle(g: &nscache::Keyspace, stream: &str) {
    let cursor = format!("{stream}:stream:cursor");
    let last = format!("{stream}:stream:last_event");
    assert!(g.add(&cursor, "0", Expiry::Never).await.unwrap());
    assert_eq!(g.incr(&cursor, 1).await.unwrap(), 1);
    assert_eq!(g.incr(&cursor, 1).await.unwrap(), 2);
    g.set(
        &last,
        r#"{"id":"evt_2","at":"2026-11-28T10:00:00Z"}"#,
        Expiry::Never,
    )
    .await
    .unwrap();
    assert_eq!(
        s(g.get(&last).await.unwrap()).as_deref(),
        Some(r#"{"id":"evt_2","at":"2026-11-28T10:00:00Z"}"#)
    );
    assert_eq!(s(g.get(&cursor).await.unwrap()).as_deref(), Some("2"));
}

async fn cursor_reset(g: &nscache::Keyspace, stream: &str) {
    let cursor = format!("{stream}:stream:cursor");
    let last = format!("{stream}:stream:last_event");
    g.add(&cursor, "41", Expiry::Never).await.unwrap();
    g.set(&last, "evt_41", Expiry::Never).await.unwrap();
    assert_eq!(g.delete_many(&[&cursor, &last]).await.unwrap(), 2);
    assert_eq!(
        g.incr(&cursor, 1).await,
        Err(CacheError::NotFound),
        "a reset cursor is gone"
    );
    assert!(
        g.add(&cursor, "0", Expiry::Never).await.unwrap(),
        "and starts again"
    );
    assert_eq!(g.incr(&cursor, 1).await.unwrap(), 1);
}

async fn cursor_keeps_its_ttl_when_incremented(g: &nscache::Keyspace, stream: &str) {
    let cursor = format!("{stream}:stream:cursor");
    g.add(&cursor, "0", Expiry::secs(120)).await.unwrap();
    g.incr(&cursor, 5).await.unwrap();
    assert!(
        matches!(g.ttl(&cursor).await.unwrap(), Ttl::Remaining(d) if d > Duration::from_secs(100))
    );
    assert_eq!(g.decr(&cursor, 2).await.unwrap(), 3);
}

async fn calendar_cursor_lifecycle(b: Backend) {
    cursor_lifecycle(&b.cache().await.global(), "calendar_reminders").await;
}

async fn calendar_cursor_reset(b: Backend) {
    cursor_reset(&b.cache().await.global(), "calendar_reminders").await;
}

async fn calendar_cursor_keeps_ttl(b: Backend) {
    cursor_keeps_its_ttl_when_incremented(&b.cache().await.global(), "calendar_reminders").await;
}

async fn workflow_cursor_lifecycle(b: Backend) {
    cursor_lifecycle(&b.cache().await.global(), "workflow_notifications").await;
}

async fn workflow_cursor_reset(b: Backend) {
    cursor_reset(&b.cache().await.global(), "workflow_notifications").await;
}

async fn workflow_cursor_keeps_ttl(b: Backend) {
    cursor_keeps_its_ttl_when_incremented(&b.cache().await.global(), "workflow_notifications")
        .await;
}

async fn cursors_of_the_two_streams_are_independent(b: Backend) {
    let g = b.cache().await.global();
    g.add("calendar_reminders:stream:cursor", "0", Expiry::Never)
        .await
        .unwrap();
    g.add("workflow_notifications:stream:cursor", "100", Expiry::Never)
        .await
        .unwrap();
    g.incr("calendar_reminders:stream:cursor", 1).await.unwrap();
    assert_eq!(
        g.incr("workflow_notifications:stream:cursor", 1)
            .await
            .unwrap(),
        101
    );
    g.delete_many(&[
        "calendar_reminders:stream:cursor",
        "calendar_reminders:stream:last_event",
    ])
    .await
    .unwrap();
    assert_eq!(
        s(g.get("workflow_notifications:stream:cursor").await.unwrap()).as_deref(),
        Some("101")
    );
}

suite!(
    token_is_cached_with_its_ttl,
    token_and_expiry_are_read_together,
    token_expires,
    token_cache_is_cleared_with_delete_many,
    token_refresh_replaces_value_and_ttl,
    cron_lock_is_taken_once,
    cron_lock_release_lets_the_next_run_in,
    cron_locks_reset_with_delete_many,
    cron_lock_expires_when_its_holder_dies,
    cron_lock_status_is_visible,
    invoice_sequence_starts_with_add,
    invoice_sequence_increments,
    invoice_sequence_can_be_reset_with_set,
    invoice_incr_on_a_missing_key_is_an_error,
    invoice_sequences_per_year_are_independent,
    invoice_sequence_rejects_a_non_integer,
    calendar_cursor_lifecycle,
    calendar_cursor_reset,
    calendar_cursor_keeps_ttl,
    workflow_cursor_lifecycle,
    workflow_cursor_reset,
    workflow_cursor_keeps_ttl,
    cursors_of_the_two_streams_are_independent,
);

/// The reference's exact global key strings, read back with raw redis-rs.
#[tokio::test]
async fn global_keys_have_the_exact_reference_layout() {
    let url = redis_url();
    let cache = Cache::builder().redis_url(&url).build().await.unwrap();
    let key_prefix = cache.key_prefix().to_owned();
    assert_eq!(key_prefix, "revisbali", "the default prefix");
    // The default prefix is shared with other runs: use a key no test writes.
    let year = nscache_tests::unique("y");
    let key = format!("invoice_seq:{year}");
    let g = cache.global();
    g.add(&key, "0", Expiry::secs(60)).await.unwrap();
    g.incr(&key, 1).await.unwrap();
    let mut raw = raw_connection(&url).await;
    let stored: Option<String> = raw
        .get(format!("revisbali:1:invoice_seq:{year}"))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("1"));
    g.delete(&key).await.unwrap();

    let cache = Cache::builder()
        .redis_url(&url)
        .key_prefix(nscache_tests::unique("p"))
        .build()
        .await
        .unwrap();
    let prefix = cache.key_prefix().to_owned();
    cache
        .global()
        .set("invoice_seq:2026", "7", Expiry::secs(60))
        .await
        .unwrap();
    cache
        .global()
        .set("cron:full_backup:run_lock", "w", Expiry::secs(60))
        .await
        .unwrap();
    let stored: Vec<Option<String>> = raw
        .mget(&[
            format!("{prefix}:1:invoice_seq:2026"),
            format!("{prefix}:1:cron:full_backup:run_lock"),
        ])
        .await
        .unwrap();
    assert_eq!(stored, vec![Some("7".to_owned()), Some("w".to_owned())]);
}
