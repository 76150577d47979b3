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
