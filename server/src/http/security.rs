//! What every response and every state-changing request goes through, the
//! API's and the admin UI's alike (security review, findings 7 and 8):
//!
//! - [`headers`]: `Content-Security-Policy` (with a fresh nonce per
//!   response, the one the UI puts on its scripts), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`, and
//!   `Cache-Control: no-store` unless the response chose its own (the UI's
//!   static assets do).
//! - [`same_origin`]: a request that changes state (not `GET`, `HEAD` or
//!   `OPTIONS`) and carries no API token is refused with 403 when the
//!   browser says it comes from another site (`Sec-Fetch-Site`) or another
//!   origin (`Origin`). Requests with neither header (curl, scripts) pass:
//!   they are not sent by a browser on someone else's behalf.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;
use super::error::ApiError;

/// A fresh nonce for one response's `Content-Security-Policy`: 16 random
/// bytes, base64url.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness there is no safe nonce: fall back to none at all
    // (the policy then allows no inline script).
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The policy: nothing from elsewhere, scripts only from this origin or
/// carrying the response's nonce, wasm compilation for the hydrated UI, no
/// framing, forms posting only here.
pub fn content_security_policy(nonce: &str) -> String {
    let inline = if nonce.is_empty() {
        String::new()
    } else {
        format!(" 'nonce-{nonce}'")
    };
    format!(
        "default-src 'none'; script-src 'self'{inline} 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The layers that set the fixed security headers (outermost last).
type FixedHeaders = Stack<
    SetResponseHeaderLayer<HeaderValue>,
    Stack<
        SetResponseHeaderLayer<HeaderValue>,
        Stack<
            SetResponseHeaderLayer<HeaderValue>,
            Stack<SetResponseHeaderLayer<HeaderValue>, Identity>,
        >,
    >,
>;

/// The fixed headers, as tower-http layers; [`headers`] adds the policy.
pub fn fixed_headers() -> ServiceBuilder<FixedHeaders> {
    ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Middleware: choose the response's CSP nonce, hand it to the UI's pages
/// (which put it on their scripts), and send the policy with it.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let nonce = nonce();
    #[cfg(feature = "ui")]
    request
        .extensions_mut()
        .insert(nscache_ui::server::CspNonce(nonce.clone()));
    #[cfg(not(feature = "ui"))]
    let _ = &mut request;
    let mut response = next.run(request).await;
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// An API request with a bearer token: browsers never attach one by
/// themselves (unlike `Authorization: Basic` of a proxy's login), so it
/// cannot be forged across sites.
fn bearer_api_request(request: &Request) -> bool {
    request.uri().path().starts_with("/api/")
        && request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

/// Why a request is refused as cross-site, if it is.
fn cross_site(request: &Request, trust_proxy: bool) -> Option<String> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || bearer_api_request(request)
    {
        return None;
    }
    let headers = request.headers();
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        return match site.as_bytes() {
            b"same-origin" | b"none" => None,
            other => Some(format!(
                "the browser sent it from another site (Sec-Fetch-Site: {})",
                String::from_utf8_lossy(other)
            )),
        };
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("");
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    let hosts = [
        headers.get(header::HOST),
        trust_proxy
            .then(|| headers.get("x-forwarded-host"))
            .flatten(),
    ];
    let same = authority.is_some_and(|authority| {
        hosts
            .iter()
            .flatten()
            .filter_map(|h| h.to_str().ok())
            .any(|host| host.eq_ignore_ascii_case(authority))
    });
    (!same).then(|| format!("the browser sent it from another origin (Origin: {origin})"))
}

/// Middleware: refuse state-changing requests a browser sends from another
/// site (login CSRF, and a second line behind the CSRF token for cookie
/// sessions). The API answers a JSON error `cross_site`; the UI a short page.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(why) = cross_site(&request, state.trusted_proxies > 0) else {
        return next.run(request).await;
    };
    tracing::info!(path = %request.uri().path(), %why, "cross-site request refused");
    if request.uri().path().starts_with("/api/") {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            format!("cross-site request refused: {why}"),
        )
        .into_response();
    }
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>403 Cross-site request refused · nscache</title></head><body>\
         <h1>403 — Cross-site request refused</h1>\
         <p>This form was sent from another site, so nothing was done. \
         To sign in or make a change, use the nscache pages themselves.</p>\
         <p>{}</p><p><a href=\"/login\">Go to the sign-in page</a></p></body></html>",
        html_escape(&why)
    );
    let mut response = Response::new(Body::from(page));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request {
        post_to("/ui/fn/sign-in", headers)
    }

    fn post_to(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut request = Request::builder().method(Method::POST).uri(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(Body::empty()).unwrap()
    }

    #[test]
    fn browsers_from_elsewhere_are_refused_and_others_pass() {
        let host = ("host", "cache.example:8080");
        assert!(cross_site(&post(&[host, ("origin", "https://evil.example")]), false).is_some());
        assert!(cross_site(&post(&[host, ("origin", "null")]), false).is_some());
        assert!(cross_site(&post(&[host, ("sec-fetch-site", "cross-site")]), false).is_some());
        assert!(cross_site(&post(&[host, ("sec-fetch-site", "same-site")]), false).is_some());
        assert!(
            cross_site(
                &post(&[host, ("origin", "http://cache.example:8080")]),
                false
            )
            .is_none()
        );
        assert!(cross_site(&post(&[host, ("sec-fetch-site", "same-origin")]), false).is_none());
        assert!(cross_site(&post(&[host]), false).is_none(), "curl");
        let evil = ("origin", "https://evil.example");
        assert!(
            cross_site(
                &post_to(
                    "/api/v1/cache/k",
                    &[host, evil, ("authorization", "Bearer t")]
                ),
                false
            )
            .is_none(),
            "tokens are not sent by browsers on their own"
        );
        // What a browser does attach by itself (a proxy's Basic login), and
        // a token on the UI (which takes none), do not exempt a request.
        assert!(
            cross_site(
                &post_to(
                    "/api/v1/cache/k",
                    &[host, evil, ("authorization", "Basic dTpw")]
                ),
                false
            )
            .is_some()
        );
        assert!(cross_site(&post(&[host, evil, ("authorization", "Bearer t")]), false).is_some());
        let behind = [
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-host", "cache.example"),
            ("origin", "https://cache.example"),
        ];
        assert!(cross_site(&post(&behind), true).is_none());
        assert!(cross_site(&post(&behind), false).is_some());
    }

    #[test]
    fn the_policy_names_the_nonce() {
        let policy = content_security_policy("abc");
        assert!(policy.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval'"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!content_security_policy("").contains("nonce"));
    }
}
