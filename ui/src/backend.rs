//! [`UiBackend`]: everything the UI asks of the server, as one object-safe
//! trait. The host implements it on top of its permission layer, so the UI
//! has no permission or cache logic of its own: it renders what the backend
//! answers, and an error it gets back (403, sign in, unavailable).
//!
//! Each call gets the request's head (`http::request::Parts`): the backend
//! reads its own session cookie and client address from it. Calls that change
//! state also get the CSRF token the form carried; the backend compares it
//! with the session's token.

use std::sync::Arc;

use axum::http::request::Parts;

use crate::model::{Dashboard, Me, UiError, UsersPage, UsersQuery, Viewer};

/// What a successful sign-in gives the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Who signed in.
    pub viewer: Viewer,
    /// The `Set-Cookie` header value that carries the new session.
    pub set_cookie: String,
    /// Another `Set-Cookie` value, if any: the backend's device cookie, set
    /// on the first sign-in from a browser (it exempts that browser from the
    /// account's login backoff).
    pub device_cookie: Option<String>,
}

/// The server side of the UI. Every method checks who is asking (from the
/// request's session cookie) and whether they may; the UI never decides that.
#[async_trait::async_trait]
pub trait UiBackend: Send + Sync + 'static {
    /// Check a password and open a session (rate-limited by the backend).
    async fn sign_in(
        &self,
        request: &Parts,
        username: &str,
        password: &str,
    ) -> Result<SignedIn, UiError>;

    /// End the request's session; returns the `Set-Cookie` value that clears it.
    async fn sign_out(&self, request: &Parts, csrf_token: &str) -> Result<String, UiError>;

    /// The signed-in person, or [`UiError::Unauthenticated`].
    async fn viewer(&self, request: &Parts) -> Result<Viewer, UiError>;

    /// What the signed-in person sees about themselves.
    async fn me(&self, request: &Parts) -> Result<Me, UiError>;

    /// Turn the signed-in person's own cache on or off.
    async fn set_my_cache(
        &self,
        request: &Parts,
        csrf_token: &str,
        enabled: bool,
    ) -> Result<Me, UiError>;

    /// Invalidate the signed-in person's own namespace; returns its new version.
    async fn clear_my_cache(&self, request: &Parts, csrf_token: &str) -> Result<u64, UiError>;

    /// A page of users (admins).
    async fn list_users(&self, request: &Parts, query: &UsersQuery) -> Result<UsersPage, UiError>;

    /// Override a user's `cache_enabled` flag (admins).
    async fn set_user_cache(
        &self,
        request: &Parts,
        csrf_token: &str,
        user_id: &str,
        enabled: bool,
    ) -> Result<(), UiError>;

    /// Invalidate a user's namespace (admins); returns its new version.
    async fn invalidate_user(
        &self,
        request: &Parts,
        csrf_token: &str,
        user_id: &str,
    ) -> Result<u64, UiError>;

    /// Invalidate a table's cached queries (admins); returns its new version.
    async fn invalidate_table(
        &self,
        request: &Parts,
        csrf_token: &str,
        table: &str,
    ) -> Result<u64, UiError>;

    /// Physically delete every entry of a user's namespace, every version
    /// (admins): `Some(count)` when done, `None` when it goes on in the
    /// background.
    async fn purge_user(
        &self,
        request: &Parts,
        csrf_token: &str,
        user_id: &str,
    ) -> Result<Option<u64>, UiError>;

    /// Invalidate every namespace (admins); returns the new floor.
    async fn invalidate_all(&self, request: &Parts, csrf_token: &str) -> Result<u64, UiError>;

    /// Time series and health for the dashboard (admins).
    async fn dashboard(&self, request: &Parts) -> Result<Dashboard, UiError>;
}

/// The backend, as server functions find it in Leptos context.
#[derive(Clone)]
pub struct BackendHandle(pub Arc<dyn UiBackend>);

impl std::fmt::Debug for BackendHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackendHandle")
    }
}
