//! The HTTP API: `router(state) -> Router`. Handlers are thin: they parse,
//! call [`Control`], and turn results into JSON.

mod admin;
mod cache_api;
mod error;
pub mod extract;
pub mod limits;
pub mod openapi;
mod ops;
pub mod security;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

pub use self::error::ApiError;
#[cfg(feature = "ui")]
pub(crate) use self::session::{device_cookie, session_cookie};
use crate::control::Control;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The operations.
    pub control: Arc<Control>,
    /// Mark session cookies `Secure` (served over TLS, or behind a TLS proxy).
    pub secure_cookies: bool,
    /// Reverse proxies that append to `X-Forwarded-For` (see
    /// [`extract::client_address`]).
    pub trusted_proxies: usize,
    /// The bytes every reply in flight may hold together.
    pub replies: limits::ReplyMemory,
    /// How many requests one caller may have in flight.
    pub per_caller: limits::PerCaller,
}

fn keyspace_routes() -> Router<AppState> {
    use cache_api::*;
    Router::new()
        .route("/keys/{key}", get(get_key).put(set_key).delete(delete_key))
        .route("/keys/{key}/add", post(add_key))
        .route("/keys/{key}/incr", post(incr_key))
        .route("/keys/{key}/decr", post(decr_key))
        .route("/keys/{key}/touch", post(touch_key))
        .route("/keys/{key}/persist", post(persist_key))
        .route("/keys/{key}/ttl", get(ttl_key))
        .route("/keys/{key}/exists", get(exists_key))
        .route("/get-many", post(get_many))
        .route("/set-many", post(set_many))
        .route("/delete-many", post(delete_many))
}

/// The API router (see [`openapi::routes`] for the table). Bodies are limited
/// to `body_limit` bytes (413 beyond).
pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(ops::openapi_json))
        .route(
            "/api/v1/session",
            post(session::login).delete(session::logout),
        )
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/me/cache", put(session::set_my_cache))
        .route("/api/v1/me/invalidate", post(session::clear_my_cache))
        .route("/api/v1/users", get(admin::list_users))
        .route("/api/v1/users/{user}/cache", put(session::set_user_cache))
        .route(
            "/api/v1/users/{user}/invalidate",
            post(admin::invalidate_user),
        )
        .route(
            "/api/v1/tables/{table}/invalidate",
            post(admin::invalidate_table),
        )
        .route("/api/v1/invalidate-all", post(admin::invalidate_all))
        .route(
            "/api/v1/cache/users/{user}/version",
            get(cache_api::user_version),
        )
        .route(
            "/api/v1/locks/{key}",
            post(cache_api::lock).delete(cache_api::unlock),
        )
        .nest("/api/v1/cache/global", keyspace_routes())
        .nest("/api/v1/cache/users/{user}", keyspace_routes())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "no such route (see /api/v1/openapi.json)",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
