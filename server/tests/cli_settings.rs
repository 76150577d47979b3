//! Every cache setting reaches every command that touches the store, whether
//! given as a global option or in the environment — observed on a private
//! `redis-server` (the keys written, the connections opened), not by reading
//! the settings back.

use std::process::{Command, Output};
use std::time::Duration;

use nscache_tests::RedisServer;

/// `nscache ARGS` with a clean environment for the cache's variables.
fn nscache(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nscache"));
    for option in nscache::settings::OPTIONS {
        command.env_remove(option.env);
    }
    command
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .args(args);
    command.output().expect("run nscache")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every key on `server`'s database 1, sorted.
fn keys(server: &RedisServer) -> Vec<String> {
    let client = redis::Client::open(server.url(1)).expect("url");
    let mut c = client.get_connection().expect("connect");
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("KEYS");
    keys.sort();
    keys
}

/// `total_connections_received` of `server` (every connection ever accepted).
fn connections_received(server: &RedisServer) -> u64 {
    let client = redis::Client::open(server.url(0)).expect("url");
    let mut c = client.get_connection().expect("connect");
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_connections_received")
}

#[test]
fn the_namespace_root_and_prefix_reach_the_keys_written() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    let flags = [
        "--redis-url",
        &url,
        "--namespace-root",
        "app",
        "--prefix",
        "shop",
    ];
    let set = nscache(
        &[],
        &[&flags[..], &["set", "--user", "42", "k", "v"]].concat(),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let set = nscache(
        &[],
        &[&flags[..], &["set", "g", "1", "--ttl", "none"]].concat(),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let keys = keys(&server);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("app:42:v") && k.ends_with(":data:k")),
        "{keys:?}"
    );
    assert!(keys.contains(&"shop:1:g".to_owned()), "{keys:?}");
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("cache") || k.starts_with("revisbali")),
        "{keys:?}"
    );

    // The same through the environment, read back through the same root.
    let env = [
        ("REDIS_URL", url.as_str()),
        ("NSCACHE_NAMESPACE_ROOT", "app"),
    ];
    let get = nscache(&env, &["get", "--user", "42", "k"]);
    assert_eq!(
        (get.status.code(), stdout(&get)),
        (Some(0), "v".to_owned()),
        "{}",
        stderr(&get)
    );
    let other_root = nscache(
        &[("REDIS_URL", url.as_str())],
        &["get", "--user", "42", "k"],
    );
    assert_eq!(
        other_root.status.code(),
        Some(1),
        "the default root does not see app's keys"
    );
    // A flag beats the environment.
    let flag_wins = nscache(
        &env,
        &["--namespace-root", "other", "get", "--user", "42", "k"],
    );
    assert_eq!(flag_wins.status.code(), Some(1));
    let version = nscache(&env, &["version", "--user", "42"]);
    assert_eq!(version.status.code(), Some(0));
    let invalidate = nscache(&env, &["invalidate", "--user", "42"]);
    assert_eq!(invalidate.status.code(), Some(0));
    assert!(
        keys_of(&server, "app_user_version:42"),
        "invalidation under the root"
    );
}

fn keys_of(server: &RedisServer, key: &str) -> bool {
    keys(server).iter().any(|k| k == key)
}

#[test]
fn the_pool_size_bounds_the_connections_of_a_data_command() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    // A `set` makes two round trips (a ping, then the write): with the
    // default pool they go out on two connections, with a pool of 1 on one.
    let before = connections_received(&server);
    let set = nscache(
        &[("NSCACHE_POOL_SIZE", "1")],
        &["--redis-url", &url, "set", "k", "v"],
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let with_one = connections_received(&server) - before - 1; // minus our INFO connection
    let before = connections_received(&server);
    let set = nscache(&[], &["--redis-url", &url, "set", "k", "v"]);
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let with_default = connections_received(&server) - before - 1;
    assert_eq!(with_one, 1, "NSCACHE_POOL_SIZE=1");
    assert!(
        with_default >= 2,
        "the default pool spreads calls: {with_default}"
    );
    let flag = nscache(
        &[],
        &["--redis-url", &url, "--pool-size", "1", "incr", "nope"],
    );
    assert_eq!(flag.status.code(), Some(1), "{}", stderr(&flag));
}

#[test]
fn the_timeouts_reach_data_commands() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    let ok = nscache(&[], &["--redis-url", &url, "set", "k", "v"]);
    assert_eq!(ok.status.code(), Some(0));
    // A command opens its connections while the server is frozen (SIGSTOP)
    // for up to 4 s: with 0.3 s timeouts it gives up as unavailable (exit 3);
    // with the defaults (5 s) it waits the freeze out and answers. (The
    // connection's handshake counts in redis-rs' connect timeout; the socket
    // timeout of an open connection is tested on the library, in
    // tests/it/faults.rs.)
    let frozen_for_a_while = |env: &[(&str, &str)], args: &[&str]| {
        server.pause();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let server = &server;
            scope.spawn(move || {
                let _ = finished.recv_timeout(Duration::from_secs(4));
                server.resume();
            });
            let args = [&["--redis-url", url.as_str()][..], args, &["get", "k"]].concat();
            let out = nscache(env, &args);
            let _ = done.send(());
            out
        })
    };
    let timeouts = [
        ("NSCACHE_CONNECT_TIMEOUT", "0.3"),
        ("NSCACHE_SOCKET_TIMEOUT", "0.3"),
    ];
    let get = frozen_for_a_while(&timeouts, &[]);
    assert_eq!(
        get.status.code(),
        Some(3),
        "timeouts from the environment: {}",
        stderr(&get)
    );
    let get = frozen_for_a_while(
        &[],
        &["--connect-timeout", "0.3", "--socket-timeout", "0.3"],
    );
    assert_eq!(
        get.status.code(),
        Some(3),
        "timeouts from flags: {}",
        stderr(&get)
    );
    let get = frozen_for_a_while(&[], &[]);
    assert_eq!(
        (get.status.code(), stdout(&get)),
        (Some(0), "v".to_owned()),
        "{}",
        stderr(&get)
    );
}

#[test]
fn bad_settings_are_refused_the_same_way_wherever_they_come_from() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    for (env, args, names) in [
        (
            vec![("NSCACHE_SOCKET_TIMEOUT", "0")],
            vec![],
            "NSCACHE_SOCKET_TIMEOUT",
        ),
        (vec![], vec!["--socket-timeout", "0"], "--socket-timeout"),
        (
            vec![("NSCACHE_CONNECT_TIMEOUT", "0")],
            vec![],
            "NSCACHE_CONNECT_TIMEOUT",
        ),
        (
            vec![("NSCACHE_POOL_SIZE", "0")],
            vec![],
            "NSCACHE_POOL_SIZE",
        ),
        (vec![], vec!["--pool-size", "many"], "--pool-size"),
        (vec![("NSCACHE_L1", "maybe")], vec![], "NSCACHE_L1"),
    ] {
        let args = [&["--redis-url", url.as_str()][..], &args, &["get", "k"]].concat();
        let out = nscache(&env, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{env:?} {args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(names),
            "the message names {names}: {}",
            stderr(&out)
        );
    }
    // The component's own rules (prefix and root) are checked as well.
    let out = nscache(&[], &["--redis-url", &url, "--prefix", "a:b", "get", "k"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_l1_flag_is_taken_alone_or_with_a_value() {
    let server = RedisServer::start(&[]);
    let url = server.url(1);
    let set = nscache(&[], &["--redis-url", &url, "--l1", "set", "k", "v"]);
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let get = nscache(&[], &["--redis-url", &url, "--l1=false", "get", "k"]);
    assert_eq!((get.status.code(), stdout(&get)), (Some(0), "v".to_owned()));
    let bad = nscache(&[], &["--redis-url", &url, "--l1=perhaps", "get", "k"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}
