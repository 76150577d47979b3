//! `nscache serve` as a process: the embedded default from a fresh data
//! directory, and two processes sharing Redis and Postgres.

mod common;

use std::time::{Duration, Instant};

use common::{Served, add_accounts, http, login, run_cli, session_headers, unique};
use serde_json::json;

#[tokio::test]
async fn the_embedded_default_serves_with_no_services() {
    let data = std::env::temp_dir().join(unique("data"));
    let served = Served::start(&[
        ("REDIS_URL", None),
        ("DATABASE_URL", None),
        ("NSCACHE_DATA_DIR", Some(data.to_str().unwrap())),
    ]);
    let banner = served.banner.join("\n");
    assert!(
        banner.contains("cache store: memory"),
        "announces the memory store:\n{banner}"
    );
    assert!(
        banner.contains("database:    sqlite"),
        "announces SQLite:\n{banner}"
    );
    assert!(
        banner.contains("l1:          off"),
        "announces the L1's state:\n{banner}"
    );
    let password = served.first_admin_password();
    assert!(
        !banner.contains(&password),
        "the password is never printed:\n{banner}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = data.join("first-admin-password");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }

    let a = &served.address;
    let me = login(a, "admin", &password).await;
    let h = session_headers(&me);
    let off = http(
        a,
        "PUT",
        "/api/v1/me/cache",
        &h,
        Some(&json!({ "enabled": false })),
    )
    .await;
    assert_eq!(
        (off.status, off.json["cache_enabled"].as_bool()),
        (200, Some(false))
    );
    let user_id = off.json["user_id"].as_str().unwrap().to_owned();
    let inv = http(
        a,
        "POST",
        &format!("/api/v1/users/{user_id}/invalidate"),
        &h,
        None,
    )
    .await;
    assert_eq!(inv.status, 200);
    assert!(inv.json["version"].as_u64().unwrap() > 0);
    let health = http(a, "GET", "/health", &[], None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json["database"]["backend"], "sqlite");
    drop(served);
    // A restart keeps the accounts (the file persists) and creates no second admin.
    let again = Served::start(&[
        ("REDIS_URL", None),
        ("DATABASE_URL", None),
        ("NSCACHE_DATA_DIR", Some(data.to_str().unwrap())),
    ]);
    assert!(!again.banner.join("\n").contains("created the first admin"));
    login(&again.address, "admin", &password).await;
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn serve_takes_the_l1_and_announces_its_bound() {
    let data = std::env::temp_dir().join(unique("data"));
    let redis = std::env::var("NSCACHE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_owned());
    let served = Served::start(&[
        ("REDIS_URL", Some(&redis)),
        ("DATABASE_URL", None),
        ("NSCACHE_NAMESPACE_ROOT", Some(&unique("ns"))),
        ("NSCACHE_L1", Some("1")),
        ("NSCACHE_L1_MAX_AGE", Some("0.25")),
        ("NSCACHE_DATA_DIR", Some(data.to_str().unwrap())),
    ]);
    let banner = served.banner.join("\n");
    assert!(
        banner.contains("l1:          on, 64 MiB") && banner.contains("within 250ms"),
        "announces the L1 and its bound:\n{banner}"
    );
    drop(served);
    let _ = std::fs::remove_dir_all(&data);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toggle_on_one_process_takes_effect_on_the_other() {
    let pg = std::env::var("NSCACHE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis = std::env::var("NSCACHE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
    let schema = unique("s");
    let admin = sqlx::PgPool::connect(&pg).await.expect("Postgres");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let database_url = format!("{pg}?options[search_path]={schema}");
    let root = unique("ns");
    let prefix = unique("p");
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("NSCACHE_NAMESPACE_ROOT", root.as_str()),
        ("CACHE_KEY_PREFIX", prefix.as_str()),
    ];

    assert!(run_cli(&env, &["migrate"], None).contains("applied"));
    assert!(
        run_cli(&env, &["migrate"], None).contains("already applied"),
        "idempotent"
    );
    let (alice, token) = add_accounts(&env);
    assert!(token.starts_with("nsc_"));

    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, Some(*v))).collect();
    let a = Served::start(&env);
    let b = Served::start(&env);
    let me = login(&a.address, "alice", "alice password").await;
    let bearer = format!("Bearer {token}");
    let service = [("Authorization", bearer.as_str())];
    let key = format!("/api/v1/cache/users/{alice}/keys/page");

    // Process B caches for alice once it knows her flag.
    assert_eq!(
        http(
            &b.address,
            "PUT",
            &key,
            &service,
            Some(&json!({ "value": "x" }))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        http(&b.address, "GET", &key, &service, None).await.status,
        200
    );

    let mut delays = Vec::new();
    let mut first_request = 0;
    for round in 0..20 {
        let enabled = round % 2 == 1;
        let r = http(
            &a.address,
            "PUT",
            "/api/v1/me/cache",
            &session_headers(&me),
            Some(&json!({ "enabled": enabled })),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        let toggled = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // B's view of the flag: a write then a read hits only if B caches for alice.
            http(
                &b.address,
                "PUT",
                &key,
                &service,
                Some(&json!({ "value": format!("r{round}") })),
            )
            .await;
            let hit = http(&b.address, "GET", &key, &service, None).await.status == 200;
            if hit == enabled {
                break;
            }
            assert!(
                toggled.elapsed() < Duration::from_secs(5),
                "process B never saw the toggle (round {round})"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if attempts == 1 {
            first_request += 1;
        }
        delays.push(toggled.elapsed());
    }
    delays.sort();
    println!(
        "toggle propagation to a second process: {first_request}/20 seen on the very next request; observed after median {:?}, p99 {:?} (includes one write+read on B)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99)
    );
    assert!(
        first_request >= 18,
        "the second process saw the change on its next request in only {first_request} of 20 rounds"
    );
    drop((a, b));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
