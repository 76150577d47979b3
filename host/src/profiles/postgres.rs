//! [`PostgresFlags`]: users' `cache_enabled` flags in a Postgres profile table.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::OnceCell;

use super::{FlagStore, ProfileError};
use crate::sql::ProfileTable;

/// The flags in a Postgres table ([`ProfileTable`]: nscache's own, or an
/// application's such as `core_userprofile`, whose user column may be an
/// integer). Cheap to clone; the pool connects lazily, so an application
/// starts while Postgres is down.
#[derive(Debug, Clone)]
pub struct PostgresFlags {
    pool: PgPool,
    table: ProfileTable,
    /// Whether the user column is an integer (`core_userprofile.user_id`).
    integer_user: Arc<OnceCell<bool>>,
}

enum UserParam {
    Int(i64),
    Text(String),
}

macro_rules! bind_user {
    ($query:expr, $param:expr) => {
        match $param {
            UserParam::Int(n) => $query.bind(n),
            UserParam::Text(s) => $query.bind(s),
        }
    };
}

/// What a failed query means for a flag: an outage, or a fault to fix.
pub(crate) fn profile_error(e: sqlx::Error) -> ProfileError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => ProfileError::Unavailable(e.to_string()),
        // Postgres: undefined table or column.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("42P01" | "42703")) => {
            ProfileError::Other(format!("{} (run `nscache migrate`)", db.message()))
        }
        // Postgres: admin shutdown, cannot connect now, too many connections.
        sqlx::Error::Database(db)
            if matches!(
                db.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "53300")
            ) =>
        {
            ProfileError::Unavailable(db.message().to_owned())
        }
        _ => ProfileError::Other(e.to_string()),
    }
}

impl PostgresFlags {
    /// Flags in `table` of the database at `url` (`postgres://user@host/db`).
    pub fn connect(url: &str, table: ProfileTable) -> Result<PostgresFlags, ProfileError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| ProfileError::Other(format!("bad database URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        Ok(PostgresFlags::with_pool(pool, table))
    }

    /// Flags in `table`, queried on `pool` (the application's own pool).
    pub fn with_pool(pool: PgPool, table: ProfileTable) -> PostgresFlags {
        PostgresFlags {
            pool,
            table,
            integer_user: Default::default(),
        }
    }

    /// The pool in use.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table in use.
    pub fn table(&self) -> &ProfileTable {
        &self.table
    }

    async fn integer_user(&self) -> Result<bool, ProfileError> {
        self.integer_user
            .get_or_try_init(|| async {
                let t = &self.table.table;
                let data_type: Option<String> = sqlx::query_scalar(
                    "SELECT data_type FROM information_schema.columns
                     WHERE table_name = $1 AND column_name = $2 AND table_schema = COALESCE($3, current_schema())",
                )
                .bind(t.name())
                .bind(self.table.user_column.name())
                .bind(t.schema())
                .fetch_optional(&self.pool)
                .await
                .map_err(profile_error)?;
                match data_type {
                    Some(ty) => Ok(matches!(ty.as_str(), "integer" | "bigint" | "smallint")),
                    None => Err(ProfileError::Other(format!(
                        "profile table {t} has no column {} (run `nscache migrate`)",
                        self.table.user_column
                    ))),
                }
            })
            .await
            .copied()
    }

    /// Bind a user id as the user column's type; `None` if it cannot be one.
    async fn user_param(&self, user: &str) -> Result<Option<UserParam>, ProfileError> {
        if self.integer_user().await? {
            Ok(user.parse::<i64>().ok().map(UserParam::Int))
        } else {
            Ok(Some(UserParam::Text(user.to_owned())))
        }
    }
}

#[async_trait]
impl FlagStore for PostgresFlags {
    async fn cache_enabled(&self, user: &str) -> Result<Option<bool>, ProfileError> {
        let Some(param) = self.user_param(user).await? else {
            return Ok(None);
        };
        let t = &self.table;
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = $1",
            t.flag_column, t.table, t.user_column
        );
        bind_user!(sqlx::query_scalar::<_, bool>(&sql), param)
            .fetch_optional(&self.pool)
            .await
            .map_err(profile_error)
    }

    async fn set_cache_enabled(&self, user: &str, enabled: bool) -> Result<(), ProfileError> {
        let Some(param) = self.user_param(user).await? else {
            return Err(ProfileError::NotFound(format!(
                "user {user:?} (this profile table has integer user ids)"
            )));
        };
        let t = &self.table;
        let sql = format!(
            "UPDATE {} SET {} = $2 WHERE {} = $1",
            t.table, t.flag_column, t.user_column
        );
        let done = bind_user!(sqlx::query(&sql), param)
            .bind(enabled)
            .execute(&self.pool)
            .await
            .map_err(profile_error)?;
        if done.rows_affected() == 0 {
            return Err(ProfileError::NotFound(format!(
                "user {user:?} has no profile"
            )));
        }
        Ok(())
    }
}
