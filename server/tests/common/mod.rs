//! Helpers for the tests that run the `nscache` binary: spawning `serve`, and
//! a minimal HTTP/1.1 client (one request per connection).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A name no other test run uses (letters, digits, `_`).
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{tag}{}x{nanos}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run the `nscache` CLI with `env` (and `stdin`, if any); its stdout.
/// Panics with its stderr when it fails.
pub fn run_cli(env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nscache");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("nscache output");
    assert!(
        out.status.success(),
        "nscache {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// With the CLI on a migrated directory: an admin `root` ("admin
/// password"), a user `alice` ("alice password") and a service `app` with an
/// API token. Returns alice's namespace id and the token.
pub fn add_accounts(env: &[(&str, &str)]) -> (String, String) {
    run_cli(
        env,
        &["user", "add", "root", "--admin", "--password-stdin"],
        Some("admin password\n"),
    );
    let created = run_cli(
        env,
        &["user", "add", "alice", "--password-stdin"],
        Some("alice password\n"),
    );
    let alice = created
        .split("namespace id ")
        .nth(1)
        .expect("the namespace id is printed")
        .trim()
        .trim_end_matches(')')
        .to_owned();
    run_cli(env, &["user", "add", "app", "--service"], None);
    let token = run_cli(env, &["token", "create", "app"], None)
        .trim()
        .to_owned();
    (alice, token)
}

/// `nscache serve` in a child process, killed when dropped.
pub struct Served {
    child: Child,
    /// `127.0.0.1:PORT`
    pub address: String,
    /// What it printed before serving.
    pub banner: Vec<String>,
}

impl Served {
    /// Start `nscache serve --listen 127.0.0.1:0` with these environment
    /// variables (`None` removes one), and wait until it serves.
    pub fn start(env: &[(&str, Option<&str>)]) -> Served {
        Served::start_with(&[], env)
    }

    /// [`start`](Self::start) with extra arguments to `serve`.
    pub fn start_with(args: &[&str], env: &[(&str, Option<&str>)]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nscache"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.spawn().expect("spawn nscache serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let mut address = None;
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                address = Some(rest.trim().to_owned());
            }
            banner.push(line);
            if address.is_some() {
                // The rest of the banner follows at once; then it is quiet.
                while let Ok(line) = rx.recv_timeout(Duration::from_millis(700)) {
                    banner.push(line);
                }
                break;
            }
        }
        let address = address.unwrap_or_else(|| panic!("nscache serve did not start: {banner:?}"));
        Served {
            child,
            address,
            banner,
        }
    }
}

impl Served {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of the process' `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
    pub fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }
}

impl Served {
    /// Send SIGTERM (Unix).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Send a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {}", self.pid());
    }

    /// Wait up to `limit` for the process to exit; `None` if it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The embedded default (memory store, SQLite in a fresh data directory)
    /// with `extra` environment variables; returns the data directory too.
    pub fn embedded(extra: &[(&str, Option<&str>)]) -> (Served, std::path::PathBuf) {
        let data = std::env::temp_dir().join(unique("data"));
        let mut env = vec![
            ("REDIS_URL", None),
            ("DATABASE_URL", None),
            ("NSCACHE_DATA_DIR", Some(data.to_str().expect("utf-8 path"))),
        ];
        env.extend_from_slice(extra);
        (Served::start(&env), data)
    }

    /// The first admin's generated password: read from the file the banner
    /// names (`password in PATH`), or from the banner itself.
    pub fn first_admin_password(&self) -> String {
        let banner = self.banner.join("\n");
        if let Some(path) = banner
            .split("password is in ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
        {
            let text =
                std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            return text.trim().to_owned();
        }
        banner
            .split("with password ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("says how to sign in:\n{banner}"))
            .to_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body, parsed as JSON (`Null` if it is not).
    pub json: serde_json::Value,
}

impl Response {
    /// The first header of this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Send one request; `headers` are extra header lines.
pub async fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Response {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    exchange(stream, address, method, path, headers, body).await
}

/// [`http`] from a given local address (any 127.x.y.z on Linux).
pub async fn http_from(
    source: std::net::IpAddr,
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Response {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .expect("bind the source address");
    let stream = socket
        .connect(address.parse().expect("an address"))
        .await
        .expect("connect");
    exchange(stream, address, method, path, headers, body).await
}

async fn exchange(
    mut stream: tokio::net::TcpStream,
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    parse(&raw)
}

/// Parse a whole HTTP/1.1 response.
pub fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A signed-in browser session against a served process.
#[derive(Debug, Clone)]
pub struct Session {
    /// `nscache_session=...`
    pub cookie: String,
    /// CSRF token.
    pub csrf: String,
}

/// Sign in; panics on failure.
pub async fn login(address: &str, username: &str, password: &str) -> Session {
    let r = http(
        address,
        "POST",
        "/api/v1/session",
        &[],
        Some(&serde_json::json!({ "username": username, "password": password })),
    )
    .await;
    assert_eq!(r.status, 200, "login {username}: {:?}", r.json);
    let cookie = r
        .header("set-cookie")
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    Session {
        cookie,
        csrf: r.json["csrf_token"].as_str().expect("csrf").to_owned(),
    }
}

/// Headers of a session request.
pub fn session_headers(s: &Session) -> Vec<(&str, &str)> {
    vec![
        ("Cookie", s.cookie.as_str()),
        ("X-CSRF-Token", s.csrf.as_str()),
    ]
}
