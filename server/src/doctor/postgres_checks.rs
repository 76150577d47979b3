//! The Postgres checks of the doctor: reachable, migrations, the flag
//! column (`BOOLEAN NOT NULL DEFAULT TRUE`) and its index on the configured
//! profile table, users with the cache off, and the table watcher's
//! triggers. Read from the catalogs (`pg_attribute`, `pg_index`,
//! `pg_trigger`): a few small queries.

use std::str::FromStr;
use std::time::Duration;

use nscache::Settings;
use nscache::sql::ProfileTable;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::Check;
use crate::directory::migration_names;

const IDS: &[&str] = &[
    "pg.reachable",
    "pg.migrations",
    "pg.flag_column",
    "pg.flag_index",
    "pg.disabled_users",
    "pg.watchers",
];

fn skip_from(out: &mut Vec<Check>, from: usize, why: &str) {
    for id in &IDS[from..] {
        out.push(Check::skip(id, why));
    }
}

/// Run the checks on `pool`, or on a pool to `settings.database_url`.
pub(super) async fn run(settings: &Settings, pool: Option<PgPool>, out: &mut Vec<Check>) {
    let profiles = match settings.profile_table() {
        Ok(p) => p,
        Err(e) => {
            out.push(Check::fail(
                "pg.reachable",
                e.to_string(),
                "correct --profile-table / --profile-user-column / --profile-flag-column",
            ));
            skip_from(out, 1, "bad profile table settings");
            return;
        }
    };
    let pool = match (pool, &settings.database_url) {
        (Some(pool), _) => pool,
        (None, Some(url)) => match PgConnectOptions::from_str(url) {
            Ok(options) => PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(settings.connect_timeout.min(Duration::from_secs(10)))
                .connect_lazy_with(options),
            Err(e) => {
                out.push(Check::fail(
                    "pg.reachable",
                    format!("DATABASE_URL is not a Postgres URL: {e}"),
                    "DATABASE_URL=postgres://USER@HOST:5432/DB",
                ));
                skip_from(out, 1, "no usable DATABASE_URL");
                return;
            }
        },
        (None, None) => {
            out.push(Check::warn(
                "pg.reachable",
                "DATABASE_URL is not set: accounts and cache flags live in the embedded SQLite file, not in the application's profile table",
                "DATABASE_URL=postgres://USER@HOST:5432/DB nscache --profile-table core_userprofile migrate",
            ));
            skip_from(out, 1, "no Postgres configured");
            return;
        }
    };
    let shown = settings
        .database_url
        .as_deref()
        .map(nscache::settings::redact_url)
        .unwrap_or_else(|| "the directory's database".to_owned());
    let version: Result<String, sqlx::Error> = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await;
    match version {
        Ok(v) => out.push(Check::ok(
            "pg.reachable",
            format!("{shown} answers (PostgreSQL {v})"),
        )),
        Err(e) => {
            out.push(Check::fail(
                "pg.reachable",
                format!("cannot reach {shown}: {e}"),
                format!("start Postgres or correct DATABASE_URL, then: pg_isready -d '{shown}'"),
            ));
            skip_from(out, 1, "Postgres is unreachable");
            return;
        }
    }
    match checks(&pool, &profiles, out).await {
        Ok(()) => {}
        Err(e) => {
            let done = out.iter().filter(|c| IDS.contains(&c.id.as_str())).count();
            for id in &IDS[done..] {
                out.push(Check::fail(
                    id,
                    format!("query failed: {e}"),
                    "grant this user read access to the catalogs and the profile table",
                ));
            }
        }
    }
}

async fn checks(
    pool: &PgPool,
    profiles: &ProfileTable,
    out: &mut Vec<Check>,
) -> Result<(), sqlx::Error> {
    // Migrations.
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('nscache_schema_migrations')::text")
            .fetch_one(pool)
            .await?;
    let applied: Vec<String> = if recorded.is_some() {
        sqlx::query_scalar("SELECT name FROM nscache_schema_migrations")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    let missing: Vec<String> = migration_names(profiles)
        .into_iter()
        .filter(|m| !applied.contains(m))
        .collect();
    out.push(if missing.is_empty() {
        Check::ok(
            "pg.migrations",
            format!("applied: {}", migration_names(profiles).join(", ")),
        )
    } else {
        Check::fail(
            "pg.migrations",
            format!("not applied: {}", missing.join(", ")),
            "nscache migrate (with the same --profile-table as the server)",
        )
    });

    // The flag column.
    let table = profiles.table.to_string();
    let flag = profiles.flag_column.name().to_owned();
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(pool)
        .await?;
    if exists.is_none() {
        out.push(Check::fail(
            "pg.flag_column",
            format!("the profile table {table} does not exist"),
            "nscache migrate (nscache's own table), or name the application's with --profile-table",
        ));
        skip_from(out, 3, "no profile table");
        return Ok(());
    }
    let column = sqlx::query(
        "SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null, \
                pg_get_expr(d.adbin, d.adrelid) AS default_value \
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
    )
    .bind(&table)
    .bind(&flag)
    .fetch_optional(pool)
    .await?;
    let Some(column) = column else {
        out.push(Check::fail(
            "pg.flag_column",
            format!("{table} has no column {flag}"),
            format!("nscache migrate (adds it), or: ALTER TABLE {table} ADD COLUMN {flag} BOOLEAN NOT NULL DEFAULT TRUE;"),
        ));
        skip_from(out, 3, "no flag column");
        return Ok(());
    };
    let ty: String = column.try_get("type")?;
    let not_null: bool = column.try_get("not_null")?;
    let default: Option<String> = column.try_get("default_value")?;
    let mut wrong = Vec::new();
    let mut fixes = Vec::new();
    if ty != "boolean" {
        wrong.push(format!("its type is {ty}"));
        fixes.push(format!(
            "ALTER TABLE {table} ALTER COLUMN {flag} TYPE BOOLEAN USING {flag}::boolean;"
        ));
    }
    if !not_null {
        wrong.push("it is nullable (a NULL flag reads as neither on nor off)".to_owned());
        fixes.push(format!(
            "UPDATE {table} SET {flag} = TRUE WHERE {flag} IS NULL; ALTER TABLE {table} ALTER COLUMN {flag} SET NOT NULL;"
        ));
    }
    if default.as_deref() != Some("true") {
        wrong.push(format!(
            "its default is {}",
            default.as_deref().unwrap_or("none")
        ));
        fixes.push(format!(
            "ALTER TABLE {table} ALTER COLUMN {flag} SET DEFAULT TRUE;"
        ));
    }
    out.push(if wrong.is_empty() {
        Check::ok(
            "pg.flag_column",
            format!("{table}.{flag} is BOOLEAN NOT NULL DEFAULT TRUE"),
        )
    } else {
        Check::fail(
            "pg.flag_column",
            format!(
                "{table}.{flag} should be BOOLEAN NOT NULL DEFAULT TRUE, but {}",
                wrong.join(", ")
            ),
            fixes.join("\n"),
        )
    });

    // Its index.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = to_regclass($1) AND a.attname = $2",
    )
    .bind(&table)
    .bind(&flag)
    .fetch_all(pool)
    .await?;
    out.push(if indexes.is_empty() {
        Check::fail(
            "pg.flag_index",
            format!("no index on {table}.{flag}"),
            format!(
                "CREATE INDEX CONCURRENTLY {} ON {table} ({flag});",
                profiles.index_name()
            ),
        )
    } else {
        Check::ok("pg.flag_index", format!("indexed ({})", indexes.join(", ")))
    });

    // Users with the cache off.
    let off: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE {} = FALSE",
        profiles.flag_column
    ))
    .fetch_one(pool)
    .await?;
    let all: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await?;
    out.push(Check::ok(
        "pg.disabled_users",
        format!("{off} of {all} users have the cache turned off"),
    ));

    // The table watcher's triggers.
    let registry: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('nscache_watched_tables')::text")
            .fetch_one(pool)
            .await?;
    let watched: Vec<(String, String, Option<i64>)> = if registry.is_some() {
        sqlx::query(
            "SELECT name, relation, to_regclass(relation)::oid::bigint AS oid FROM nscache_watched_tables ORDER BY name",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("relation")?, r.try_get("oid")?)))
        .collect::<Result<_, sqlx::Error>>()?
    } else {
        Vec::new()
    };
    let triggers: Vec<(i64, String, String)> = sqlx::query(
        "SELECT t.tgrelid::bigint AS oid, t.tgrelid::regclass::text AS relation, t.tgname::text AS name \
         FROM pg_trigger t WHERE NOT t.tgisinternal \
           AND t.tgname IN ('nscache_watch', 'nscache_watch_truncate') \
           AND pg_table_is_visible(t.tgrelid)",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("oid")?, r.try_get("relation")?, r.try_get("name")?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut unwatched_writes = false;
    for (name, relation, oid) in &watched {
        let has = |trigger: &str| {
            triggers
                .iter()
                .any(|(o, _, n)| Some(*o) == *oid && n == trigger)
        };
        if !(has("nscache_watch") && has("nscache_watch_truncate")) {
            unwatched_writes = true;
            problems.push(format!(
                "{name} ({relation}) is watched but its triggers are missing: writes to it no longer invalidate its cached queries"
            ));
            fixes.push(format!("nscache watch-table {name} --relation {relation}"));
        }
    }
    let mut left: Vec<&String> = triggers
        .iter()
        .filter(|(o, _, _)| !watched.iter().any(|(_, _, w)| *w == Some(*o)))
        .map(|(_, relation, _)| relation)
        .collect();
    left.sort();
    left.dedup();
    for relation in left {
        problems.push(format!(
            "{relation} has nscache triggers but is not watched"
        ));
        fixes.push(format!(
            "DROP TRIGGER IF EXISTS nscache_watch ON {relation}; DROP TRIGGER IF EXISTS nscache_watch_truncate ON {relation};"
        ));
    }
    out.push(if problems.is_empty() {
        Check::ok(
            "pg.watchers",
            if watched.is_empty() {
                "no watched tables, no triggers left".to_owned()
            } else {
                format!(
                    "triggers installed for {}",
                    watched
                        .iter()
                        .map(|(n, _, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        )
    } else if unwatched_writes {
        Check::fail("pg.watchers", problems.join("; "), fixes.join("\n"))
    } else {
        Check::warn("pg.watchers", problems.join("; "), fixes.join("\n"))
    });
    Ok(())
}
