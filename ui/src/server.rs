//! The UI as an axum router, for the host to merge into its own: the pages,
//! the server functions under [`PREFIX`](crate::api::PREFIX), the style
//! sheet, and the hydration bundle under `/pkg/` when it was built.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};

use crate::app::{App, shell};
use crate::backend::{BackendHandle, UiBackend};

/// The hand-written style sheet, served at `/ui.css`.
pub const STYLE_CSS: &str = include_str!("../style.css");

/// The name of the bundle's files: `/pkg/{OUTPUT_NAME}.js`, `/pkg/{OUTPUT_NAME}_bg.wasm`.
pub const OUTPUT_NAME: &str = "nscache_ui";

/// The hydration bundle, when this crate was built with the `bundle` feature.
#[derive(Debug, Clone, Copy)]
pub struct Bundle {
    /// The JavaScript glue (an ES module).
    pub js: &'static [u8],
    /// The wasm module.
    pub wasm: &'static [u8],
}

/// The bundle built into this binary, if any.
pub const BUNDLE: Option<Bundle> = {
    #[cfg(feature = "bundle")]
    {
        Some(Bundle {
            js: include_bytes!(concat!(env!("OUT_DIR"), "/pkg/nscache_ui.js")),
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/pkg/nscache_ui_bg.wasm")),
        })
    }
    #[cfg(not(feature = "bundle"))]
    {
        None
    }
};

/// The nonce of the response's `Content-Security-Policy`, chosen by the
/// host for each request and put in the request's extensions. The pages put
/// it on the scripts they load (Leptos' [`Nonce`](leptos::nonce::Nonce));
/// without it Leptos makes up one the policy does not name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspNonce(pub String);

/// How the UI is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiSettings {
    /// Send the hydration script with each page (only when [`BUNDLE`] is
    /// built; without it every page is server-rendered and forms post to
    /// the server).
    pub hydrate: bool,
}

impl Default for UiSettings {
    /// Hydrate when the bundle is built in.
    fn default() -> Self {
        UiSettings {
            hydrate: BUNDLE.is_some(),
        }
    }
}

/// Leptos answers a redirect with `302` only to requests that accept HTML,
/// and otherwise with `200` and a `Location` header (for its own client).
/// Here: a page that redirects answers `303 See Other` to every client, with
/// no body; a form posted to a server function without JavaScript gets `303`
/// back to the page (after a POST, the next request is a GET); a hydrated
/// page's own server-function call keeps Leptos' redirect header.
async fn see_other(request: Request, next: Next) -> Response {
    let server_fn = request.uri().path().starts_with(crate::api::PREFIX);
    let mut response = next.run(request).await;
    if !response.headers().contains_key(header::LOCATION) {
        return response;
    }
    let status = response.status();
    if status == StatusCode::FOUND || (!server_fn && status.is_success()) {
        let mut headers = std::mem::take(response.headers_mut());
        headers.remove(leptos::server_fn::redirect::REDIRECT_HEADER);
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::CONTENT_TYPE);
        let mut see_other = Response::new(Body::empty());
        *see_other.status_mut() = StatusCode::SEE_OTHER;
        *see_other.headers_mut() = headers;
        return see_other;
    }
    response
}

/// `GET /` is answered here rather than by a page: `303` to one's settings
/// when signed in, else to the sign-in page (as the `Home` page does when
/// the hydrated router navigates to `/`). Rendered by Leptos, it read the
/// page context in a third suspense boundary of the same stream, and Leptos
/// 0.8 can leave such a stream stalled for good under load (one resource
/// read in several `<Suspense>`s: leptos-rs/leptos#4851) — seen here as a
/// request that timed out after 30 s.
async fn home(backend: BackendHandle, request: Request, next: Next) -> Response {
    if request.uri().path() != "/" || request.method() != Method::GET {
        return next.run(request).await;
    }
    let (parts, _) = request.into_parts();
    let to = match backend.0.viewer(&parts).await {
        Ok(_) => "/me",
        // As the page did: anyone not known to be signed in signs in.
        Err(_) => "/login",
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    response
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The UI's routes, served by `backend`. Has no fallback, so that it merges
/// into a router that has one.
pub fn router(backend: Arc<dyn UiBackend>, settings: UiSettings) -> Router {
    let hydrate = settings.hydrate && BUNDLE.is_some();
    let options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_pkg_dir("pkg")
        .build();
    let routes = generate_route_list(App);
    let handle = BackendHandle(backend);
    let for_pages = handle.clone();
    let for_home = handle.clone();
    let context = move || {
        provide_context(for_pages.clone());
        // Leptos put the request's head in context before this runs.
        if let Some(CspNonce(nonce)) = use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CspNonce>().cloned())
        {
            provide_context(leptos::nonce::Nonce::from_value(nonce));
        }
    };
    let shell_options = options.clone();
    let server_fns = move |request: Request| {
        let handle = handle.clone();
        async move {
            handle_server_fns_with_context(move || provide_context(handle.clone()), request).await
        }
    };
    let mut router = Router::new()
        .route(
            &format!("{}/{{*name}}", crate::api::PREFIX),
            post(server_fns),
        )
        .leptos_routes_with_context(&options, routes, context, move || {
            shell(shell_options.clone(), hydrate)
        })
        .route(
            "/ui.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS.as_bytes()) }),
        );
    if let Some(bundle) = BUNDLE {
        router = router
            .route(
                &format!("/pkg/{OUTPUT_NAME}.js"),
                get(move || async move { asset("text/javascript; charset=utf-8", bundle.js) }),
            )
            .route(
                &format!("/pkg/{OUTPUT_NAME}_bg.wasm"),
                get(move || async move { asset("application/wasm", bundle.wasm) }),
            );
    } else {
        router = router.route(
            "/pkg/{*file}",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    "this server was built without the hydration bundle",
                )
                    .into_response()
            }),
        );
    }
    router
        .layer(middleware::from_fn(see_other))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            home(for_home.clone(), request, next)
        }))
        .with_state(options)
}
