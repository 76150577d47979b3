//! The directory: accounts, sessions, API tokens and users' profiles (with
//! their `cache_enabled` flag). One trait, [`Directory`], one file per
//! backend: [`PostgresDirectory`] for deployments, [`SqliteDirectory`] for the
//! embedded default (a single file, same schema).

mod guarded;
mod postgres;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use nscache::profiles::{FlagStore, ProfileError};

pub use self::guarded::Guarded;
pub use self::postgres::PostgresDirectory;
pub use self::sqlite::SqliteDirectory;
pub use nscache::sql::{Identifier, ProfileTable};

/// The name of the first migration (accounts, sessions, tokens).
pub const ACCOUNTS_MIGRATION: &str = "0001_accounts_sessions_tokens";

/// The name of the second migration (device cookies, token expiry and
/// last use, disabled accounts, names unique after normalisation).
pub const AUTH_MIGRATION: &str = "0002_devices_token_expiry_disabled_name_keys";

/// Every migration `migrate` records in `nscache_schema_migrations` for
/// flags kept in `profiles` (checked by `doctor`).
pub fn migration_names(profiles: &ProfileTable) -> Vec<String> {
    vec![
        ACCOUNTS_MIGRATION.to_owned(),
        profiles.migration_name(),
        AUTH_MIGRATION.to_owned(),
    ]
}

/// How long a device cookie (set on a successful sign-in) is honoured.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// What makes two login names the same: Unicode NFKC, then lower case. So
/// `admin`, `Admin` and `ＡＤＭＩＮ` (fullwidth) are one name.
pub fn username_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc().collect::<String>().to_lowercase()
}

/// The namespace of an account created without a user id: this prefix and
/// its database id (`account:7`). Application ids (integers, UUIDs) never
/// take this form, so such an account never shares an application user's
/// namespace or flag.
pub const ACCOUNT_NAMESPACE_PREFIX: &str = "account:";

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An end user: reads and sets their own `cache_enabled`, reaches only
    /// their own namespace.
    User,
    /// Lists users, overrides their flag, invalidates anything.
    Admin,
    /// An application: every cache operation, on any namespace (API tokens).
    Service,
}

impl Role {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Parse a stored role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

/// The account an API token belongs to, and until when the token lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolder {
    /// The token's account.
    pub account: Account,
    /// When the token expires (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// The cache namespace id of this account (the application's user id).
    pub user_id: String,
    /// Argon2 PHC string; `None` for accounts that cannot log in (services).
    pub password_hash: Option<String>,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login name (1–64 characters, no control characters).
    pub username: String,
    /// Role.
    pub role: Role,
    /// Namespace id; `None`: [`ACCOUNT_NAMESPACE_PREFIX`] and the account's
    /// database id.
    pub user_id: Option<String>,
    /// Argon2 PHC string, or `None`.
    pub password_hash: Option<String>,
}

/// One row of the users list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The namespace id.
    pub user_id: String,
    /// The account's login name, if the user has an nscache account.
    pub username: Option<String>,
    /// The account's role, if any.
    pub role: Option<Role>,
    /// The profile flag.
    pub cache_enabled: bool,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The rows, ordered by user id.
    pub users: Vec<UserRow>,
    /// How many users match the search in all.
    pub total: u64,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Whose session it is.
    pub account: Account,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Unix seconds after which it is invalid.
    pub expires_at: i64,
}

/// An API token as operators see it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id (for `nscache token revoke ID`).
    pub id: i64,
    /// Its label.
    pub label: String,
    /// The login name of its account.
    pub owner: String,
    /// When it was created (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub created_at: String,
    /// Unix seconds after which it is refused; `None`: never.
    pub expires_at: Option<i64>,
    /// Unix seconds of its last use (to the minute); `None`: never used.
    pub last_used_at: Option<i64>,
}

/// How often a token's last use is written (at most once a minute per token).
pub const LAST_USED_RESOLUTION: i64 = 60;

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationReport {
    /// Migrations applied now.
    pub applied: Vec<String>,
    /// Migrations found already applied.
    pub already: Vec<String>,
}

/// Why a directory operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique value (username, user id) is taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// No such user or account.
    #[error("not found: {0}")]
    NotFound(String),
    /// Bad input (name too long, bad identifier...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The schema is not migrated (run `nscache migrate`) or does not match.
    #[error("database schema: {0}")]
    Schema(String),
    /// Anything else, for the log.
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => DirectoryError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                DirectoryError::Conflict(db.message().to_owned())
            }
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("42P01" | "42703")) =>
            {
                DirectoryError::Schema(format!("{} (run `nscache migrate`)", db.message()))
            }
            // Postgres: admin shutdown, cannot connect now, too many connections.
            sqlx::Error::Database(db)
                if matches!(
                    db.code().as_deref(),
                    Some("57P01" | "57P02" | "57P03" | "53300")
                ) =>
            {
                DirectoryError::Unavailable(db.message().to_owned())
            }
            _ => DirectoryError::Other(e.to_string()),
        }
    }
}

impl From<ProfileError> for DirectoryError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Unavailable(m) => DirectoryError::Unavailable(m),
            ProfileError::NotFound(m) => DirectoryError::NotFound(m),
            ProfileError::Other(m) => DirectoryError::Other(m),
        }
    }
}

impl From<DirectoryError> for ProfileError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Unavailable(m) => ProfileError::Unavailable(m),
            DirectoryError::NotFound(m) => ProfileError::NotFound(m),
            other => ProfileError::Other(other.to_string()),
        }
    }
}

/// The directory as the library's [`FlagStore`]: what
/// [`CachedProfiles`](nscache::profiles::CachedProfiles) reads and writes.
#[derive(Debug, Clone)]
pub struct DirectoryFlags(pub std::sync::Arc<dyn Directory>);

#[async_trait]
impl FlagStore for DirectoryFlags {
    async fn cache_enabled(&self, user: &str) -> Result<Option<bool>, ProfileError> {
        Ok(self.0.cache_enabled(user).await?)
    }

    async fn set_cache_enabled(&self, user: &str, enabled: bool) -> Result<(), ProfileError> {
        Ok(self.0.set_cache_enabled(user, enabled).await?)
    }
}

impl From<nscache::sql::InvalidIdentifier> for DirectoryError {
    fn from(e: nscache::sql::InvalidIdentifier) -> Self {
        DirectoryError::Invalid(e.to_string())
    }
}

/// Accounts, sessions, tokens and profiles in a database.
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug + 'static {
    /// `"postgres"` or `"sqlite"`.
    fn kind(&self) -> &'static str;
    /// Where it is (URL without password, or file path).
    fn location(&self) -> String;
    /// True when the flags live in an application's own profile table (each
    /// person's account must then be one of the application's users).
    fn application_profiles(&self) -> bool;
    /// Check the database answers; returns the round-trip time.
    async fn ping(&self) -> Result<Duration, DirectoryError>;
    /// The Postgres pool, when the directory is on Postgres (for `doctor`'s
    /// checks of the schema); `None` for other databases.
    fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        None
    }
    /// Apply the migrations not yet applied. Idempotent.
    async fn migrate(&self) -> Result<MigrationReport, DirectoryError>;

    /// The `cache_enabled` flag of `user_id`; `None` if the user has no profile
    /// row (the column default, true, then applies).
    async fn cache_enabled(&self, user_id: &str) -> Result<Option<bool>, DirectoryError>;
    /// Set a user's flag. [`DirectoryError::NotFound`] if the user has no profile
    /// row (accounts get one when created; an application's table has its own).
    async fn set_cache_enabled(&self, user_id: &str, enabled: bool) -> Result<(), DirectoryError>;
    /// Users whose id or login name starts with `search` (case-insensitive for
    /// names), ordered by id.
    async fn list_users(
        &self,
        search: &str,
        offset: u64,
        limit: u64,
    ) -> Result<UserPage, DirectoryError>;

    /// Create an account (and its profile row, cache enabled).
    async fn create_account(&self, new: &NewAccount) -> Result<Account, DirectoryError>;
    /// The enabled account with this login name (compared by
    /// [`username_key`]).
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, DirectoryError>;
    /// How many admin accounts exist.
    async fn count_admins(&self) -> Result<u64, DirectoryError>;

    /// Store a session (the token's SHA-256, never the token).
    async fn create_session(
        &self,
        token_hash: &[u8],
        account_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<(), DirectoryError>;
    /// The live session with this token hash (expired ones are not returned).
    async fn session(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRecord>, DirectoryError>;
    /// End a session.
    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), DirectoryError>;

    /// Store an API token (its SHA-256) for an account, valid until
    /// `expires_at` (Unix seconds; `None`: until revoked).
    async fn create_token(
        &self,
        account_id: i64,
        name: &str,
        token_hash: &[u8],
        expires_at: Option<i64>,
    ) -> Result<(), DirectoryError>;
    /// The enabled account a live (unexpired) API token belongs to, with the
    /// token's expiry; notes the token's use (at most once per
    /// [`LAST_USED_RESOLUTION`]).
    async fn account_by_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<TokenHolder>, DirectoryError>;
    /// Every API token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, DirectoryError>;
    /// Delete a token; false if there was none with this id.
    async fn revoke_token(&self, id: i64) -> Result<bool, DirectoryError>;
    /// Change an account's password hash and end its sessions.
    /// [`DirectoryError::NotFound`] without such an account.
    async fn set_password(&self, username: &str, password_hash: &str)
    -> Result<(), DirectoryError>;
    /// Disable (ending its sessions; its tokens are refused while disabled)
    /// or enable an account. [`DirectoryError::NotFound`] without one.
    async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), DirectoryError>;
    /// Delete an account with its sessions, tokens and device cookies.
    /// [`DirectoryError::NotFound`] without one.
    async fn delete_account(&self, username: &str) -> Result<(), DirectoryError>;

    /// Remember a device cookie (its SHA-256) of a browser that signed in to
    /// `account_id`, until `expires_at` (Unix seconds). Expired ones are
    /// removed.
    async fn create_device(
        &self,
        token_hash: &[u8],
        account_id: i64,
        expires_at: i64,
    ) -> Result<(), DirectoryError>;
    /// The account a live device cookie belongs to.
    async fn device_account(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<i64>, DirectoryError>;
}

/// True for characters that change how text shows without showing
/// themselves: control characters and Unicode format characters (general
/// category Cf: bidi overrides such as U+202E, zero-width joiners...), and
/// unassigned, private-use and surrogate code points.
pub fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::Unassigned
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Reject an unusable login name: empty, longer than 64 characters, or
/// with spaces or invisible characters ([`is_invisible`]). Names that differ
/// only in case or width are one name ([`username_key`]).
pub fn check_username(name: &str) -> Result<(), DirectoryError> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(DirectoryError::Invalid(
            "a login name is 1 to 64 characters".into(),
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || is_invisible(*c)) {
        return Err(DirectoryError::Invalid(format!(
            "a login name may not contain spaces, control or format characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Reject the application user id given for an account (`--user-id`) if
/// it has control or format characters ([`is_invisible`]): it is shown next
/// to the name. (Namespace ids elsewhere stay opaque.)
pub fn check_account_user_id(user_id: &str) -> Result<(), DirectoryError> {
    if let Some(c) = user_id.chars().find(|c| is_invisible(*c)) {
        return Err(DirectoryError::Invalid(format!(
            "a user id for an account may not contain control or format characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(())
}

/// A unique violation on creating `new`, in words.
pub(crate) fn account_conflict(e: DirectoryError, new: &NewAccount) -> DirectoryError {
    match e {
        DirectoryError::Conflict(m) if m.contains("username") => DirectoryError::Conflict(format!(
            "an account named {:?} or a look-alike (same letters ignoring case and width) exists",
            new.username
        )),
        DirectoryError::Conflict(m) if m.contains("user_id") => DirectoryError::Conflict(format!(
            "an account with user id {:?} exists",
            new.user_id.as_deref().unwrap_or("")
        )),
        other => other,
    }
}

/// Escape `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` prefix pattern.
pub(crate) fn like_prefix(search: &str) -> String {
    let mut out = String::with_capacity(search.len() + 1);
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_key_and_invisible_characters_are_refused() {
        assert_eq!(username_key("Admin"), "admin");
        assert_eq!(
            username_key("\u{ff21}\u{ff24}\u{ff2d}\u{ff29}\u{ff2e}"),
            "admin"
        );
        assert_eq!(
            username_key("\u{212b}ngstr\u{f6}m"),
            username_key("\u{c5}NGSTR\u{d6}M")
        );
        for bad in [
            "a\u{202e}b",
            "a\u{200b}b",
            "a\u{feff}",
            "a\tb",
            "a b",
            "",
            "\u{e000}",
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert!(check_username("jos\u{e9}").is_ok());
        assert!(check_account_user_id("2\u{202e}").is_err());
        assert!(check_account_user_id("user:42/\u{e9}").is_ok());
    }
}
