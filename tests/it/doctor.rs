//! `nscache doctor`, `flush` and `purge`: each failing situation built on a
//! private `redis-server` or a fresh Postgres schema, and the check's
//! verdict and fix asserted; a healthy setup exits 0.

use std::process::ExitCode;

use clap::Parser;
use nscache::{Cache, Expiry, Settings};
use nscache_server::cli::{Cli, run};
use nscache_server::doctor::{DoctorOptions, Report, Status};
use nscache_tests::RedisServer;
use nscache_tests::server::{PgSchema, postgres_url};

/// Every check the doctor reports, in order.
const EVERY_CHECK: &[&str] = &[
    "redis.reachable",
    "redis.version",
    "redis.config",
    "redis.maxmemory",
    "redis.eviction_policy",
    "redis.persistence",
    "redis.maxclients",
    "redis.latency",
    "redis.cluster",
    "db.allocation",
    "db.tests",
    "keys.collisions",
    "keys.invoice_sequences",
    "keys.cron_locks",
    "keys.counters_persistence",
    "pg.reachable",
    "pg.migrations",
    "pg.flag_column",
    "pg.flag_index",
    "pg.disabled_users",
    "pg.watchers",
    "component.loads",
    "component.settings",
];

fn settings(redis_url: Option<String>, database_url: Option<String>) -> Settings {
    Settings {
        redis_url,
        database_url,
        pool_size: 4,
        ..Settings::default()
    }
}

async fn doctor(settings: &Settings) -> Report {
    nscache_server::doctor::run(
        settings,
        &DoctorOptions {
            scan: true,
            postgres: None,
            cache: None,
        },
    )
    .await
}

fn verdict<'a>(report: &'a Report, id: &str) -> &'a nscache_server::doctor::Check {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#?}"))
}

fn fix(report: &Report, id: &str) -> String {
    verdict(report, id).fix.clone().unwrap_or_default()
}

/// Run the CLI in process; returns the exit code and what it printed.
async fn cli(args: &[&str]) -> (Result<ExitCode, (u8, String)>, String) {
    let cli = Cli::try_parse_from(std::iter::once("nscache").chain(args.iter().copied()))
        .expect("arguments parse");
    let mut out = Vec::new();
    let result = run(cli, &mut out).await.map_err(|f| (f.code, f.message));
    (result, String::from_utf8(out).expect("utf-8 output"))
}

async fn cache_on(url: &str) -> Cache {
    Cache::builder()
        .settings(settings(Some(url.to_owned()), None))
        .build()
        .await
        .expect("cache")
}

async fn migrated_schema() -> PgSchema {
    let schema = PgSchema::create().await;
    let (code, out) = cli(&["--database-url", &schema.url(), "migrate"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    schema
}

#[tokio::test]
async fn a_healthy_setup_exits_0_and_json_lists_every_check() {
    let redis = RedisServer::start(&[
        "--maxmemory",
        "64mb",
        "--maxmemory-policy",
        "allkeys-lru",
        "--appendonly",
        "yes",
    ]);
    let schema = migrated_schema().await;
    let cache = cache_on(&redis.url(1)).await;
    cache
        .global()
        .add("invoice_seq:2026", "41", Expiry::Never)
        .await
        .unwrap();
    cache
        .user("42")
        .set("k", "v", Expiry::Default)
        .await
        .unwrap();

    let (code, out) = cli(&[
        "--redis-url",
        &redis.url(1),
        "--database-url",
        &schema.url(),
        "--pool-size",
        "8",
        "doctor",
        "--json",
    ])
    .await;
    let report: Report = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{}", report.render());
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, EVERY_CHECK);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    for check in json["checks"].as_array().unwrap() {
        assert!(
            ["ok", "warn", "fail", "skip"].contains(&check["status"].as_str().unwrap()),
            "{check}"
        );
    }
    for id in EVERY_CHECK.iter().filter(|id| **id != "redis.latency") {
        assert_eq!(
            verdict(&report, id).status,
            Status::Ok,
            "{}",
            report.render()
        );
    }
    assert!(
        verdict(&report, "component.loads")
            .message
            .contains("nscache:cache@0.1.0"),
        "{}",
        report.render()
    );
    assert!(
        verdict(&report, "keys.invoice_sequences")
            .message
            .contains("1 sequences")
    );

    // The text form: one line per check; --no-scan skips the key checks.
    let (code, out) = cli(&[
        "--redis-url",
        &redis.url(1),
        "--database-url",
        &schema.url(),
        "doctor",
        "--no-scan",
    ])
    .await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    assert!(out.contains("✓ redis.eviction_policy"), "{out}");
    assert!(out.contains("· keys.cron_locks"), "{out}");
    schema.drop().await;
}

#[tokio::test]
async fn noeviction_is_a_warning_with_the_policy_to_set() {
    let redis = RedisServer::start(&["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"]);
    let report = doctor(&settings(Some(redis.url(1)), None)).await;
    let check = verdict(&report, "redis.eviction_policy");
    assert_eq!(check.status, Status::Warn, "{}", report.render());
    assert!(
        check.message.contains("every write fails"),
        "{}",
        check.message
    );
    assert!(
        fix(&report, "redis.eviction_policy").contains("CONFIG SET maxmemory-policy allkeys-lru")
    );
    assert_eq!(report.exit_code(false), 0, "warnings alone exit 0");
    assert_eq!(report.exit_code(true), 1, "--strict");
}

#[tokio::test]
async fn a_renamed_config_command_is_reported_and_info_still_read() {
    let redis = RedisServer::start(&[
        "--maxmemory-policy",
        "volatile-lru",
        "--rename-command",
        "CONFIG",
        "",
    ]);
    let report = doctor(&settings(Some(redis.url(1)), None)).await;
    let config = verdict(&report, "redis.config");
    assert_eq!(config.status, Status::Warn, "{}", report.render());
    assert!(
        config.message.contains("CONFIG is disabled"),
        "{}",
        config.message
    );
    assert!(fix(&report, "redis.config").contains("provider disables CONFIG"));
    let policy = verdict(&report, "redis.eviction_policy");
    assert_eq!(policy.status, Status::Ok);
    assert!(
        policy.message.contains("volatile-lru"),
        "read from INFO: {}",
        policy.message
    );
    let persistence = verdict(&report, "redis.persistence");
    assert_eq!(persistence.status, Status::Warn);
    assert!(
        persistence.message.contains("unknown"),
        "{}",
        persistence.message
    );
}

#[tokio::test]
async fn a_cron_lock_without_ttl_is_a_stuck_lock_with_value_and_idle_time() {
    let redis = RedisServer::start(&[]);
    let cache = cache_on(&redis.url(1)).await;
    cache
        .global()
        .set("cron:full_backup:run_lock", "worker-7", Expiry::Never)
        .await
        .unwrap();
    cache
        .global()
        .add("cron:clear_cache:run_lock", "worker-8", Expiry::secs(600))
        .await
        .unwrap();
    let report = doctor(&settings(Some(redis.url(1)), None)).await;
    let check = verdict(&report, "keys.cron_locks");
    assert_eq!(check.status, Status::Fail, "{}", report.render());
    assert!(check.scan);
    assert!(check.message.contains("1 stuck locks"), "{}", check.message);
    assert!(
        check
            .message
            .contains("cron:full_backup:run_lock = \"worker-7\", idle "),
        "{}",
        check.message
    );
    assert!(
        !check.message.contains("clear_cache"),
        "a lock with a TTL is held, not stuck"
    );
    assert_eq!(
        fix(&report, "keys.cron_locks"),
        "check that no job holds it, then: nscache delete cron:full_backup:run_lock"
    );
    assert_eq!(report.exit_code(false), 1);
    // Without persistence, counters and locks get a warning.
    let persistence = verdict(&report, "keys.counters_persistence");
    assert_eq!(persistence.status, Status::Warn);
    assert!(fix(&report, "keys.counters_persistence").contains("CONFIG SET appendonly yes"));

    // Under LFU Redis keeps no idle time: "unknown".
    let lfu = RedisServer::start(&["--maxmemory-policy", "allkeys-lfu"]);
    cache_on(&lfu.url(1))
        .await
        .global()
        .set("cron:full_backup:run_lock", "worker-7", Expiry::Never)
        .await
        .unwrap();
    let report = doctor(&settings(Some(lfu.url(1)), None)).await;
    let check = verdict(&report, "keys.cron_locks");
    assert_eq!(check.status, Status::Fail);
    assert!(
        check
            .message
            .contains("idle time unknown (maxmemory-policy allkeys-lfu"),
        "{}",
        check.message
    );
}

#[tokio::test]
async fn a_non_integer_invoice_sequence_fails_with_the_command_to_reset_it() {
    let redis = RedisServer::start(&[]);
    let cache = cache_on(&redis.url(1)).await;
    cache
        .global()
        .set("invoice_seq:2026", "abc", Expiry::Never)
        .await
        .unwrap();
    let report = doctor(&settings(Some(redis.url(1)), None)).await;
    let check = verdict(&report, "keys.invoice_sequences");
    assert_eq!(check.status, Status::Fail, "{}", report.render());
    assert!(
        check.message.contains("invoice_seq:2026 = \"abc\""),
        "{}",
        check.message
    );
    assert!(
        fix(&report, "keys.invoice_sequences")
            .starts_with("nscache set invoice_seq:2026 N --ttl none"),
        "{}",
        fix(&report, "keys.invoice_sequences")
    );
}

#[tokio::test]
async fn the_task_queue_database_is_refused() {
    let redis = RedisServer::start(&[]);
    let report = doctor(&settings(Some(redis.url(0)), None)).await;
    let check = verdict(&report, "db.allocation");
    assert_eq!(check.status, Status::Fail, "{}", report.render());
    assert!(
        check.message.contains("database 0, the task queue's"),
        "{}",
        check.message
    );
    assert!(fix(&report, "db.allocation").starts_with("REDIS_URL=redis://HOST:6379/1"));
    // flush and purge refuse it too.
    let (code, _) = cli(&["--redis-url", &redis.url(0), "flush", "--cache", "--yes"]).await;
    let (exit, message) = code.expect_err("refused");
    assert_eq!(exit, 2);
    assert!(message.contains("task queue"), "{message}");
}

#[tokio::test]
async fn a_missing_migration_fails_with_migrate_as_the_fix() {
    let schema = PgSchema::create().await;
    let report = doctor(&settings(None, Some(schema.url()))).await;
    assert_eq!(
        verdict(&report, "pg.reachable").status,
        Status::Ok,
        "{}",
        report.render()
    );
    let migrations = verdict(&report, "pg.migrations");
    assert_eq!(migrations.status, Status::Fail);
    assert!(migrations.message.contains("0001_accounts_sessions_tokens"));
    assert!(fix(&report, "pg.migrations").starts_with("nscache migrate"));
    let column = verdict(&report, "pg.flag_column");
    assert_eq!(column.status, Status::Fail);
    assert!(
        column.message.contains("does not exist"),
        "{}",
        column.message
    );
    schema.drop().await;
}

async fn profile_table(ddl: &str) -> (PgSchema, Settings) {
    let schema = PgSchema::create().await;
    let pool = schema.pool().await;
    sqlx::raw_sql(ddl).execute(&pool).await.unwrap();
    let mut settings = settings(None, Some(schema.url()));
    settings.profile_table = Some("core_userprofile".into());
    (schema, settings)
}

#[tokio::test]
async fn a_nullable_flag_column_fails_with_the_sql_to_fix_it() {
    let (schema, settings) = profile_table(
        "CREATE TABLE core_userprofile (user_id TEXT PRIMARY KEY, cache_enabled BOOLEAN DEFAULT TRUE);
         CREATE INDEX core_userprofile_cache_enabled_idx ON core_userprofile (cache_enabled)",
    )
    .await;
    let report = doctor(&settings).await;
    let check = verdict(&report, "pg.flag_column");
    assert_eq!(check.status, Status::Fail, "{}", report.render());
    assert!(check.message.contains("nullable"), "{}", check.message);
    assert_eq!(
        fix(&report, "pg.flag_column"),
        "UPDATE \"core_userprofile\" SET cache_enabled = TRUE WHERE cache_enabled IS NULL; ALTER TABLE \"core_userprofile\" ALTER COLUMN cache_enabled SET NOT NULL;"
    );
    assert_eq!(verdict(&report, "pg.flag_index").status, Status::Ok);
    schema.drop().await;
}

#[tokio::test]
async fn a_missing_index_fails_with_the_create_index_to_run() {
    let (schema, settings) = profile_table(
        "CREATE TABLE core_userprofile (user_id TEXT PRIMARY KEY, cache_enabled BOOLEAN NOT NULL DEFAULT TRUE);
         INSERT INTO core_userprofile VALUES ('1', TRUE), ('2', FALSE), ('3', FALSE)",
    )
    .await;
    let report = doctor(&settings).await;
    assert_eq!(
        verdict(&report, "pg.flag_column").status,
        Status::Ok,
        "{}",
        report.render()
    );
    let check = verdict(&report, "pg.flag_index");
    assert_eq!(check.status, Status::Fail);
    assert_eq!(
        fix(&report, "pg.flag_index"),
        "CREATE INDEX CONCURRENTLY \"core_userprofile_cache_enabled_idx\" ON \"core_userprofile\" (cache_enabled);"
    );
    assert!(
        verdict(&report, "pg.disabled_users")
            .message
            .starts_with("2 of 3 users"),
        "{}",
        report.render()
    );
    schema.drop().await;
}

#[tokio::test]
async fn an_unreachable_postgres_fails_and_skips_the_rest() {
    let url = postgres_url().replace("127.0.0.1:5432", "127.0.0.1:1");
    assert_ne!(url, postgres_url(), "the test URL names 127.0.0.1:5432");
    let report = doctor(&settings(None, Some(url))).await;
    let check = verdict(&report, "pg.reachable");
    assert_eq!(check.status, Status::Fail, "{}", report.render());
    assert!(
        check.message.starts_with("cannot reach"),
        "{}",
        check.message
    );
    assert!(fix(&report, "pg.reachable").contains("pg_isready"));
    for id in [
        "pg.migrations",
        "pg.flag_column",
        "pg.flag_index",
        "pg.watchers",
    ] {
        assert_eq!(verdict(&report, id).status, Status::Skip, "{id}");
    }
}

/// Every key of the server's database 1.
async fn all_keys(url: &str) -> Vec<String> {
    let mut conn = nscache_tests::raw_connection(url).await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn flush_cache_leaves_the_invoice_sequence_and_include_global_lists_it_first() {
    let redis = RedisServer::start(&[]);
    let url = redis.url(1);
    let cache = cache_on(&url).await;
    cache
        .global()
        .add("invoice_seq:2026", "41", Expiry::Never)
        .await
        .unwrap();
    cache.global().incr("invoice_seq:2026", 1).await.unwrap();
    for user in ["42", "7"] {
        cache
            .user(user)
            .set("a", "1", Expiry::Default)
            .await
            .unwrap();
        cache.invalidate_user(user).await.unwrap();
        cache
            .user(user)
            .set("b", "2", Expiry::Default)
            .await
            .unwrap();
    }
    cache.invalidate_table("invoices").await.unwrap();

    let (code, out) = cli(&["--redis-url", &url, "flush", "--cache", "--yes"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    assert!(out.contains("from database 1"), "{out}");
    let left = all_keys(&url).await;
    assert!(
        left.contains(&"revisbali:1:invoice_seq:2026".to_owned()),
        "{left:?}"
    );
    assert!(
        left.iter().all(|k| !k.starts_with("cache:")
            && !k.starts_with("cache_user_version")
            && !k.starts_with("cache_table_version")),
        "{left:?}"
    );
    assert!(
        left.contains(&"cache_version_clock".to_owned()),
        "the clock stays: {left:?}"
    );
    assert_eq!(
        cache
            .global()
            .get("invoice_seq:2026")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"42"[..])
    );
    assert_eq!(cache.user("42").get("b").await.unwrap(), None);

    let (code, out) = cli(&[
        "--redis-url",
        &url,
        "flush",
        "--cache",
        "--include-global",
        "--yes",
    ])
    .await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    let listed = out
        .find("  invoice_seq:2026 = 42")
        .expect("the counter is listed");
    let removed = out.find("removed ").expect("then removed");
    assert!(listed < removed, "{out}");
    assert_eq!(cache.global().get("invoice_seq:2026").await.unwrap(), None);
}

#[tokio::test]
async fn flush_queries_removes_only_query_results() {
    let redis = RedisServer::start(&[]);
    let url = redis.url(1);
    let cache = cache_on(&url).await;
    cache
        .user("42")
        .set("plain", "1", Expiry::Default)
        .await
        .unwrap();
    let loaded: Vec<u32> = cache
        .user("42")
        .get_or_load_json("SELECT 1", &[1], &["invoices"], Expiry::Default, || async {
            Ok::<_, std::io::Error>(vec![1u32])
        })
        .await
        .unwrap();
    assert_eq!(loaded, [1]);
    assert!(
        all_keys(&url)
            .await
            .iter()
            .any(|k| k.contains(":cacheops:"))
    );
    let (code, out) = cli(&["--redis-url", &url, "flush", "--queries", "--yes"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    let left = all_keys(&url).await;
    assert!(left.iter().all(|k| !k.contains(":cacheops:")), "{left:?}");
    assert!(left.iter().any(|k| k.ends_with(":data:plain")), "{left:?}");
    assert_eq!(
        cache.user("42").get("plain").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

#[tokio::test]
async fn purge_user_42_removes_every_key_of_42_and_no_other() {
    let redis = RedisServer::start(&[]);
    let url = redis.url(1);
    let cache = cache_on(&url).await;
    for user in ["42", "420", "4", "7"] {
        cache
            .user(user)
            .set("a", "1", Expiry::Default)
            .await
            .unwrap();
        cache.invalidate_user(user).await.unwrap();
        cache
            .user(user)
            .set("b", "2", Expiry::Default)
            .await
            .unwrap();
    }
    cache
        .global()
        .set("user:42:note", "global", Expiry::Never)
        .await
        .unwrap();
    let before = all_keys(&url).await;
    let of_42 = |k: &&String| k.starts_with("cache:42:") || k.as_str() == "cache_user_version:42";
    let mine: Vec<&String> = before.iter().filter(of_42).collect();
    assert!(
        mine.len() >= 3,
        "two versions' entries and the version key: {before:?}"
    );

    let (code, out) = cli(&["--redis-url", &url, "purge", "--user", "42"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    assert!(
        out.starts_with(&format!("removed {} keys of user \"42\"", mine.len())),
        "{out}"
    );
    let after = all_keys(&url).await;
    assert!(after.iter().all(|k| !of_42(&k)), "{after:?}");
    let others_before: Vec<&String> = before.iter().filter(|k| !of_42(k)).collect();
    let others_after: Vec<&String> = after.iter().collect();
    assert_eq!(others_before, others_after, "no other key touched");
    assert_eq!(cache.user("42").get("b").await.unwrap(), None);
    assert_eq!(
        cache.user("420").get("b").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
}

#[tokio::test]
async fn watcher_triggers_missing_or_left_behind_are_reported() {
    let schema = migrated_schema().await;
    let pool = schema.pool().await;
    sqlx::query("CREATE TABLE invoices (id INT)")
        .execute(&pool)
        .await
        .unwrap();
    let url = schema.url();
    let (code, out) = cli(&["--database-url", &url, "watch-table", "invoices"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    let report = doctor(&settings(None, Some(url.clone()))).await;
    let check = verdict(&report, "pg.watchers");
    assert_eq!(check.status, Status::Ok, "{}", report.render());
    assert_eq!(check.message, "triggers installed for invoices");

    // A watched table whose trigger was dropped: writes no longer invalidate.
    sqlx::query("DROP TRIGGER nscache_watch ON invoices")
        .execute(&pool)
        .await
        .unwrap();
    let report = doctor(&settings(None, Some(url.clone()))).await;
    assert_eq!(
        verdict(&report, "pg.watchers").status,
        Status::Fail,
        "{}",
        report.render()
    );
    assert_eq!(
        fix(&report, "pg.watchers"),
        "nscache watch-table invoices --relation \"invoices\""
    );

    // Triggers left on a table nobody watches any more.
    let (code, out) = cli(&["--database-url", &url, "watch-table", "invoices"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    sqlx::query("DELETE FROM nscache_watched_tables")
        .execute(&pool)
        .await
        .unwrap();
    let report = doctor(&settings(None, Some(url))).await;
    assert_eq!(
        verdict(&report, "pg.watchers").status,
        Status::Warn,
        "{}",
        report.render()
    );
    assert_eq!(
        fix(&report, "pg.watchers"),
        "DROP TRIGGER IF EXISTS nscache_watch ON invoices; DROP TRIGGER IF EXISTS nscache_watch_truncate ON invoices;"
    );
    schema.drop().await;
}

#[tokio::test]
async fn keys_of_the_previous_hybrid_cache_and_cacheops_are_collisions() {
    let redis = RedisServer::start(&[]);
    let url = redis.url(1);
    let mut conn = nscache_tests::raw_connection(&url).await;
    // What django-redis + cacheops left: a small version number, a pickled
    // entry under it, cacheops' query and conjunction keys.
    let _: () = redis::pipe()
        .set("cache_user_version:42", "3")
        .set("cache:42:v3:data:profile", b"\x80\x05\x95\x00".as_slice())
        .set("q:5f1e", "x")
        .sadd("conj:invoices:id=1", "q:5f1e")
        .query_async(&mut conn)
        .await
        .unwrap();
    cache_on(&url)
        .await
        .user("7")
        .set("k", "v", Expiry::Default)
        .await
        .unwrap();
    let report = doctor(&settings(Some(url.clone()), None)).await;
    let check = verdict(&report, "keys.collisions");
    assert_eq!(check.status, Status::Warn, "{}", report.render());
    assert!(
        check
            .message
            .contains("1 version keys hold numbers nscache never draws")
            && check.message.contains("cache_user_version:42 = \"3\""),
        "{}",
        check.message
    );
    assert!(
        check.message.contains("2 cacheops keys"),
        "{}",
        check.message
    );
    assert!(fix(&report, "keys.collisions").starts_with("nscache flush --cache"));

    let (code, out) = cli(&["--redis-url", &url, "flush", "--cache", "--yes"]).await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
    let left = all_keys(&url).await;
    assert!(
        !left.contains(&"cache_user_version:42".to_owned()),
        "{left:?}"
    );
    assert!(
        !left.contains(&"cache:42:v3:data:profile".to_owned()),
        "{left:?}"
    );
    assert!(
        left.contains(&"q:5f1e".to_owned()),
        "not nscache's: left alone: {left:?}"
    );
}

#[tokio::test]
async fn the_pool_times_the_processes_is_compared_with_maxclients() {
    let redis = RedisServer::start(&["--maxclients", "100"]);
    let (code, out) = cli(&[
        "--redis-url",
        &redis.url(1),
        "--database-url=",
        "--pool-size",
        "50",
        "--processes",
        "3",
        "doctor",
        "--json",
        "--no-scan",
    ])
    .await;
    let report: Report = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(code, Ok(ExitCode::from(1)), "a failure exits 1");
    let check = verdict(&report, "redis.maxclients");
    assert_eq!(check.status, Status::Fail, "{}", report.render());
    assert!(
        check
            .message
            .starts_with("pool-size 50 × processes 3 = 150 connections; maxclients 100"),
        "{}",
        check.message
    );
    assert!(fix(&report, "redis.maxclients").contains("CONFIG SET maxclients 300"));

    // --task-queue-db names the queue's database: that one is refused, 1 is not.
    let (code, _) = cli(&[
        "--redis-url",
        &redis.url(3),
        "--task-queue-db",
        "3",
        "flush",
        "--cache",
        "--yes",
    ])
    .await;
    assert_eq!(code.expect_err("refused").0, 2);
    let (code, out) = cli(&[
        "--redis-url",
        &redis.url(1),
        "--task-queue-db",
        "3",
        "flush",
        "--cache",
        "--yes",
    ])
    .await;
    assert_eq!(code, Ok(ExitCode::SUCCESS), "{out}");
}
