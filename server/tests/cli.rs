//! The `nscache` binary against the real test Redis (database 15, a unique
//! prefix per test): outputs and exit codes.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

fn redis_url() -> String {
    std::env::var("NSCACHE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_owned())
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "cli{}x{nanos}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run `nscache` with a prefix of the test's own.
fn nscache(prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nscache"))
        .env("REDIS_URL", redis_url())
        .env("CACHE_KEY_PREFIX", prefix)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("run nscache")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
}

#[test]
fn global_key_round_trip_and_exit_codes() {
    let p = unique();
    let set = nscache(&p, &["set", "invoice_seq:2026", "41", "--ttl", "none"]);
    assert_eq!(set.status.code(), Some(0), "{set:?}");
    let incr = nscache(&p, &["incr", "invoice_seq:2026"]);
    assert_eq!(
        (incr.status.code(), stdout(&incr)),
        (Some(0), "42".to_owned())
    );
    let get = nscache(&p, &["get", "invoice_seq:2026"]);
    assert_eq!(
        (get.status.code(), stdout(&get)),
        (Some(0), "42".to_owned())
    );
    let ttl = nscache(&p, &["ttl", "invoice_seq:2026"]);
    assert_eq!(stdout(&ttl), "forever");
    let add = nscache(&p, &["add", "invoice_seq:2026", "0"]);
    assert_eq!(
        (add.status.code(), stdout(&add)),
        (Some(1), "exists".to_owned())
    );
    let miss = nscache(&p, &["get", "nothing-here"]);
    assert_eq!(miss.status.code(), Some(1));
    let incr_missing = nscache(&p, &["incr", "nothing-here"]);
    assert_eq!(incr_missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&incr_missing.stderr).contains("not found"));
    let del = nscache(&p, &["delete", "invoice_seq:2026"]);
    assert_eq!(
        (del.status.code(), stdout(&del)),
        (Some(0), "deleted".to_owned())
    );
    let ttl = nscache(&p, &["set", "token", "t", "--ttl", "2.5"]);
    assert_eq!(ttl.status.code(), Some(0));
    let left: f64 = stdout(&nscache(&p, &["ttl", "token"])).parse().unwrap();
    assert!(left > 0.0 && left <= 2.5, "a 2.5 s TTL, {left} s left");
}

#[test]
fn user_namespace_and_invalidation() {
    let p = unique();
    let user = unique();
    assert_eq!(
        nscache(&p, &["set", "--user", &user, "profile", "hello"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        stdout(&nscache(&p, &["get", "--user", &user, "profile"])),
        "hello"
    );
    let version: u64 = stdout(&nscache(&p, &["version", "--user", &user]))
        .parse()
        .unwrap();
    let new: u64 = stdout(&nscache(&p, &["invalidate", "--user", &user]))
        .parse()
        .unwrap();
    assert!(new > version);
    assert_eq!(
        nscache(&p, &["get", "--user", &user, "profile"])
            .status
            .code(),
        Some(1)
    );
    let table: u64 = stdout(&nscache(&p, &["invalidate", "--table", "invoices"]))
        .parse()
        .unwrap();
    assert!(table > 0);
}

#[test]
fn usage_errors_exit_2_and_say_why() {
    let p = unique();
    let none = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .env_remove("REDIS_URL")
        .args(["get", "k"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("REDIS_URL"));
    let both = nscache(&p, &["invalidate", "--user", "1", "--all"]);
    assert_eq!(both.status.code(), Some(2));
    let empty_user = nscache(&p, &["set", "--user", "", "k", "v"]);
    assert_eq!(empty_user.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty_user.stderr).contains("user id"));
    let bad_ttl = nscache(&p, &["set", "k", "v", "--ttl", "soon"]);
    assert_eq!(bad_ttl.status.code(), Some(2));
    let not_int = nscache(&p, &["set", "s", "abc"]);
    assert_eq!(not_int.status.code(), Some(0));
    assert_eq!(nscache(&p, &["incr", "s"]).status.code(), Some(2));
    let bad_prefix = nscache("a:b", &["get", "k"]);
    assert_eq!(bad_prefix.status.code(), Some(2));
}

#[test]
fn unreachable_redis_exits_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .args(["--redis-url", "redis://127.0.0.1:1/1", "get", "k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unavailable"));
}

#[test]
fn writes_the_component() {
    let path = std::env::temp_dir().join(format!("{}.wasm", unique()));
    let out = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .args(["component", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"\0asm", "a WebAssembly binary");
    assert_eq!(bytes, nscache::COMPONENT_WASM);
    std::fs::remove_file(&path).unwrap();
}
