//! Integration tests of nscache, through the cache component, against a real
//! Redis (database 15, unique prefixes) and the embedded memory store.

mod cluster;
mod concurrency;
mod conformance;
mod connections;
mod doctor;
mod faults;
mod fuzz;
mod http_api;
mod invalidation;
mod l1;
mod linearizable;
mod load;
mod migrations;
mod patterns;
mod queries;
mod security;
mod semantics;
mod store_conformance;
mod ui;
