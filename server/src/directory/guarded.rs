//! [`Guarded`]: a directory that fails fast while its database is down.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    Account, Directory, DirectoryError, MigrationReport, NewAccount, SessionRecord, TokenHolder,
    TokenInfo, UserPage,
};

/// How long the database is left alone after it was found unreachable.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Wraps a [`Directory`]: after a call finds the database unreachable, every
/// call fails at once with [`DirectoryError::Unavailable`] for
/// [`RETRY_AFTER`], instead of each request waiting on a dead connection pool.
/// `ping` always goes through (it is how recovery is noticed).
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn Directory>,
    open_until: RwLock<Option<(Instant, String)>>,
}

impl Guarded {
    /// Guard `inner`.
    pub fn new(inner: Arc<dyn Directory>) -> Guarded {
        Guarded {
            inner,
            open_until: RwLock::new(None),
        }
    }

    async fn guard<T>(
        &self,
        call: impl Future<Output = Result<T, DirectoryError>>,
    ) -> Result<T, DirectoryError> {
        if let Some((until, error)) = self
            .open_until
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            && Instant::now() < until
        {
            return Err(DirectoryError::Unavailable(error));
        }
        let result = call.await;
        self.note(&result);
        result
    }

    fn note<T>(&self, result: &Result<T, DirectoryError>) {
        let mut open = self.open_until.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Err(DirectoryError::Unavailable(e)) => {
                *open = Some((Instant::now() + RETRY_AFTER, e.clone()))
            }
            _ => *open = None,
        }
    }
}

#[async_trait]
impl Directory for Guarded {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn application_profiles(&self) -> bool {
        self.inner.application_profiles()
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        self.inner.postgres_pool()
    }

    async fn ping(&self) -> Result<Duration, DirectoryError> {
        let result = self.inner.ping().await;
        self.note(&result);
        result
    }

    async fn migrate(&self) -> Result<MigrationReport, DirectoryError> {
        self.guard(self.inner.migrate()).await
    }

    async fn cache_enabled(&self, user_id: &str) -> Result<Option<bool>, DirectoryError> {
        self.guard(self.inner.cache_enabled(user_id)).await
    }

    async fn set_cache_enabled(&self, user_id: &str, enabled: bool) -> Result<(), DirectoryError> {
        self.guard(self.inner.set_cache_enabled(user_id, enabled))
            .await
    }

    async fn list_users(
        &self,
        search: &str,
        offset: u64,
        limit: u64,
    ) -> Result<UserPage, DirectoryError> {
        self.guard(self.inner.list_users(search, offset, limit))
            .await
    }

    async fn create_account(&self, new: &NewAccount) -> Result<Account, DirectoryError> {
        self.guard(self.inner.create_account(new)).await
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, DirectoryError> {
        self.guard(self.inner.account_by_username(username)).await
    }

    async fn count_admins(&self) -> Result<u64, DirectoryError> {
        self.guard(self.inner.count_admins()).await
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        account_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<(), DirectoryError> {
        self.guard(
            self.inner
                .create_session(token_hash, account_id, csrf_token, expires_at),
        )
        .await
    }

    async fn session(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRecord>, DirectoryError> {
        self.guard(self.inner.session(token_hash, now)).await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), DirectoryError> {
        self.guard(self.inner.delete_session(token_hash)).await
    }

    async fn create_token(
        &self,
        account_id: i64,
        name: &str,
        token_hash: &[u8],
        expires_at: Option<i64>,
    ) -> Result<(), DirectoryError> {
        self.guard(
            self.inner
                .create_token(account_id, name, token_hash, expires_at),
        )
        .await
    }

    async fn account_by_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<TokenHolder>, DirectoryError> {
        self.guard(self.inner.account_by_token(token_hash, now))
            .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, DirectoryError> {
        self.guard(self.inner.list_tokens()).await
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, DirectoryError> {
        self.guard(self.inner.revoke_token(id)).await
    }

    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), DirectoryError> {
        self.guard(self.inner.set_password(username, password_hash))
            .await
    }

    async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), DirectoryError> {
        self.guard(self.inner.set_disabled(username, disabled))
            .await
    }

    async fn delete_account(&self, username: &str) -> Result<(), DirectoryError> {
        self.guard(self.inner.delete_account(username)).await
    }

    async fn create_device(
        &self,
        token_hash: &[u8],
        account_id: i64,
        expires_at: i64,
    ) -> Result<(), DirectoryError> {
        self.guard(self.inner.create_device(token_hash, account_id, expires_at))
            .await
    }

    async fn device_account(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<i64>, DirectoryError> {
        self.guard(self.inner.device_account(token_hash, now)).await
    }
}
