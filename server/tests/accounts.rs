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
