//! An application that caches per-user pages with [`nscache::layer::CacheLayer`]
//! placed after its authentication, as the reference system's `CacheMiddleware`:
//!
//! ```text
//! cargo run --example request_layer            # then:
//! curl -H 'x-user: 42' localhost:3000/invoices  # computed, then cached per user
//! curl -X POST -H 'x-user: 42' localhost:3000/invoices   # adds one: invalidates user 42
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use nscache::layer::{CacheLayer, UserCache};
use nscache::{Cache, Expiry};

/// Who the (toy) authentication found: the `x-user` header.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub String);

async fn authenticate(mut request: Request, next: Next) -> Response {
    match request
        .headers()
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        Some(user) => {
            let user = CurrentUser(user.to_owned());
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None => (StatusCode::UNAUTHORIZED, "who are you?").into_response(),
    }
}

/// The application's data: invoice counts per user, and how often the
/// expensive page was computed.
#[derive(Debug, Default)]
pub struct Invoices {
    /// Invoices per user.
    pub counts: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// How many times the page was rendered (cache misses).
    pub renders: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    cache: Cache,
    invoices: Arc<Invoices>,
}

async fn list_invoices(
    State(app): State<AppState>,
    axum::Extension(user): axum::Extension<CurrentUser>,
    cache: UserCache,
) -> Result<String, StatusCode> {
    let page = cache
        .get_or_set("invoices:page", Expiry::secs(300), || async {
            app.invoices.renders.fetch_add(1, Ordering::SeqCst);
            let n = app
                .invoices
                .counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&user.0)
                .copied()
                .unwrap_or(0);
            Ok::<_, std::convert::Infallible>(
                format!("user {} has {n} invoices", user.0).into_bytes(),
            )
        })
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    String::from_utf8(page).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn add_invoice(
    State(app): State<AppState>,
    axum::Extension(user): axum::Extension<CurrentUser>,
) -> Result<StatusCode, StatusCode> {
    *app.invoices
        .counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(user.0.clone())
        .or_default() += 1;
    // The user's data changed: one O(1) invalidation of their namespace.
    app.cache
        .invalidate_user(&user.0)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(StatusCode::CREATED)
}

/// The application: authentication first, then the cache layer.
pub fn app(cache: Cache, invoices: Arc<Invoices>) -> Router {
    let layer = CacheLayer::new(cache.clone(), |req: &Request| {
        req.extensions().get::<CurrentUser>().map(|u| u.0.clone())
    });
    Router::new()
        .route("/invoices", get(list_invoices).post(add_invoice))
        // Layers added later run first: authentication (below) runs before the cache layer.
        .layer(layer)
        .layer(from_fn(authenticate))
        .with_state(AppState { cache, invoices })
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cache = Cache::builder().from_env()?.build().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "listening on http://127.0.0.1:3000 (cache store: {})",
        cache.store().kind()
    );
    axum::serve(listener, app(cache, Arc::default())).await?;
    Ok(())
}
