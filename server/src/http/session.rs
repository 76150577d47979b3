//! Signing in and out, and the signed-in person's own settings.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, ClientAddress, JsonBody, SESSION_COOKIE};
use crate::control::{ControlError, MeView, Via};

/// `POST /api/v1/session`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

/// The `Set-Cookie` value of a session cookie (empty value and 0: clear it).
pub(crate) fn session_cookie(
    state: &AppState,
    value: &str,
    max_age: u64,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .map_err(ApiError::internal)
}

/// Sign in with a password: sets the session cookie, returns the CSRF token.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    if body.username.len() > 256 || body.password.len() > 1024 {
        return Err(ControlError::BadCredentials.into());
    }
    let (who, token, lifetime) = state
        .control
        .login(&body.username, &body.password, address)
        .await?;
    let csrf = match &who.via {
        Via::Session { csrf_token, .. } => csrf_token.clone(),
        Via::ApiToken => return Err(ApiError::internal("login produced no session")),
    };
    let me = state.control.me(&who).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        session_cookie(&state, &token, lifetime.as_secs())?,
    );
    Ok((
        StatusCode::OK,
        headers,
        Json(json!({ "me": me, "csrf_token": csrf })),
    )
        .into_response())
}

/// Sign out: ends the session, clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Response, ApiError> {
    state.control.logout(&who).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&state, "", 0)?);
    Ok((StatusCode::OK, headers, Json(json!({ "signed_out": true }))).into_response())
}

/// `GET /api/v1/me`
pub async fn me(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = state.control.me(&who).await?;
    let csrf = match &who.via {
        Via::Session { csrf_token, .. } => Some(csrf_token.clone()),
        Via::ApiToken => None,
    };
    Ok(Json(json!({ "me": me, "csrf_token": csrf })))
}

/// `PUT /api/v1/me/cache`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFlag {
    enabled: bool,
}

/// Turn one's own cache on or off.
pub async fn set_my_cache(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(flag): JsonBody<CacheFlag>,
) -> Result<Json<MeView>, ApiError> {
    Ok(Json(state.control.set_my_cache(&who, flag.enabled).await?))
}

/// `POST /api/v1/me/invalidate`: clear one's own cache.
pub async fn clear_my_cache(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let version = state.control.clear_my_cache(&who).await?;
    Ok(Json(json!({ "version": version })))
}

/// `PUT /api/v1/users/{user}/cache`: an admin's override.
pub async fn set_user_cache(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: super::extract::PathParams,
    JsonBody(flag): JsonBody<CacheFlag>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = params.get("user")?;
    state
        .control
        .set_user_cache(&who, user, flag.enabled)
        .await?;
    Ok(Json(
        json!({ "user_id": user, "cache_enabled": flag.enabled }),
    ))
}
