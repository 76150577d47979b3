//! A hostile user cannot make `nscache serve` hold more memory than the
//! reply budgets allow: attacks on a separate server process, its memory
//! read from `/proc` (Linux).

mod common;

use common::{Served, http, login, session_headers, unique};
use serde_json::json;

const MIB: u64 = 1 << 20;

/// The embedded server, signed in as its first admin (who has a namespace
/// of their own, as every person does).
async fn served() -> (Served, common::Session, String, std::path::PathBuf) {
    let data = std::env::temp_dir().join(unique("bounds"));
    let served = Served::start(&[
        ("REDIS_URL", None),
        ("DATABASE_URL", None),
        ("NSCACHE_DATA_DIR", Some(data.to_str().unwrap())),
    ]);
    let password = served.first_admin_password();
    let session = login(&served.address, "admin", &password).await;
    let me = http(
        &served.address,
        "GET",
        "/api/v1/me",
        &session_headers(&session),
        None,
    )
    .await;
    let user = me.json["me"]["user_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a namespace id in {:?} ({})", me.json, me.status))
        .to_owned();
    (served, session, user, data)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_of_one_big_value_asked_a_hundred_times_is_refused_without_growing() {
    let (served, session, user, data) = served().await;
    let (a, h) = (served.address.clone(), session_headers(&session));
    // 1 MiB of \x01 (sent as base64): every byte escapes to six in a reply.
    use base64::Engine;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![1u8; MIB as usize]);
    let keys = format!("/api/v1/cache/users/{user}/keys/big");
    let put = http(&a, "PUT", &keys, &h, Some(&json!({ "value_base64": big }))).await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    drop(big);
    let get = http(&a, "GET", &keys, &h, None).await;
    assert_eq!(get.status, 200, "one copy fits (6 MiB of JSON)");
    let peak_before = served.memory("VmHWM");

    let body = json!({ "keys": vec!["big"; 100] });
    let path = format!("/api/v1/cache/users/{user}/get-many");
    let attacks = (0..8).map(|_| http(&a, "POST", &path, &h, Some(&body)));
    let replies = futures_util::future::join_all(attacks).await;
    for reply in &replies {
        assert_eq!(reply.status, 413, "{:?}", reply.json);
        assert_eq!(reply.json["error"]["code"], "reply_too_large");
    }
    let grew = served.memory("VmHWM").saturating_sub(peak_before);
    println!(
        "8 parallel get-many of 100 × 1 MiB: peak RSS grew {:.1} MiB (before the bounds: 6.04 GB)",
        grew as f64 / MIB as f64
    );
    assert!(grew < 64 * MIB, "peak RSS grew {grew} bytes");
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_distinct_big_values_are_refused_before_they_are_read_and_the_quota_holds() {
    let (served, session, user, data) = served().await;
    let (a, h) = (served.address.clone(), session_headers(&session));
    let value = "v".repeat(MIB as usize - 64);
    let mut stored = 0;
    for i in 0..70 {
        let path = format!("/api/v1/cache/users/{user}/keys/k{i}");
        let put = http(&a, "PUT", &path, &h, Some(&json!({ "value": value }))).await;
        if put.status == 507 {
            assert_eq!(put.json["error"]["code"], "namespace_quota_exceeded");
            break;
        }
        assert_eq!(put.status, 200, "{:?}", put.json);
        stored += 1;
    }
    assert!(
        (60..=64).contains(&stored),
        "the 64 MiB quota stopped the writes at {stored}"
    );
    let peak_before = served.memory("VmHWM");
    let keys: Vec<String> = (0..stored).map(|i| format!("k{i}")).collect();
    let path = format!("/api/v1/cache/users/{user}/get-many");
    let body = json!({ "keys": keys });
    let attacks = (0..4).map(|_| http(&a, "POST", &path, &h, Some(&body)));
    for reply in futures_util::future::join_all(attacks).await {
        assert_eq!(reply.status, 413, "{:?}", reply.json);
    }
    let grew = served.memory("VmHWM").saturating_sub(peak_before);
    println!(
        "4 parallel get-many of {stored} distinct 1 MiB values: peak RSS grew {:.1} MiB",
        grew as f64 / MIB as f64
    );
    assert!(grew < 64 * MIB, "peak RSS grew {grew} bytes");
    // Clearing one's cache starts the count again.
    let cleared = http(&a, "POST", "/api/v1/me/invalidate", &h, None).await;
    assert_eq!(cleared.status, 200);
    let path = format!("/api/v1/cache/users/{user}/keys/again");
    let put = http(&a, "PUT", &path, &h, Some(&json!({ "value": value }))).await;
    assert_eq!(put.status, 200, "{:?}", put.json);
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}
