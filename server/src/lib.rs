//! The nscache server: the `nscache` binary's CLI, the HTTP API, accounts and
//! their directory (Postgres or SQLite), the admin UI's backend, the
//! dashboard and the bench. It builds on the embeddable library, [`nscache`].
#![deny(missing_docs)]

pub mod auth;
pub mod bench;
pub mod cli;
pub mod control;
pub mod dashboard;
pub mod directory;
pub mod doctor;
pub mod edge;
pub mod http;
pub mod maintenance;
pub mod server;
#[cfg(feature = "ui")]
pub mod ui_backend;
