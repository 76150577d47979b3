//! The request-layer example application, driven in process.

#[allow(dead_code)]
#[path = "../examples/request_layer.rs"]
mod example;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use nscache::Cache;
use nscache::profiles::StaticProfiles;
use tower::ServiceExt;

async fn call(app: &axum::Router, method: &str, user: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri("/invoices");
    if let Some(u) = user {
        request = request.header("x-user", u);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn pages_are_cached_per_user_and_invalidated_on_change() {
    let profiles = Arc::new(StaticProfiles::new());
    let cache = Cache::builder()
        .profiles(profiles.clone())
        .build()
        .await
        .unwrap();
    let invoices = Arc::new(example::Invoices::default());
    let app = example::app(cache, invoices.clone());

    assert_eq!(
        call(&app, "GET", None).await.0,
        StatusCode::UNAUTHORIZED,
        "authentication runs first"
    );
    assert_eq!(
        call(&app, "GET", Some("42")).await,
        (StatusCode::OK, "user 42 has 0 invoices".into())
    );
    assert_eq!(
        call(&app, "GET", Some("42")).await.1,
        "user 42 has 0 invoices"
    );
    assert_eq!(
        invoices.renders.load(Ordering::SeqCst),
        1,
        "the second request was served from the cache"
    );
    assert_eq!(
        call(&app, "GET", Some("7")).await.1,
        "user 7 has 0 invoices"
    );
    assert_eq!(
        invoices.renders.load(Ordering::SeqCst),
        2,
        "each user has their own namespace"
    );

    assert_eq!(call(&app, "POST", Some("42")).await.0, StatusCode::CREATED);
    assert_eq!(
        call(&app, "GET", Some("42")).await.1,
        "user 42 has 1 invoices",
        "invalidated, recomputed"
    );
    assert_eq!(
        call(&app, "GET", Some("7")).await.1,
        "user 7 has 0 invoices"
    );
    assert_eq!(
        invoices.renders.load(Ordering::SeqCst),
        3,
        "user 7's page stayed cached"
    );

    // A user with caching disabled gets a bypassing view: every request renders.
    profiles.set_cache_enabled("7", false);
    call(&app, "GET", Some("7")).await;
    call(&app, "GET", Some("7")).await;
    assert_eq!(invoices.renders.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_handler_without_a_user_cache_says_the_order_is_wrong() {
    use axum::routing::get;
    use nscache::layer::{CacheLayer, UserCache};
    let cache = Cache::memory().await.unwrap();
    // The layer identifies no one, as when it runs before authentication.
    let app = axum::Router::new()
        .route(
            "/",
            get(|cache: UserCache| async move { cache.user_id().unwrap_or_default().to_owned() }),
        )
        .layer(CacheLayer::new(cache, |_req: &Request<Body>| None));
    let response = app
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("CacheLayer runs before authentication"));
}
