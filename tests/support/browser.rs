//! A real browser for the UI tests: Debian's `chromium` driven through
//! `chromedriver` (started on a free port) with fantoccini, against the
//! server running in process on a random port. The WebDriver session is
//! always ended (which closes the browser) and chromedriver stopped, also
//! when a test fails.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use nscache_server::directory::{ProfileTable, Role};
use nscache_server::server::ServerConfig;
use serde_json::{Value, json};

use crate::server::{Creds, TestServer};
use crate::{free_port, unique};

/// How the UI is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Server-rendered only: the pages load no bundle, the browser runs no
    /// page script, every form posts to the server.
    Ssr,
    /// The pages load the wasm bundle and hydrate.
    Hydrated,
}

impl Mode {
    /// `ssr` or `hydrated` (for screenshot folders).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ssr => "ssr",
            Mode::Hydrated => "hydrated",
        }
    }
}

/// At most this many browsers at once (the machines have 2 cores).
static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Desktop and phone viewports of the screenshots.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// Phone width (an iPhone 12-15 in CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);

/// Where screenshots go: `$NSCACHE_SCREENSHOTS`, else `screenshots/` at the
/// workspace root (ignored by git).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("NSCACHE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("screenshots")
        })
}

/// The app served over TCP, on real Postgres (a schema of its own) and the
/// shared Redis.
pub struct UiApp {
    /// The server, its router and its schema.
    pub t: TestServer,
    /// `http://127.0.0.1:port`
    pub base: String,
    /// The mode it serves.
    pub mode: Mode,
    serving: tokio::task::JoinHandle<()>,
}

impl UiApp {
    /// Serve the UI in `mode`.
    pub async fn start(mode: Mode) -> UiApp {
        let config = ServerConfig {
            ui_hydrate: mode == Mode::Hydrated,
            dashboard_interval: Duration::from_secs(1),
            ..ServerConfig::default()
        };
        if mode == Mode::Hydrated {
            assert!(
                nscache_server::server::ui_bundle_built(),
                "the hydrated tests need the bundle: build with feature nscache/ui-hydrate"
            );
        }
        let t = TestServer::postgres_custom(ProfileTable::default(), None, config).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = t
            .router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        UiApp {
            t,
            base: format!("http://{address}"),
            mode,
            serving,
        }
    }

    /// An account (password `correct horse battery`); returns its namespace id.
    pub async fn account(&self, name: &str, role: Role) -> String {
        self.t.account(name, role).await
    }

    /// A service token, for setting and reading values through the API.
    pub async fn service(&self) -> Creds {
        let name = unique("svc");
        self.t.account(&name, Role::Service).await;
        self.t.token(&name).await
    }

    /// Set `key` in `user`'s namespace through the HTTP API.
    pub async fn api_set(&self, service: &Creds, user: &str, key: &str, value: &str) {
        let reply = self
            .t
            .call(
                axum::http::Method::PUT,
                &format!("/api/v1/cache/users/{user}/keys/{key}"),
                service,
                Some(json!({ "value": value })),
            )
            .await;
        assert_eq!(reply.status, 200, "set: {}", reply.text);
    }

    /// Get `key` from `user`'s namespace through the HTTP API (`None`: a miss).
    pub async fn api_get(&self, service: &Creds, user: &str, key: &str) -> Option<String> {
        let reply = self
            .t
            .call(
                axum::http::Method::GET,
                &format!("/api/v1/cache/users/{user}/keys/{key}"),
                service,
                None,
            )
            .await;
        match reply.status.as_u16() {
            200 => Some(
                reply.json["value"]["value"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| reply.json["value"].to_string()),
            ),
            404 => None,
            other => panic!("get {key}: {other} {}", reply.text),
        }
    }

    /// Stop serving and drop the schema.
    pub async fn stop(self) {
        self.serving.abort();
        self.t.cleanup().await;
    }
}

/// chromedriver, stopped when dropped.
struct Driver {
    child: Option<Child>,
    profile: PathBuf,
}

impl Driver {
    fn start(port: u16) -> Driver {
        let profile = std::env::temp_dir().join(unique("chromium"));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (.ci/run installs chromium-driver)");
        Driver {
            child: Some(child),
            profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The browser itself was closed with the session (`with_browser`).
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A browser page, with helpers that wait for what they look for.
#[derive(Clone)]
pub struct Page {
    /// The WebDriver client.
    pub client: Client,
    /// The app's base URL.
    pub base: String,
    /// The mode the app serves.
    pub mode: Mode,
}

/// Run `test` with a fresh browser on `app`; the session is ended and the
/// browser stopped whatever happens, then a failure is re-raised.
pub async fn with_browser<F, Fut>(app: &UiApp, test: F)
where
    F: FnOnce(Page) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _permit = BROWSERS.acquire().await.expect("semaphore");
    let port = free_port();
    let driver = Driver::start(port);
    let client = connect(port, &driver.profile, app.mode).await;
    let page = Page {
        client: client.clone(),
        base: app.base.clone(),
        mode: app.mode,
    };
    let outcome = tokio::spawn(test(page)).await;
    // Whatever the pages did, the browser must not have refused anything
    // under the Content Security Policy (checked when the test passed, so
    // that its own failure is the one reported).
    let violations = match &outcome {
        Ok(()) => csp_violations(&browser_log(&client).await),
        Err(_) => Vec::new(),
    };
    let _ = client.close().await;
    drop(driver);
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("browser test did not finish: {e}");
    }
    assert!(
        violations.is_empty(),
        "Content Security Policy violations in the console: {violations:#?}"
    );
}

/// WebDriver's "get log" (chromedriver: `POST /session/{id}/se/log`): the
/// console messages since the last call, then forgotten.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// The browser console's messages since the last call.
pub async fn browser_log(client: &Client) -> Vec<String> {
    let entries = client
        .issue_cmd(BrowserLog)
        .await
        .unwrap_or_else(|e| panic!("reading the browser's console: {e}"));
    entries
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["level"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The messages that report a Content Security Policy violation.
pub fn csp_violations(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused to"))
        .cloned()
        .collect()
}

async fn connect(port: u16, profile: &std::path::Path, mode: Mode) -> Client {
    let mut caps = serde_json::Map::new();
    // Server-rendered only: the browser runs no page script at all (WebDriver's
    // own scripts still run, through DevTools).
    let javascript = if mode == Mode::Ssr { 2 } else { 1 };
    // Console messages, for the CSP check (`browser_log`).
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium_binary(),
            "prefs": { "profile.managed_default_content_settings.javascript": javascript },
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                panic!("could not start a WebDriver session on chromedriver port {port}: {e}")
            }
        }
    }
}

fn chromium_binary() -> String {
    std::env::var("NSCACHE_CHROMIUM").unwrap_or_else(|_| {
        [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or(&"chromium")
        .to_string()
    })
}

impl Page {
    /// Open `path` of the app.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
        self.settle().await;
    }

    /// The current path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// In hydrated mode, wait until the bundle has taken over the page.
    pub async fn settle(&self) {
        if self.mode == Mode::Hydrated {
            self.wait_for(".app[data-hydrated='true']").await;
        }
    }

    /// Wait (up to 10 s) for an element.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css} on {}: {e}", self.base))
    }

    /// Wait (up to 10 s) until `check` holds.
    pub async fn wait_until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element matching `css`. Retried while the
    /// element goes stale (a form post reloading the page under it).
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.wait_for(css).await.text().await {
                Ok(text) => return text,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("text of {css}: {e}"),
            }
        }
    }

    /// An attribute of the first element matching `css` (retried like [`text`](Self::text)).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.wait_for(css).await.attr(name).await {
                Ok(value) => return value,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("attribute {name} of {css}: {e}"),
            }
        }
    }

    /// Whether an element matching `css` is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Click the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Type into the field matching `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Sign in through the login form as `name` (password `correct horse battery`).
    pub async fn sign_in(&self, name: &str) {
        self.goto("/login").await;
        self.fill("#username", name).await;
        self.fill("#password", "correct horse battery").await;
        self.click("form.stack button[type='submit']").await;
        self.wait_until("signed in", || async {
            self.path().await == "/me" && self.has("#my-version").await
        })
        .await;
        self.settle().await;
    }

    /// Run a script in the page.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Put a marker on `window` that a full page load would remove.
    pub async fn mark(&self) {
        self.run("window.__nscache_marker = 1; return true;").await;
    }

    /// Whether the marker set by [`mark`](Self::mark) is still there (no full load since).
    pub async fn still_marked(&self) -> bool {
        self.run("return window.__nscache_marker === 1;").await == Value::Bool(true)
    }

    /// Make the page's viewport `width` × `height` CSS pixels (the window
    /// is larger by whatever the browser keeps around the page).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let inner = self
            .run("return [window.innerWidth, window.innerHeight];")
            .await;
        let (w, h) = (
            inner[0].as_i64().unwrap_or(width as i64),
            inner[1].as_i64().unwrap_or(height as i64),
        );
        if (w, h) != (width as i64, height as i64) {
            let outer_w = (2 * width as i64 - w).max(1) as u32;
            let outer_h = (2 * height as i64 - h).max(1) as u32;
            self.client
                .set_window_size(outer_w, outer_h)
                .await
                .expect("window size");
        }
    }

    /// Save `name`-desktop.png and `name`-phone.png (the whole page) under
    /// the screenshot folder, in a sub-folder per mode.
    pub async fn screenshots(&self, name: &str) {
        let dir = screenshot_dir().join(self.mode.name());
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        for (label, (width, height)) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.viewport(width, height).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let full = self
                .run("return Math.ceil(document.documentElement.scrollHeight);")
                .await
                .as_u64()
                .unwrap_or(height as u64) as u32;
            if full > height {
                self.viewport(width, full.min(6000)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write screenshot");
        }
        self.viewport(DESKTOP.0, DESKTOP.1).await;
    }
}
