//! Atomicity under concurrency: counters, locks, `add`, invalidation races.

use std::collections::BTreeSet;
use std::time::Duration;

use nscache::{Expiry, LockToken};
use nscache_tests::{Backend, suite};

async fn concurrent_increments_give_exactly_one_to_n(b: Backend) {
    let cache = b.cache().await;
    let g = cache.global();
    assert!(g.add("invoice_seq:2026", "0", Expiry::Never).await.unwrap());
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let g = g.clone();
            tokio::spawn(async move { g.incr("invoice_seq:2026", 1).await.unwrap() })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for t in tasks {
        assert!(seen.insert(t.await.unwrap()), "duplicate invoice number");
    }
    assert_eq!(
        seen,
        (1..=1000).collect::<BTreeSet<i64>>(),
        "no duplicate and no gap"
    );
    assert_eq!(
        g.get("invoice_seq:2026").await.unwrap().as_deref(),
        Some(&b"1000"[..])
    );
}

async fn concurrent_lock_attempts_have_one_winner(b: Backend) {
    let cache = b.cache().await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let me = LockToken::from_owner(format!("worker-{i}"));
                cache
                    .lock_as("cron:full_backup:run_lock", &me, Duration::from_secs(30))
                    .await
                    .unwrap()
                    .then_some(me)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    let holder = cache
        .global()
        .get("cron:full_backup:run_lock")
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some(winners[0].as_str().as_bytes()));
    // A wrong token does nothing; the right one releases.
    assert!(
        !cache
            .unlock(
                "cron:full_backup:run_lock",
                &LockToken::from_owner("worker-x")
            )
            .await
            .unwrap()
    );
    assert!(
        cache
            .global()
            .has_key("cron:full_backup:run_lock")
            .await
            .unwrap()
    );
    assert!(
        cache
            .unlock("cron:full_backup:run_lock", &winners[0])
            .await
            .unwrap()
    );
}

async fn concurrent_adds_have_one_winner(b: Backend) {
    let cache = b.cache().await;
    let u = cache.user("5");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let u = u.clone();
            tokio::spawn(async move { u.add("once", i.to_string(), Expiry::Never).await.unwrap() })
        })
        .collect();
    let mut added = 0;
    for t in tasks {
        added += usize::from(t.await.unwrap());
    }
    assert_eq!(added, 1);
}

async fn concurrent_invalidations_all_take_effect(b: Backend) {
    let cache = b.cache().await;
    let u = cache.user("hot");
    u.set("k", "old", Expiry::Never).await.unwrap();
    let before = cache.version_of("hot").await.unwrap().unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.invalidate_user("hot").await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap() > before);
    }
    assert_eq!(u.get("k").await.unwrap(), None);
    // Writers racing invalidations never resurrect an old value.
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let (u, cache) = (u.clone(), cache.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    u.set("k", format!("w{i}"), Expiry::Never).await.unwrap();
                } else {
                    cache.invalidate_user("hot").await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    cache.invalidate_user("hot").await.unwrap();
    assert_eq!(
        u.get("k").await.unwrap(),
        None,
        "nothing written before the last invalidation is visible"
    );
}

suite!(
    concurrent_increments_give_exactly_one_to_n,
    concurrent_lock_attempts_have_one_winner,
    concurrent_adds_have_one_winner,
    concurrent_invalidations_all_take_effect,
);
