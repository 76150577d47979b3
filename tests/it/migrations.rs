//! Postgres migrations: schema, idempotence, an existing application table.

use nscache_server::directory::{Directory, PostgresDirectory, ProfileTable, Role};
use nscache_tests::server::PgSchema;
use sqlx::Row;

async fn columns_and_indexes(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    let mut out: Vec<String> = sqlx::query(
        "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') AS d FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| format!("{}.{} {} null={} default={}", r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2), r.get::<String, _>(3), r.get::<String, _>(4)))
    .collect();
    out.extend(
        sqlx::query_scalar::<_, String>(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(pool)
        .await
        .unwrap(),
    );
    out
}

#[tokio::test]
async fn a_fresh_database_gets_the_schema_and_a_second_run_changes_nothing() {
    let schema = PgSchema::create().await;
    let pool = schema.pool().await;
    let dir =
        PostgresDirectory::with_options(schema.options(), ProfileTable::default(), "test".into());
    let first = dir.migrate().await.unwrap();
    assert_eq!(first.applied.len(), 3, "{first:?}");

    let flag = sqlx::query("SELECT data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'nscache_user_profiles' AND column_name = 'cache_enabled'")
        .bind(&schema.name)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(flag.get::<String, _>(0), "boolean");
    assert_eq!(flag.get::<String, _>(1), "NO", "NOT NULL");
    assert_eq!(flag.get::<String, _>(2), "true", "DEFAULT TRUE");
    let index: Vec<String> = sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'nscache_user_profiles' AND indexdef LIKE '%cache_enabled%'")
        .bind(&schema.name)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(index.len(), 1, "an index on cache_enabled");
    for table in [
        "nscache_accounts",
        "nscache_sessions",
        "nscache_api_tokens",
        "nscache_devices",
        "nscache_schema_migrations",
    ] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2").bind(&schema.name).bind(table).fetch_one(&pool).await.unwrap();
        assert_eq!(n, 1, "{table}");
    }

    let before = columns_and_indexes(&pool, &schema.name).await;
    let second = dir.migrate().await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.already.len(), 3);
    assert_eq!(
        columns_and_indexes(&pool, &schema.name).await,
        before,
        "nothing changed"
    );
    schema.drop().await;
}

#[tokio::test]
async fn an_existing_profile_table_gets_the_column_with_true_for_existing_users() {
    let schema = PgSchema::create().await;
    let pool = schema.pool().await;
    // The reference application's table, before migration 0022.
    sqlx::query("CREATE TABLE core_userprofile (id SERIAL PRIMARY KEY, user_id INTEGER NOT NULL UNIQUE, bio TEXT)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO core_userprofile (user_id, bio) VALUES (1, 'a'), (2, 'b'), (3, NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let profiles = ProfileTable::existing("core_userprofile", "user_id", "cache_enabled").unwrap();
    let dir = PostgresDirectory::with_options(schema.options(), profiles, "test".into());
    dir.migrate().await.unwrap();

    let flags: Vec<bool> =
        sqlx::query_scalar("SELECT cache_enabled FROM core_userprofile ORDER BY user_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        flags,
        vec![true, true, true],
        "existing users get cache_enabled = true"
    );
    let nullable: String = sqlx::query_scalar("SELECT is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'core_userprofile' AND column_name = 'cache_enabled'")
        .bind(&schema.name)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(nullable, "NO");
    let indexed: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'core_userprofile' AND indexdef LIKE '%(cache_enabled)%'")
        .bind(&schema.name)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(indexed, 1);

    // Integer ids are read and written through the existing rows only.
    assert_eq!(dir.cache_enabled("2").await.unwrap(), Some(true));
    dir.set_cache_enabled("2", false).await.unwrap();
    assert_eq!(dir.cache_enabled("2").await.unwrap(), Some(false));
    assert_eq!(dir.cache_enabled("99").await.unwrap(), None);
    assert_eq!(dir.cache_enabled("not-a-number").await.unwrap(), None);
    assert!(
        dir.set_cache_enabled("99", false).await.is_err(),
        "no row is invented in the application's table"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM core_userprofile")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3);
    let page = dir.list_users("", 0, 10).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.users
            .iter()
            .map(|u| (u.user_id.as_str(), u.cache_enabled))
            .collect::<Vec<_>>(),
        vec![("1", true), ("2", false), ("3", true)]
    );
    assert!(dir.migrate().await.unwrap().applied.is_empty());
    // Accounts do not touch the application's table.
    dir.create_account(&nscache_server::directory::NewAccount {
        username: "ops".into(),
        role: Role::Admin,
        user_id: None,
        password_hash: None,
    })
    .await
    .unwrap();
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM core_userprofile")
            .fetch_one(&pool)
            .await
            .unwrap(),
        3
    );
    schema.drop().await;
}

/// Profiles `1`..=`20`, `007`, `alice` and `bob` in `dir`'s own table, then
/// the first page of users: numbers in numeric order, then the rest.
async fn users_in_order(dir: &dyn Directory) -> Vec<String> {
    let mut names: Vec<String> = (1..=20).rev().map(|n| n.to_string()).collect();
    names.extend(["bob", "007", "alice"].map(str::to_owned));
    for name in &names {
        dir.create_account(&nscache_server::directory::NewAccount {
            username: format!("account-{name}"),
            role: Role::User,
            user_id: Some(name.clone()),
            password_hash: None,
        })
        .await
        .unwrap();
    }
    let page = dir.list_users("", 0, 50).await.unwrap();
    page.users.into_iter().map(|u| u.user_id).collect()
}

fn expected_order() -> Vec<String> {
    let mut expected: Vec<String> = (1..=6).map(|n| n.to_string()).collect();
    expected.extend(["007", "7"].map(str::to_owned));
    expected.extend((8..=20).map(|n| n.to_string()));
    expected.extend(["alice", "bob"].map(str::to_owned));
    expected
}

#[tokio::test]
async fn the_users_list_sorts_numeric_ids_as_numbers_on_postgres() {
    let schema = PgSchema::create().await;
    let dir =
        PostgresDirectory::with_options(schema.options(), ProfileTable::default(), "test".into());
    dir.migrate().await.unwrap();
    assert_eq!(users_in_order(&dir).await, expected_order());
    schema.drop().await;
}

#[tokio::test]
async fn the_users_list_sorts_numeric_ids_as_numbers_on_sqlite() {
    let path = std::env::temp_dir()
        .join(nscache_tests::unique("order"))
        .join("nscache.db");
    let dir = nscache_server::directory::SqliteDirectory::open(&path, ProfileTable::default())
        .await
        .unwrap();
    dir.migrate().await.unwrap();
    assert_eq!(users_in_order(&dir).await, expected_order());
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[cfg(unix)]
#[tokio::test]
async fn the_embedded_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir()
        .join(nscache_tests::unique("private"))
        .join("data");
    let path = dir.join("nscache.db");
    let db = nscache_server::directory::SqliteDirectory::open(&path, ProfileTable::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the directory");
    assert_eq!(mode(&path), 0o600, "the database file");
    let wal = dir.join("nscache.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "the write-ahead log");
    }
    // A file created earlier with a looser mode is tightened on open.
    drop(db);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _db = nscache_server::directory::SqliteDirectory::open(&path, ProfileTable::default())
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// The account rules every directory keeps: look-alike names are one name,
/// invisible characters are refused, tokens expire, are listed and revoked,
/// disabled accounts and their credentials are refused, deletion takes
/// sessions, tokens and device cookies with it.
async fn account_rules(dir: &dyn Directory) {
    use nscache_server::directory::{DirectoryError, NewAccount};
    let new = |name: &str, user_id: Option<&str>| NewAccount {
        username: name.into(),
        role: Role::User,
        user_id: user_id.map(str::to_owned),
        password_hash: Some("x".into()),
    };
    let admin = dir.create_account(&new("admin", None)).await.unwrap();
    assert!(admin.user_id.starts_with("account:"), "{}", admin.user_id);
    for look_alike in ["Admin", "ADMIN", "\u{ff21}\u{ff24}\u{ff2d}\u{ff29}\u{ff2e}"] {
        match dir.create_account(&new(look_alike, None)).await {
            Err(DirectoryError::Conflict(m)) => assert!(m.contains("look-alike"), "{m}"),
            other => panic!("{look_alike}: {other:?}"),
        }
    }
    for bad in ["a\u{202e}b", "ad\u{200d}min", "a\u{0007}b"] {
        assert!(
            matches!(
                dir.create_account(&new(bad, None)).await,
                Err(DirectoryError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        dir.account_by_username("ＡＤＭＩＮ")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(admin.id),
        "sign-in names compare the same way"
    );

    let now = 1_900_000_000;
    dir.create_token(admin.id, "forever", b"t1", None)
        .await
        .unwrap();
    dir.create_token(admin.id, "short", b"t2", Some(now + 10))
        .await
        .unwrap();
    assert!(dir.account_by_token(b"t2", now).await.unwrap().is_some());
    assert!(
        dir.account_by_token(b"t2", now + 10)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let tokens = dir.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        (
            tokens[1].label.as_str(),
            tokens[1].owner.as_str(),
            tokens[1].expires_at,
            tokens[1].last_used_at
        ),
        ("short", "admin", Some(now + 10), Some(now))
    );
    assert!(tokens[0].created_at.ends_with('Z'), "{:?}", tokens[0]);
    assert!(dir.revoke_token(tokens[0].id).await.unwrap());
    assert!(!dir.revoke_token(tokens[0].id).await.unwrap());
    assert!(
        dir.account_by_token(b"t1", now).await.unwrap().is_none(),
        "revoked"
    );

    dir.create_session(b"s1", admin.id, "csrf", i64::MAX)
        .await
        .unwrap();
    dir.create_device(b"d1", admin.id, i64::MAX).await.unwrap();
    assert_eq!(
        dir.device_account(b"d1", now).await.unwrap(),
        Some(admin.id)
    );
    dir.set_disabled("Admin", true).await.unwrap();
    assert!(
        dir.session(b"s1", now).await.unwrap().is_none(),
        "sessions end"
    );
    assert!(dir.account_by_username("admin").await.unwrap().is_none());
    dir.create_token(admin.id, "again", b"t3", None)
        .await
        .unwrap();
    assert!(
        dir.account_by_token(b"t3", now).await.unwrap().is_none(),
        "refused while disabled"
    );
    dir.set_disabled("admin", false).await.unwrap();
    assert!(dir.account_by_token(b"t3", now).await.unwrap().is_some());
    dir.create_session(b"s2", admin.id, "csrf", i64::MAX)
        .await
        .unwrap();
    dir.set_password("admin", "y").await.unwrap();
    assert!(
        dir.session(b"s2", now).await.unwrap().is_none(),
        "a new password ends sessions"
    );
    dir.delete_account("admin").await.unwrap();
    assert!(dir.account_by_token(b"t3", now).await.unwrap().is_none());
    assert_eq!(dir.device_account(b"d1", now).await.unwrap(), None);
    assert!(matches!(
        dir.delete_account("admin").await,
        Err(DirectoryError::NotFound(_))
    ));
    assert!(matches!(
        dir.set_password("nobody", "x").await,
        Err(DirectoryError::NotFound(_))
    ));
}

#[tokio::test]
async fn account_rules_hold_on_sqlite_and_postgres() {
    let path = std::env::temp_dir()
        .join(nscache_tests::unique("rules"))
        .join("nscache.db");
    let sqlite = nscache_server::directory::SqliteDirectory::open(&path, ProfileTable::default())
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    account_rules(&sqlite).await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());

    let schema = PgSchema::create().await;
    let pg =
        PostgresDirectory::with_options(schema.options(), ProfileTable::default(), "test".into());
    pg.migrate().await.unwrap();
    account_rules(&pg).await;
    schema.drop().await;
}

#[tokio::test]
async fn an_existing_database_gets_name_keys_and_look_alikes_stop_the_migration() {
    for (names, ok) in [(["alice", "Bob"], true), (["carol", "Carol"], false)] {
        let schema = PgSchema::create().await;
        let pool = schema.pool().await;
        // The schema as migration 0001 left it, with two accounts.
        let dir = PostgresDirectory::with_options(
            schema.options(),
            ProfileTable::default(),
            "test".into(),
        );
        dir.migrate().await.unwrap();
        sqlx::query("DROP INDEX nscache_accounts_username_key_idx")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("ALTER TABLE nscache_accounts DROP COLUMN username_key")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM nscache_schema_migrations WHERE name LIKE '0002%'")
            .execute(&pool)
            .await
            .unwrap();
        for (i, n) in names.iter().enumerate() {
            sqlx::query(
                "INSERT INTO nscache_accounts (username, role, user_id) VALUES ($1, 'user', $2)",
            )
            .bind(n)
            .bind(i.to_string())
            .execute(&pool)
            .await
            .unwrap();
        }
        let result = dir.migrate().await;
        if ok {
            result.unwrap();
            assert!(dir.account_by_username("BOB").await.unwrap().is_some());
        } else {
            let e = result.unwrap_err().to_string();
            assert!(e.contains("carol") && e.contains("Carol"), "{e}");
        }
        schema.drop().await;
    }
}
