//! Integration tests of nscache, through the cache component, against a real
//! Redis (database 15, unique prefixes) and the embedded memory store.

mod concurrency;
mod http_api;
mod invalidation;
mod migrations;
mod patterns;
mod semantics;
mod ui;
