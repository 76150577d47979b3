//! The nscache admin web UI, written with Leptos: sign in and out, "My
//! settings" (the signed-in person's cache on/off, namespace version, "Clear
//! my cache"), and for admins the users table, table and global invalidation
//! and a dashboard.
//!
//! The crate knows nothing of Redis, Postgres or the cache: it asks a
//! [`backend::UiBackend`] (implemented by the host on top of its permission
//! layer) for everything, through server functions ([`api`]). It builds two
//! ways:
//! - feature `ssr`: the server side, [`server::router`] to merge into the
//!   host's axum router. Pages are fully rendered on the server and every
//!   form posts to a server function, so the UI works without JavaScript.
//! - feature `hydrate`: the browser side, compiled to wasm by `build.rs`
//!   (feature `bundle`) and served under `/pkg/`; it takes over the
//!   server-rendered page, sends forms with `fetch` and refreshes the
//!   dashboard in place.
//!
//! ```
//! use nscache_ui::model::{UsersPage, human_bytes};
//!
//! let page = UsersPage { users: vec![], total: 100_000, page: 1, per_page: 25, versions_available: true };
//! assert_eq!(page.pages(), 4000);
//! assert_eq!(human_bytes(3 << 20), "3.0 MiB");
//! ```
#![deny(missing_docs)]
#![recursion_limit = "512"]

// The argument structs `#[server]` generates have one field per parameter,
// which rustdoc cannot take from the functions' docs.
#[allow(missing_docs)]
pub mod api;
pub mod app;
#[cfg(feature = "ssr")]
pub mod backend;
pub mod charts;
pub mod model;
mod pages;
#[cfg(feature = "ssr")]
pub mod server;

/// The wasm entry point: take over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(app::App);
}
