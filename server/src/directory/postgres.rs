//! [`PostgresDirectory`]: the directory in Postgres (sqlx pool).

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::{
    ACCOUNT_NAMESPACE_PREFIX, ACCOUNTS_MIGRATION, AUTH_MIGRATION, Account, Directory,
    DirectoryError, LAST_USED_RESOLUTION, MigrationReport, NewAccount, Role, SessionRecord,
    TokenHolder, TokenInfo, UserPage, UserRow, account_conflict, check_username, like_prefix,
    unix_now, username_key,
};
use nscache::profiles::{FlagStore, PostgresFlags};
use nscache::sql::ProfileTable;

/// The directory in Postgres. The pool connects lazily: the server starts
/// while Postgres is down, and reconnects when it returns.
#[derive(Debug, Clone)]
pub struct PostgresDirectory {
    pool: PgPool,
    profiles: ProfileTable,
    location: String,
    /// The flag column's reads and writes: the library's, on the same pool.
    flags: PostgresFlags,
}

const ACCOUNTS_SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS nscache_accounts (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('user', 'admin', 'service')),
        user_id TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    "CREATE INDEX IF NOT EXISTS nscache_accounts_username_lower_idx ON nscache_accounts (lower(username) text_pattern_ops)",
    "CREATE TABLE IF NOT EXISTS nscache_sessions (
        token_hash BYTEA PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES nscache_accounts (id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS nscache_sessions_expires_at_idx ON nscache_sessions (expires_at)",
    "CREATE TABLE IF NOT EXISTS nscache_api_tokens (
        token_hash BYTEA PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES nscache_accounts (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
];

/// [`AUTH_MIGRATION`], before and after the names' keys are filled in.
const AUTH_SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS nscache_devices (
        token_hash BYTEA PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES nscache_accounts (id) ON DELETE CASCADE,
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS nscache_devices_expires_at_idx ON nscache_devices (expires_at)",
    "ALTER TABLE nscache_api_tokens ADD COLUMN IF NOT EXISTS id BIGSERIAL",
    "CREATE UNIQUE INDEX IF NOT EXISTS nscache_api_tokens_id_idx ON nscache_api_tokens (id)",
    "ALTER TABLE nscache_api_tokens ADD COLUMN IF NOT EXISTS expires_at BIGINT",
    "ALTER TABLE nscache_api_tokens ADD COLUMN IF NOT EXISTS last_used_at BIGINT",
    "ALTER TABLE nscache_accounts ADD COLUMN IF NOT EXISTS disabled BOOLEAN NOT NULL DEFAULT FALSE",
    "ALTER TABLE nscache_accounts ADD COLUMN IF NOT EXISTS username_key TEXT",
];
const AUTH_SQL_AFTER_KEYS: &[&str] = &[
    "ALTER TABLE nscache_accounts ALTER COLUMN username_key SET NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS nscache_accounts_username_key_idx ON nscache_accounts (username_key)",
];

fn account_from(row: &sqlx::postgres::PgRow) -> Result<Account, DirectoryError> {
    let role: String = row.try_get("role")?;
    Ok(Account {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::parse(&role)
            .ok_or_else(|| DirectoryError::Schema(format!("unknown role {role:?}")))?,
        user_id: row.try_get("user_id")?,
        password_hash: row.try_get("password_hash")?,
    })
}

/// Apply [`AUTH_MIGRATION`]: new tables and columns, every account's name
/// key (normalised in Rust, the same function as new accounts use), then its
/// unique index. Two existing names that normalise alike stop the migration
/// with a message naming them.
async fn auth_migration(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), DirectoryError> {
    for sql in AUTH_SQL {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    let rows = sqlx::query("SELECT id, username FROM nscache_accounts")
        .fetch_all(&mut **tx)
        .await?;
    let mut seen = std::collections::HashMap::new();
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let name: String = row.try_get("username")?;
        let key = username_key(&name);
        if let Some(other) = seen.insert(key.clone(), name.clone()) {
            return Err(DirectoryError::Conflict(format!(
                "accounts {other:?} and {name:?} have names that differ only in case or width; rename one, then migrate"
            )));
        }
        sqlx::query("UPDATE nscache_accounts SET username_key = $1 WHERE id = $2")
            .bind(&key)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    for sql in AUTH_SQL_AFTER_KEYS {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

impl PostgresDirectory {
    /// A directory at `url` (`postgres://user@host/db`), profiles in `profiles`.
    pub fn connect(url: &str, profiles: ProfileTable) -> Result<PostgresDirectory, DirectoryError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| DirectoryError::Invalid(format!("bad DATABASE_URL: {e}")))?;
        Ok(PostgresDirectory::with_options(
            options,
            profiles,
            nscache::settings::redact_url(url),
        ))
    }

    /// A directory with explicit connection options (e.g. a `search_path`).
    pub fn with_options(
        options: PgConnectOptions,
        profiles: ProfileTable,
        location: String,
    ) -> PostgresDirectory {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        let flags = PostgresFlags::with_pool(pool.clone(), profiles.clone());
        PostgresDirectory {
            pool,
            profiles,
            location,
            flags,
        }
    }

    /// The connection pool (for the query cache and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Directory for PostgresDirectory {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn application_profiles(&self) -> bool {
        !self.profiles.owned
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        Some(self.pool.clone())
    }

    async fn ping(&self) -> Result<Duration, DirectoryError> {
        let start = Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(start.elapsed())
    }

    async fn migrate(&self) -> Result<MigrationReport, DirectoryError> {
        let p = &self.profiles;
        let profile_sql = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {} ({} TEXT PRIMARY KEY, {} BOOLEAN NOT NULL DEFAULT TRUE)",
                p.table, p.user_column, p.flag_column
            ),
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} BOOLEAN NOT NULL DEFAULT TRUE",
                p.table, p.flag_column
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                p.index_name(),
                p.table,
                p.flag_column
            ),
        ];
        let migrations: Vec<(String, Vec<String>)> = vec![
            (
                ACCOUNTS_MIGRATION.to_owned(),
                ACCOUNTS_SQL.iter().map(|s| s.to_string()).collect(),
            ),
            (p.migration_name(), profile_sql),
            (AUTH_MIGRATION.to_owned(), Vec::new()),
        ];
        let mut tx = self.pool.begin().await?;
        // One migrator at a time, across processes.
        sqlx::query("SELECT pg_advisory_xact_lock(7249861)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS nscache_schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .execute(&mut *tx)
            .await?;
        let mut report = MigrationReport::default();
        for (name, statements) in migrations {
            let done: Option<String> =
                sqlx::query_scalar("SELECT name FROM nscache_schema_migrations WHERE name = $1")
                    .bind(&name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                report.already.push(name);
                continue;
            }
            if name == AUTH_MIGRATION {
                auth_migration(&mut tx).await?;
            }
            for sql in &statements {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO nscache_schema_migrations (name) VALUES ($1)")
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            report.applied.push(name);
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn cache_enabled(&self, user_id: &str) -> Result<Option<bool>, DirectoryError> {
        Ok(self.flags.cache_enabled(user_id).await?)
    }

    async fn set_cache_enabled(&self, user_id: &str, enabled: bool) -> Result<(), DirectoryError> {
        Ok(self.flags.set_cache_enabled(user_id, enabled).await?)
    }

    async fn list_users(
        &self,
        search: &str,
        offset: u64,
        limit: u64,
    ) -> Result<UserPage, DirectoryError> {
        let p = &self.profiles;
        let from = format!(
            "FROM {t} p LEFT JOIN nscache_accounts a ON a.user_id = p.{u}::text",
            t = p.table,
            u = p.user_column
        );
        let filter = if search.is_empty() {
            String::new()
        } else {
            format!(
                "WHERE p.{u}::text LIKE $1 ESCAPE '\\' OR lower(a.username) LIKE lower($1) ESCAPE '\\'",
                u = p.user_column
            )
        };
        let pattern = like_prefix(search);
        let count_sql = format!("SELECT count(*) {from} {filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        if !search.is_empty() {
            count = count.bind(&pattern);
        }
        let total = count.fetch_one(&self.pool).await?;
        let (lim, off) = if search.is_empty() {
            ("$1", "$2")
        } else {
            ("$2", "$3")
        };
        // Ids that are numbers in numeric order (by their digits without
        // leading zeros, shorter first: 2 before 10, 007 next to 7), then
        // every other id in text order.
        let id = format!("p.{}::text", p.user_column);
        let order = format!(
            "CASE WHEN {id} ~ '^[0-9]+$' THEN length(ltrim({id}, '0')) ELSE 2147483647 END, \
             CASE WHEN {id} ~ '^[0-9]+$' THEN ltrim({id}, '0') ELSE {id} END, {id}"
        );
        let rows_sql = format!(
            "SELECT p.{u}::text AS user_id, p.{f} AS cache_enabled, a.username, a.role \
             {from} {filter} ORDER BY {order} LIMIT {lim} OFFSET {off}",
            u = p.user_column,
            f = p.flag_column
        );
        let mut rows = sqlx::query(&rows_sql);
        if !search.is_empty() {
            rows = rows.bind(&pattern);
        }
        let rows = rows
            .bind(limit as i64)
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await?;
        let users = rows
            .iter()
            .map(|r| {
                let role: Option<String> = r.try_get("role")?;
                Ok(UserRow {
                    user_id: r.try_get("user_id")?,
                    username: r.try_get("username")?,
                    role: role.as_deref().and_then(Role::parse),
                    cache_enabled: r.try_get("cache_enabled")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(UserPage {
            users,
            total: total as u64,
        })
    }

    async fn create_account(&self, new: &NewAccount) -> Result<Account, DirectoryError> {
        check_username(&new.username)?;
        let mut tx = self.pool.begin().await?;
        let placeholder = format!("\u{1}pending:{}", new.username);
        let row = sqlx::query("INSERT INTO nscache_accounts (username, role, user_id, password_hash, username_key) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(&new.username)
            .bind(new.role.as_str())
            .bind(new.user_id.as_deref().unwrap_or(&placeholder))
            .bind(&new.password_hash)
            .bind(username_key(&new.username))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| account_conflict(e.into(), new))?;
        let id: i64 = row.try_get("id")?;
        let user_id = match &new.user_id {
            Some(u) => u.clone(),
            None => {
                let u = format!("{ACCOUNT_NAMESPACE_PREFIX}{id}");
                sqlx::query("UPDATE nscache_accounts SET user_id = $1 WHERE id = $2")
                    .bind(&u)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                u
            }
        };
        if self.profiles.owned {
            let p = &self.profiles;
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ($1) ON CONFLICT DO NOTHING",
                p.table, p.user_column
            );
            sqlx::query(&sql).bind(&user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Account {
            id,
            username: new.username.clone(),
            role: new.role,
            user_id,
            password_hash: new.password_hash.clone(),
        })
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, DirectoryError> {
        let row = sqlx::query("SELECT id, username, role, user_id, password_hash FROM nscache_accounts WHERE username_key = $1 AND NOT disabled").bind(username_key(username)).fetch_optional(&self.pool).await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn count_admins(&self) -> Result<u64, DirectoryError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM nscache_accounts WHERE role = 'admin'")
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u64)
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        account_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<(), DirectoryError> {
        sqlx::query("DELETE FROM nscache_sessions WHERE expires_at < $1")
            .bind(unix_now())
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO nscache_sessions (token_hash, account_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(account_id)
            .bind(csrf_token)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRecord>, DirectoryError> {
        let row = sqlx::query(
            "SELECT a.id, a.username, a.role, a.user_id, a.password_hash, s.csrf_token, s.expires_at
             FROM nscache_sessions s JOIN nscache_accounts a ON a.id = s.account_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT a.disabled",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                account: account_from(&r)?,
                csrf_token: r.try_get("csrf_token")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), DirectoryError> {
        sqlx::query("DELETE FROM nscache_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_token(
        &self,
        account_id: i64,
        name: &str,
        token_hash: &[u8],
        expires_at: Option<i64>,
    ) -> Result<(), DirectoryError> {
        sqlx::query(
            "INSERT INTO nscache_api_tokens (token_hash, account_id, name, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(name)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn account_by_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<TokenHolder>, DirectoryError> {
        let row = sqlx::query(
            "SELECT a.id, a.username, a.role, a.user_id, a.password_hash, t.last_used_at, t.expires_at
             FROM nscache_api_tokens t JOIN nscache_accounts a ON a.id = t.account_id
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) AND NOT a.disabled",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        if last_used.is_none_or(|t| t + LAST_USED_RESOLUTION <= now) {
            // Best effort: a hot standby or a busy database must not turn a
            // valid token away; concurrent requests write it once.
            let noted = sqlx::query(
                "UPDATE nscache_api_tokens SET last_used_at = $2
                 WHERE token_hash = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .bind(token_hash)
            .bind(now)
            .bind(now - LAST_USED_RESOLUTION)
            .execute(&self.pool)
            .await;
            if let Err(e) = noted {
                tracing::warn!("noting a token's last use: {e}");
            }
        }
        Ok(Some(TokenHolder {
            account: account_from(&row)?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT t.id AS id, t.name, a.username, to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created, t.expires_at, t.last_used_at
             FROM nscache_api_tokens t JOIN nscache_accounts a ON a.id = t.account_id ORDER BY t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    label: r.try_get("name")?,
                    owner: r.try_get("username")?,
                    created_at: r.try_get("created")?,
                    expires_at: r.try_get("expires_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, DirectoryError> {
        let done = sqlx::query("DELETE FROM nscache_api_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE nscache_accounts SET password_hash = $2 WHERE username_key = $1 RETURNING id",
        )
        .bind(username_key(username))
        .bind(password_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let id = id.ok_or_else(|| DirectoryError::NotFound(format!("account {username:?}")))?;
        sqlx::query("DELETE FROM nscache_sessions WHERE account_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), DirectoryError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE nscache_accounts SET disabled = $2 WHERE username_key = $1 RETURNING id",
        )
        .bind(username_key(username))
        .bind(disabled)
        .fetch_optional(&mut *tx)
        .await?;
        let id = id.ok_or_else(|| DirectoryError::NotFound(format!("account {username:?}")))?;
        if disabled {
            sqlx::query("DELETE FROM nscache_sessions WHERE account_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_account(&self, username: &str) -> Result<(), DirectoryError> {
        let done = sqlx::query("DELETE FROM nscache_accounts WHERE username_key = $1")
            .bind(username_key(username))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NotFound(format!("account {username:?}")));
        }
        Ok(())
    }

    async fn create_device(
        &self,
        token_hash: &[u8],
        account_id: i64,
        expires_at: i64,
    ) -> Result<(), DirectoryError> {
        sqlx::query("DELETE FROM nscache_devices WHERE expires_at < $1")
            .bind(unix_now())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO nscache_devices (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn device_account(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<i64>, DirectoryError> {
        Ok(sqlx::query_scalar(
            "SELECT account_id FROM nscache_devices WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }
}
