//! Integration tests of nscache, through the cache component, against a real
//! Redis (database 15, unique prefixes) and the embedded memory store.

mod concurrency;
mod invalidation;
mod patterns;
mod semantics;
