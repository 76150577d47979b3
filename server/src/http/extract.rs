//! Extractors: [`Caller`] (who is asking, with the CSRF check for cookie
//! sessions) and [`JsonBody`] / [`PathParams`] / [`QueryParams`], which turn
//! axum's rejections into JSON errors.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::auth::constant_time_eq;
use crate::control::{ControlError, Principal, Via};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "nscache_session";
/// The session cookie's name with `--secure-cookies`: browsers keep a
/// `__Host-` cookie only if it is `Secure`, has `Path=/` and no `Domain`, so
/// a neighbouring subdomain or a plain-HTTP page cannot plant or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-nscache_session";

/// The session cookie's name: [`SECURE_SESSION_COOKIE`] when cookies are
/// `Secure`, else [`SESSION_COOKIE`]. Only that name is read.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The device cookie's name: set on a successful sign-in, it exempts that
/// browser from the account's login backoff (see
/// [`LoginLimiter`](crate::auth::LoginLimiter)).
pub const DEVICE_COOKIE: &str = "nscache_device";
/// The header carrying the CSRF token on cookie-authenticated requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body; rejections become JSON errors (400/413/415/422).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

/// Path parameters by name; a bad encoding becomes a JSON 400.
pub struct PathParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        Ok(PathParams(params))
    }
}

impl PathParams {
    /// A parameter the route guarantees.
    pub fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(format!("route has no {name} parameter")))
    }
}

/// Query parameters; a bad query becomes a JSON 400.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(QueryParams(value))
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The client's address. With `trusted_proxies` = 0, the peer's. With N
/// proxies in front, each appending the address it got the request from to
/// `X-Forwarded-For`, the N-th entry from the right (the one the outermost
/// trusted proxy wrote): entries further left come from the client and are
/// ignored. A list shorter than N gives its left-most entry; a missing or
/// unparsable entry, the peer's address.
pub fn client_address(parts: &Parts, trusted_proxies: usize) -> IpAddr {
    request_address(&parts.headers, &parts.extensions, trusted_proxies)
}

/// [`client_address`] from a request's headers and extensions.
pub fn request_address(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    trusted_proxies: usize,
) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ci| ci.0.ip());
    if trusted_proxies == 0 {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if hops.is_empty() {
        return peer;
    }
    let hop = hops[hops.len().saturating_sub(trusted_proxies)];
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .unwrap_or(peer)
}

/// The client's address (see [`client_address`]).
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts, state.trusted_proxies)))
    }
}

/// The authenticated caller. Rejects with 401 without valid credentials, and
/// with 403 a cookie-authenticated request that changes state without the
/// session's CSRF token in `X-CSRF-Token`.
pub struct Caller(pub Principal);

/// The caller, if any credentials were sent (for pages that work signed out).
pub struct MaybeCaller(pub Option<Principal>);

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<Principal>, ApiError> {
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ControlError::Unauthenticated)?;
        return match state.control.api_token(token.trim()).await? {
            Some(p) => Ok(Some(p)),
            None => Err(ControlError::Unauthenticated.into()),
        };
    }
    let Some(token) = cookie(parts, session_cookie_name(state.secure_cookies)) else {
        return Ok(None);
    };
    let Some(principal) = state.control.session(token).await? else {
        return Ok(None);
    };
    if let Via::Session { csrf_token, .. } = &principal.via
        && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
    {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), csrf_token.as_bytes()) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong CSRF token (send the session's token in X-CSRF-Token)",
            ));
        }
    }
    Ok(Some(principal))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(ControlError::Unauthenticated.into()),
        }
    }
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeCaller(authenticate(parts, state).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(xff: &[&str]) -> Parts {
        let mut request = axum::http::Request::builder();
        for v in xff {
            request = request.header("x-forwarded-for", *v);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 4000))));
        parts
    }

    #[test]
    fn the_client_is_the_right_most_entry_no_trusted_proxy_wrote() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let spoofed = parts(&["6.6.6.6, 203.0.113.5", "198.51.100.2"]);
        assert_eq!(client_address(&spoofed, 0), ip("10.0.0.9"), "peer");
        assert_eq!(client_address(&spoofed, 1), ip("198.51.100.2"));
        assert_eq!(client_address(&spoofed, 2), ip("203.0.113.5"));
        assert_eq!(
            client_address(&parts(&["203.0.113.5"]), 3),
            ip("203.0.113.5")
        );
        assert_eq!(client_address(&parts(&[]), 1), ip("10.0.0.9"));
        assert_eq!(client_address(&parts(&["junk"]), 1), ip("10.0.0.9"));
        assert_eq!(
            client_address(&parts(&["[2001:db8::1]:443"]), 1),
            ip("2001:db8::1")
        );
    }
}
