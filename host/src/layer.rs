//! [`CacheLayer`]: a tower layer that puts the request user's namespaced cache
//! view into the request extensions, for handlers to take with the
//! [`UserCache`] extractor. The reference system's `CacheMiddleware`.
//!
//! **Ordering:** it must run *after* the application's authentication, which
//! is what tells it who the user is. In axum, layers added later run first, so
//! add `CacheLayer` *before* the authentication layer:
//!
//! ```ignore
//! Router::new()
//!     .route("/dashboard", get(dashboard))
//!     .layer(CacheLayer::new(cache, |req| req.extensions().get::<CurrentUser>().map(|u| u.id.to_string())))
//!     .layer(from_fn(authenticate)) // runs first
//! ```
//!
//! A request with no identified user gets no [`UserCache`]; a handler that
//! asks for one then answers 500 with a message saying the layer order is
//! wrong. A user whose `cache_enabled` flag is off gets a view that bypasses
//! the cache (reads miss, writes are skipped): handlers need no special case.
//! `host/examples/request_layer.rs` is a complete application.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::{Cache, Keyspace};

/// The request user's cache namespace, put into the extensions by [`CacheLayer`].
#[derive(Debug, Clone)]
pub struct UserCache(pub Keyspace);

impl std::ops::Deref for UserCache {
    type Target = Keyspace;

    fn deref(&self) -> &Keyspace {
        &self.0
    }
}

/// What a handler that asks for a [`UserCache`] answers when the request has
/// none: 500, `{"error": {"code": "no_user_cache", "message": …}}` (the same
/// error shape as nscache's HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingUserCache;

impl IntoResponse for MissingUserCache {
    fn into_response(self) -> Response {
        let message = "no user cache for this request: the request has no authenticated user, \
                       or CacheLayer runs before authentication";
        let body = serde_json::json!({ "error": { "code": "no_user_cache", "message": message } });
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserCache {
    type Rejection = MissingUserCache;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<UserCache>()
            .cloned()
            .ok_or(MissingUserCache)
    }
}

type Identify<B> = Arc<dyn Fn(&Request<B>) -> Option<String> + Send + Sync>;

/// Puts `cache.user(id)` into each request whose user `identify` finds.
pub struct CacheLayer<B> {
    cache: Cache,
    identify: Identify<B>,
}

impl<B> Clone for CacheLayer<B> {
    fn clone(&self) -> Self {
        CacheLayer {
            cache: self.cache.clone(),
            identify: self.identify.clone(),
        }
    }
}

impl<B> CacheLayer<B> {
    /// A layer over `cache`; `identify` returns the authenticated user's id
    /// (typically from an extension the authentication layer inserted).
    pub fn new(
        cache: Cache,
        identify: impl Fn(&Request<B>) -> Option<String> + Send + Sync + 'static,
    ) -> CacheLayer<B> {
        CacheLayer {
            cache,
            identify: Arc::new(identify),
        }
    }
}

impl<S, B> Layer<S> for CacheLayer<B> {
    type Service = CacheService<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CacheLayer`] wraps around an application.
pub struct CacheService<S, B> {
    inner: S,
    layer: CacheLayer<B>,
}

impl<S: Clone, B> Clone for CacheService<S, B> {
    fn clone(&self) -> Self {
        CacheService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, B> Service<Request<B>> for CacheService<S, B>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(user) = (self.layer.identify)(&request) {
            request
                .extensions_mut()
                .insert(UserCache(self.layer.cache.user(user)));
        }
        self.inner.call(request)
    }
}
