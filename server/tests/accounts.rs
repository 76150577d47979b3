//! The operator's account commands (`nscache user …`, `nscache token …`) as
//! a process, against Postgres schemas of their own and SQLite files.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use nscache_tests::server::PgSchema;

/// Run `nscache` with `env`, `stdin` on its standard input.
fn nscache(env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nscache"));
    cmd.env_remove("RUST_LOG")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run nscache");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn with_an_application_profile_table_user_add_needs_the_application_user_id() {
    let schema = PgSchema::create().await;
    let pool = schema.pool().await;
    sqlx::query("CREATE TABLE app_profiles (user_id INTEGER PRIMARY KEY, cache_enabled BOOLEAN NOT NULL DEFAULT TRUE)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO app_profiles (user_id) VALUES (1), (2)")
        .execute(&pool)
        .await
        .unwrap();
    let url = schema.url();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("NSCACHE_PROFILE_TABLE", "app_profiles"),
    ];
    let migrate = nscache(&env, &["migrate"], "");
    assert_eq!(migrate.status.code(), Some(0), "{}", text(&migrate));
    let carol = nscache(
        &env,
        &["user", "add", "carol", "--password-stdin"],
        "correct horse battery\n",
    );
    assert_eq!(carol.status.code(), Some(2), "{}", text(&carol));
    assert!(text(&carol).contains("--user-id"), "{}", text(&carol));
    let carol = nscache(
        &env,
        &["user", "add", "carol", "--password-stdin", "--user-id", "3"],
        "correct horse battery\n",
    );
    assert_eq!(carol.status.code(), Some(0), "{}", text(&carol));
    assert!(text(&carol).contains("namespace id 3"), "{}", text(&carol));
    let flag2: bool =
        sqlx::query_scalar("SELECT cache_enabled FROM app_profiles WHERE user_id = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(flag2, "application user 2 untouched");
    schema.drop().await;
}

/// `GET /api/v1/me` with these headers: the status.
async fn me_status(a: &str, headers: &[(&str, &str)]) -> u16 {
    common::http(a, "GET", "/api/v1/me", headers, None)
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_rotation_and_deletion_take_effect_on_a_running_server() {
    let (served, data) = common::Served::embedded(&[]);
    let a = served.address.clone();
    let data_dir = data.to_str().unwrap().to_owned();
    let env = [("NSCACHE_DATA_DIR", data_dir.as_str())];
    let run = |args: &[&str], stdin: &str| {
        let o = nscache(&env, args, stdin);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    run(
        &["user", "add", "alice", "--password-stdin"],
        "first password\n",
    );
    run(&["user", "add", "app", "--service"], "");
    let ci = run(&["token", "create", "app", "--label", "ci"], "");
    let spare = run(
        &[
            "token",
            "create",
            "app",
            "--label",
            "spare",
            "--expires-in",
            "30d",
        ],
        "",
    );
    let bearer = |t: &str| format!("Bearer {t}");
    let (ci_h, spare_h) = (bearer(&ci), bearer(&spare));
    assert_eq!(me_status(&a, &[("Authorization", &ci_h)]).await, 200);
    let short = run(
        &[
            "token",
            "create",
            "app",
            "--label",
            "short",
            "--expires-in",
            "3s",
        ],
        "",
    );
    let short_created = std::time::Instant::now();
    let short_h = bearer(&short);
    assert_eq!(me_status(&a, &[("Authorization", &short_h)]).await, 200);
    let alice = common::login(&a, "alice", "first password").await;
    assert_eq!(me_status(&a, &[("Cookie", &alice.cookie)]).await, 200);

    // Listing: ids, labels, owners, expiry, last use; never the tokens.
    let list = run(&["token", "list"], "");
    println!("{list}");
    assert!(!list.contains(&ci) && !list.contains("nsc_"), "{list}");
    let ci_line = list
        .lines()
        .find(|l| l.split('\t').nth(1) == Some("ci"))
        .unwrap_or_else(|| panic!("{list}"));
    let cols: Vec<&str> = ci_line.split('\t').collect();
    assert_eq!((cols[2], cols[4]), ("app", "never"), "{ci_line}");
    assert_ne!(cols[5], "never", "the use was noted: {ci_line}");
    let spare_line = list.lines().find(|l| l.contains("\tspare\t")).unwrap();
    assert!(
        spare_line.split('\t').nth(4).unwrap().ends_with('Z'),
        "{spare_line}"
    );

    // Revoke: refused from the next request on.
    run(&["token", "revoke", cols[0]], "");
    assert_eq!(me_status(&a, &[("Authorization", &ci_h)]).await, 401);
    let again = nscache(&env, &["token", "revoke", cols[0]], "");
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    // Expiry.
    tokio::time::sleep(
        std::time::Duration::from_millis(4100).saturating_sub(short_created.elapsed()),
    )
    .await;
    assert_eq!(me_status(&a, &[("Authorization", &short_h)]).await, 401);
    assert_eq!(me_status(&a, &[("Authorization", &spare_h)]).await, 200);

    // A new password ends the old sessions.
    run(
        &["user", "passwd", "alice", "--password-stdin"],
        "second password\n",
    );
    assert_eq!(me_status(&a, &[("Cookie", &alice.cookie)]).await, 401);
    let alice = common::login(&a, "alice", "second password").await;
    let generated = run(&["user", "passwd", "alice"], "");
    let generated = generated
        .split("password: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{generated}"))
        .trim()
        .to_owned();
    assert_eq!(me_status(&a, &[("Cookie", &alice.cookie)]).await, 401);
    let alice = common::login(&a, "alice", &generated).await;

    // Disable: session ends, sign-in refused; enable: sign-in works.
    run(&["user", "disable", "alice"], "");
    assert_eq!(me_status(&a, &[("Cookie", &alice.cookie)]).await, 401);
    let refused = common::http(
        &a,
        "POST",
        "/api/v1/session",
        &[],
        Some(&serde_json::json!({ "username": "alice", "password": generated })),
    )
    .await;
    assert_eq!(refused.status, 401);
    run(&["user", "enable", "alice"], "");
    let alice = common::login(&a, "alice", &generated).await;

    // Delete: the live session and the live token die at once.
    assert_eq!(me_status(&a, &[("Cookie", &alice.cookie)]).await, 200);
    run(&["user", "delete", "alice"], "");
    assert_eq!(me_status(&a, &[("Cookie", &alice.cookie)]).await, 401);
    run(&["user", "delete", "app"], "");
    assert_eq!(me_status(&a, &[("Authorization", &spare_h)]).await, 401);
    let gone = nscache(&env, &["user", "delete", "app"], "");
    assert_eq!(gone.status.code(), Some(2), "{}", text(&gone));
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn look_alike_names_and_invisible_characters_are_refused_with_exit_2() {
    let data = std::env::temp_dir().join(common::unique("names"));
    let data_dir = data.to_str().unwrap().to_owned();
    let env = [("NSCACHE_DATA_DIR", data_dir.as_str())];
    let add = |args: &[&str]| {
        let mut all = vec!["user", "add"];
        all.extend_from_slice(args);
        all.push("--password-stdin");
        nscache(&env, &all, "correct horse battery\n")
    };
    let admin = add(&["admin", "--admin"]);
    assert_eq!(admin.status.code(), Some(0), "{}", text(&admin));
    for (args, says) in [
        (vec!["Admin"], "look-alike"),
        (
            vec!["\u{ff21}\u{ff24}\u{ff2d}\u{ff29}\u{ff2e}"],
            "look-alike",
        ),
        (vec!["a\u{202e}b"], "U+202E"),
        (vec!["eve", "--user-id", "2\u{202e}"], "U+202E"),
    ] {
        let o = add(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    let _ = std::fs::remove_dir_all(data);
}
