//! Attacks on sign-in against a real `nscache serve` process: parallel
//! guessing, `X-Forwarded-For` spoofing, address rotation inside an IPv6
//! /64, locking the admin out on purpose, and memory exhaustion through
//! argon2.

mod common;

use common::{Response, Served, http};
use serde_json::json;

const MIB: u64 = 1 << 20;

async fn sign_in(a: &str, name: &str, password: &str, headers: &[(&str, &str)]) -> Response {
    http(
        a,
        "POST",
        "/api/v1/session",
        headers,
        Some(&json!({ "username": name, "password": password })),
    )
    .await
}

fn counts(replies: &[Response]) -> std::collections::BTreeMap<u16, usize> {
    let mut by_status = std::collections::BTreeMap::new();
    for r in replies {
        *by_status.entry(r.status).or_insert(0) += 1;
    }
    by_status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_parallel_wrong_passwords_on_one_account_get_at_most_five_checks() {
    let (served, data) = Served::embedded(&[]);
    let a = served.address.clone();
    let replies = futures_util::future::join_all((0..60).map(|i| {
        let a = a.clone();
        async move { sign_in(&a, "admin", &format!("wrong guess {i}"), &[]).await }
    }))
    .await;
    let by_status = counts(&replies);
    println!("60 parallel wrong passwords on admin: {by_status:?} (before: 48 × 401, 12 × 429)");
    assert!(
        by_status.get(&401).copied().unwrap_or(0) <= 5,
        "{by_status:?}"
    );
    assert_eq!(
        by_status.get(&429).copied().unwrap_or(0) + by_status.get(&401).copied().unwrap_or(0),
        60,
        "everything else is 429: {by_status:?}"
    );
    for r in replies.iter().filter(|r| r.status == 429) {
        assert!(r.header("retry-after").is_some(), "{:?}", r.json);
    }
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_behind_one_trusted_proxy_does_not_reset_the_address_limit() {
    let (served, data) = Served::embedded(&[("NSCACHE_TRUSTED_PROXIES", Some("1"))]);
    let a = served.address.clone();
    let mut statuses = Vec::new();
    for i in 0..40 {
        // What a client writes comes first; the trusted proxy appends the
        // address it saw (here always the same).
        let xff = format!("203.0.113.{i}, 198.51.100.7");
        let r = sign_in(
            &a,
            &format!("nobody{i}"),
            "wrong password",
            &[("X-Forwarded-For", &xff)],
        )
        .await;
        statuses.push(r.status);
    }
    let first_429 = statuses.iter().position(|s| *s == 429);
    println!(
        "40 guesses with spoofed X-Forwarded-For: first 429 at {first_429:?} (before: 40 × 401)"
    );
    assert_eq!(first_429, Some(20), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another client of the same proxy is another address.
    let other = sign_in(
        &a,
        "nobody",
        "wrong password",
        &[("X-Forwarded-For", "198.51.100.8")],
    )
    .await;
    assert_eq!(other.status, 401);
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_addresses_in_one_ipv6_slash_64_share_one_limit() {
    let (served, data) = Served::embedded(&[("NSCACHE_TRUSTED_PROXIES", Some("1"))]);
    let a = served.address.clone();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let xff = format!("2001:db8:1:2:{i:x}::{:x}", (i * 7919) % 0x10000);
        let r = sign_in(
            &a,
            &format!("nobody{i}"),
            "wrong password",
            &[("X-Forwarded-For", &xff)],
        )
        .await;
        statuses.push(r.status);
    }
    let first_429 = statuses.iter().position(|s| *s == 429);
    println!("40 addresses in one /64: first 429 at {first_429:?}");
    assert_eq!(first_429, Some(20), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    let next_net = sign_in(
        &a,
        "nobody",
        "wrong password",
        &[("X-Forwarded-For", "2001:db8:1:3::1")],
    )
    .await;
    assert_eq!(next_net.status, 401, "the next /64 is another address");
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_signs_in_from_a_known_browser_while_an_attacker_fails_on_admin() {
    let (served, data) = Served::embedded(&[]);
    let a = served.address.clone();
    let password = served.first_admin_password();
    let first = sign_in(&a, "admin", &password, &[]).await;
    assert_eq!(first.status, 200, "{:?}", first.json);
    let device = first
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix("nscache_device=").map(|_| v))
        .expect("a device cookie on the first sign-in");
    assert!(device.contains("HttpOnly"), "{device}");
    let device = device.split(';').next().unwrap().to_owned();

    let mut attacker = Vec::new();
    for i in 0..12 {
        attacker.push(
            sign_in(&a, "ADMIN", &format!("guess {i}"), &[])
                .await
                .status,
        );
    }
    assert!(
        attacker[5..].iter().all(|s| *s == 429),
        "the attacker is backed off: {attacker:?}"
    );
    let stranger = sign_in(&a, "admin", &password, &[]).await;
    assert_eq!(
        stranger.status, 429,
        "a browser without the cookie waits too"
    );
    let admin = sign_in(&a, "admin", &password, &[("Cookie", &device)]).await;
    assert_eq!(
        admin.status, 200,
        "the admin's browser is not locked out: {:?}",
        admin.json
    );
    // The device has its own limit: five wrong passwords from it, then 429.
    let mut from_device = Vec::new();
    for i in 0..6 {
        from_device.push(
            sign_in(&a, "admin", &format!("typo {i}"), &[("Cookie", &device)])
                .await
                .status,
        );
    }
    assert_eq!(from_device, [401, 401, 401, 401, 401, 429]);
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_parallel_logins_cost_bounded_memory_and_the_rest_get_503() {
    let (served, data) = Served::embedded(&[("NSCACHE_TRUSTED_PROXIES", Some("1"))]);
    let a = served.address.clone();
    // Warm up (one check), so the baseline includes the allocator's arenas.
    assert_eq!(sign_in(&a, "warm", "wrong password", &[]).await.status, 401);
    let before = served.memory("VmHWM");
    let replies = futures_util::future::join_all((0..100).map(|i| {
        let a = a.clone();
        async move {
            // Distinct names and addresses (the limiter lets each through),
            // distinct cookies (each is its own caller for the in-flight limit).
            let xff = format!("10.{}.{}.1", i / 200, i % 200);
            let cookie = format!("nscache_session=bogus{i}");
            sign_in(
                &a,
                &format!("victim{i}"),
                "wrong password",
                &[("X-Forwarded-For", &xff), ("Cookie", &cookie)],
            )
            .await
        }
    }))
    .await;
    let grew = served.memory("VmHWM").saturating_sub(before);
    let by_status = counts(&replies);
    println!(
        "100 parallel logins: {by_status:?}; peak RSS grew {:.1} MiB (before: 150 MB → 1.16 GB)",
        grew as f64 / MIB as f64
    );
    // One ~19 MiB argon2 buffer per core at most, plus slack for the
    // connections: 104 MiB on 2 cores (the brief's bound is 200 MiB).
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get) as u64;
    let bound = cores * 20 * MIB + 64 * MIB;
    assert!(grew < bound, "peak RSS grew {grew} bytes (bound {bound})");
    assert!(!by_status.contains_key(&500), "{by_status:?}");
    assert!(
        by_status.get(&503).copied().unwrap_or(0) > 0,
        "{by_status:?}"
    );
    for r in replies.iter().filter(|r| r.status == 503) {
        assert_eq!(r.json["error"]["code"], "login_busy", "{:?}", r.json);
        assert!(r.header("retry-after").is_some());
    }
    assert!(
        replies.iter().all(|r| matches!(r.status, 401 | 503)),
        "{by_status:?}"
    );
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}
