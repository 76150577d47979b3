//! Signing in and out, and the signed-in person's own settings.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, ClientAddress, DEVICE_COOKIE, JsonBody, cookie, session_cookie_name};
use crate::control::{ControlError, MeView, Via};

/// `POST /api/v1/session`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Login name.
    username: String,
    /// Password.
    password: String,
}

/// `POST /api/v1/session`: signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    /// The account.
    me: MeView,
    /// Send it in `X-CSRF-Token` on requests that change state.
    csrf_token: String,
}

/// `DELETE /api/v1/session`: signed out.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    /// Always true.
    signed_out: bool,
}

/// `GET /api/v1/me`: the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The account.
    me: MeView,
    /// The session's CSRF token (null when signed in with an API token).
    #[schema(required = true)]
    csrf_token: Option<String>,
}

/// `POST /api/v1/me/invalidate`: one's own cache cleared.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cleared {
    /// The namespace's new version.
    version: u64,
}

/// `PUT /api/v1/users/{user}/cache`: the flag as set.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserCacheFlag {
    /// The user's namespace id.
    user_id: String,
    /// Whether the user's data is cached.
    cache_enabled: bool,
}

/// The `Set-Cookie` value of a session cookie (empty value and 0: clear it);
/// `__Host-` prefixed and `Secure` with `--secure-cookies`.
pub(crate) fn session_cookie(
    state: &AppState,
    value: &str,
    max_age: u64,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        session_cookie_name(state.secure_cookies)
    ))
    .map_err(ApiError::internal)
}

/// The `Set-Cookie` value of a device cookie (see [`DEVICE_COOKIE`]).
pub(crate) fn device_cookie(state: &AppState, value: &str) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let max_age = crate::directory::DEVICE_LIFETIME.as_secs();
    HeaderValue::from_str(&format!(
        "{DEVICE_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .map_err(ApiError::internal)
}

/// Sign in with a password: sets the session cookie (and a device cookie,
/// the first time from a browser), returns the CSRF token.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    parts: axum::http::request::Parts,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    if body.username.len() > 256 || body.password.len() > 1024 {
        return Err(ControlError::BadCredentials.into());
    }
    if body.username.chars().any(crate::directory::is_invisible) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_username",
            "a login name has no control or format characters",
        ));
    }
    let device = cookie(&parts, DEVICE_COOKIE).filter(|d| d.len() <= 128);
    let signed_in = state
        .control
        .login(&body.username, &body.password, address, device)
        .await?;
    let (who, token, lifetime) = (
        signed_in.principal,
        signed_in.session_token,
        signed_in.lifetime,
    );
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
    if let Some(device) = &signed_in.device_token {
        headers.append(header::SET_COOKIE, device_cookie(&state, device)?);
    }
    Ok((
        StatusCode::OK,
        headers,
        Json(SignedIn {
            me,
            csrf_token: csrf,
        }),
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
    let body = SignedOut { signed_out: true };
    Ok((StatusCode::OK, headers, Json(body)).into_response())
}

/// `GET /api/v1/me`
pub async fn me(State(state): State<AppState>, Caller(who): Caller) -> Result<Json<Me>, ApiError> {
    let me = state.control.me(&who).await?;
    let csrf_token = match &who.via {
        Via::Session { csrf_token, .. } => Some(csrf_token.clone()),
        Via::ApiToken => None,
    };
    Ok(Json(Me { me, csrf_token }))
}

/// Body of `PUT /api/v1/me/cache` and `PUT /api/v1/users/{user}/cache`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheFlag {
    /// Whether the user's data is cached.
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
) -> Result<Json<Cleared>, ApiError> {
    let version = state.control.clear_my_cache(&who).await?;
    Ok(Json(Cleared { version }))
}

/// `PUT /api/v1/users/{user}/cache`: an admin's override.
pub async fn set_user_cache(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: super::extract::PathParams,
    JsonBody(flag): JsonBody<CacheFlag>,
) -> Result<Json<UserCacheFlag>, ApiError> {
    let user = params.get("user")?;
    state
        .control
        .set_user_cache(&who, user, flag.enabled)
        .await?;
    Ok(Json(UserCacheFlag {
        user_id: user.to_owned(),
        cache_enabled: flag.enabled,
    }))
}
