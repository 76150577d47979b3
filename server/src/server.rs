//! [`Server`]: the pieces of `nscache serve` wired together — directory,
//! profile source, cache, [`Control`], HTTP router, admin UI and its
//! dashboard sampler — from a [`ServerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::control::Control;
use crate::dashboard::DashboardSampler;
use crate::edge::EdgeLimits;
use nscache::{Cache, CacheError, Settings};

use crate::directory::{
    Directory, DirectoryError, DirectoryFlags, Guarded, PostgresDirectory, SqliteDirectory,
};
use crate::http::limits::{PerCaller, ReplyMemory};
use crate::http::{AppState, router, security};

/// Everything `nscache serve` can be told: the library's [`Settings`] (store,
/// key layout, L1, the database of flags) and what only a server has.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The cache: Redis or the embedded memory store, key layout, L1, and the
    /// Postgres database (`database_url`; `None`: the embedded SQLite file in
    /// `data_dir`) with its profile table.
    pub cache: Settings,
    /// Where to listen (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Where the embedded database lives.
    pub data_dir: PathBuf,
    /// Mark cookies `Secure` (TLS, or behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// How many reverse proxies in front of the server append to
    /// `X-Forwarded-For` (default 0: the peer address is the client's).
    /// With N, the client is the N-th entry from the right: entries further
    /// left were written by the client and are ignored.
    pub trusted_proxies: usize,
    /// How long into a database outage sessions and tokens verified before
    /// it are still honoured (default 60 s); then 503 until it answers.
    pub credential_outage_grace: std::time::Duration,
    /// Largest request body in bytes (default 2 MiB: a 1 MiB value in base64 fits).
    pub body_limit: usize,
    /// Bytes all replies in flight may hold together (default 64 MiB);
    /// beyond it a reply waits briefly, then gets 503.
    pub reply_memory: usize,
    /// Requests one caller (a token, a session, an address) may have in
    /// flight (default 128; a client address 8 times that); beyond it, 429.
    pub per_caller_requests: usize,
    /// How often the dashboard samples the counters and checks health
    /// (default 5 s; 360 samples are kept).
    pub dashboard_interval: std::time::Duration,
    /// Have the admin UI's pages load the hydration bundle (default: when
    /// it was built in, feature `ui-hydrate`). Off, or without the bundle,
    /// the pages are server-rendered only.
    pub ui_hydrate: bool,
    /// Timeouts, the connection cap and the shutdown grace period of the
    /// listener (see [`EdgeLimits`] for the defaults).
    pub edge: EdgeLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            cache: Settings::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: default_data_dir(),
            secure_cookies: false,
            trusted_proxies: 0,
            credential_outage_grace: crate::control::OUTAGE_GRACE,
            body_limit: 2 << 20,
            reply_memory: 64 << 20,
            per_caller_requests: 128,
            dashboard_interval: std::time::Duration::from_secs(5),
            ui_hydrate: ui_bundle_built(),
            edge: EdgeLimits::default(),
        }
    }
}

/// Whether the admin UI's hydration bundle is built into this binary.
pub fn ui_bundle_built() -> bool {
    #[cfg(feature = "ui")]
    return nscache_ui::server::BUNDLE.is_some();
    #[cfg(not(feature = "ui"))]
    return false;
}

/// Samples kept by the dashboard (30 minutes at the default interval).
const DASHBOARD_SAMPLES: usize = 360;

/// `$NSCACHE_DATA_DIR`, else `$XDG_DATA_HOME/nscache`, else `~/.local/share/nscache`,
/// else `./nscache-data`.
pub fn default_data_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("NSCACHE_DATA_DIR")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("nscache")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/nscache")))
        .unwrap_or_else(|| PathBuf::from("nscache-data"))
}

/// Why the server could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The cache could not be built.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The directory could not be opened or migrated.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// Anything else about the configuration.
    #[error("{0}")]
    Config(String),
}

/// A server, ready to serve.
#[derive(Debug)]
pub struct Server {
    control: Arc<Control>,
    state: AppState,
    body_limit: usize,
    watcher: Option<nscache::query::TableWatcher>,
    dashboard: Arc<DashboardSampler>,
    #[cfg_attr(not(feature = "ui"), allow(dead_code))]
    ui_hydrate: bool,
    edge: EdgeLimits,
}

/// Open the directory a configuration names. The embedded SQLite file is
/// migrated at once; Postgres is migrated by `nscache migrate`.
pub async fn open_directory(config: &ServerConfig) -> Result<Arc<dyn Directory>, ServerError> {
    let profiles = config.cache.profile_table()?;
    match &config.cache.database_url {
        Some(url) => Ok(Arc::new(PostgresDirectory::connect(url, profiles)?)),
        None => {
            let dir = SqliteDirectory::open(&config.data_dir.join("nscache.db"), profiles).await?;
            dir.migrate().await?;
            Ok(Arc::new(dir))
        }
    }
}

impl Server {
    /// Build from a configuration.
    pub async fn build(config: ServerConfig) -> Result<Server, ServerError> {
        let directory = open_directory(&config).await?;
        Server::with_directory(config, directory).await
    }

    /// Build on an already opened directory (wrapped in [`Guarded`], so that a
    /// database outage fails fast).
    pub async fn with_directory(
        config: ServerConfig,
        directory: Arc<dyn Directory>,
    ) -> Result<Server, ServerError> {
        let directory: Arc<dyn Directory> = Arc::new(Guarded::new(directory));
        let cache = Cache::builder()
            .settings(config.cache.clone())
            .flag_store(Arc::new(DirectoryFlags(directory.clone())))
            .build()
            .await?;
        let profiles = cache.cached_profiles().cloned().ok_or_else(|| {
            ServerError::Config("the cache did not take the directory's flags".into())
        })?;
        let control = Arc::new(
            Control::new(cache, directory, profiles)
                .with_outage_grace(config.credential_outage_grace),
        );
        let state = AppState {
            control: control.clone(),
            secure_cookies: config.secure_cookies,
            trusted_proxies: config.trusted_proxies,
            replies: ReplyMemory::new(config.reply_memory),
            per_caller: PerCaller::new(config.per_caller_requests, config.trusted_proxies),
        };
        // Only the admin UI reads the samples: without it, take none.
        let dashboard = Arc::new(if cfg!(feature = "ui") {
            DashboardSampler::start(
                control.clone(),
                config.dashboard_interval,
                DASHBOARD_SAMPLES,
            )
        } else {
            DashboardSampler::manual(
                control.clone(),
                config.dashboard_interval,
                DASHBOARD_SAMPLES,
            )
        });
        Ok(Server {
            control,
            state,
            body_limit: config.body_limit,
            watcher: None,
            dashboard,
            ui_hydrate: config.ui_hydrate,
            edge: config.edge,
        })
    }

    /// Listen for changes to the watched tables of the database behind `pool`
    /// (see [`nscache::query::watch_table`]) for as long as the server lives.
    pub fn watch_tables(&mut self, pool: sqlx::PgPool) {
        self.watcher = Some(nscache::query::TableWatcher::spawn(
            pool,
            self.control.cache().clone(),
        ));
    }

    /// The operations (for the UI, the CLI and tests).
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The dashboard's sampler.
    pub fn dashboard(&self) -> &Arc<DashboardSampler> {
        &self.dashboard
    }

    /// The HTTP router: the API, and the admin UI at `/` (feature `ui`),
    /// with the request timeout, the cross-site check and the security
    /// headers.
    pub fn router(&self) -> axum::Router {
        let api = router(self.state.clone(), self.body_limit);
        #[cfg(feature = "ui")]
        let api = {
            let backend = Arc::new(crate::ui_backend::ControlBackend::new(
                self.state.clone(),
                self.dashboard.clone(),
            ));
            api.merge(nscache_ui::server::router(
                backend,
                nscache_ui::server::UiSettings {
                    hydrate: self.ui_hydrate,
                },
            ))
        };
        // Every request, the API's and the UI's, counts against its caller;
        // has a deadline (408 as JSON); is refused when a browser sends it
        // from another site to change something; and gets the security
        // headers.
        api.layer(axum::middleware::from_fn_with_state(
            self.state.per_caller.clone(),
            crate::http::limits::per_caller,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            self.edge.request_timeout,
        ))
        .layer(axum::middleware::map_response(crate::edge::timeout_as_json))
        .layer(axum::middleware::from_fn_with_state(
            self.state.clone(),
            security::same_origin,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(security::fixed_headers())
    }

    /// One line per backend, for the start-up announcement.
    pub fn describe(&self) -> Vec<String> {
        let cache = self.control.cache();
        let store = cache.store();
        let directory = self.control.directory();
        vec![
            format!(
                "cache store: {}",
                match store.kind() {
                    "redis" => "redis".to_owned(),
                    "redis-cluster" => "redis cluster (hash-tagged key layout)".to_owned(),
                    other => format!("{other} (embedded; set REDIS_URL for Redis)"),
                }
            ),
            format!(
                "database:    {} at {}{}",
                directory.kind(),
                directory.location(),
                if directory.kind() == "sqlite" {
                    " (embedded; set DATABASE_URL for Postgres)"
                } else {
                    ""
                }
            ),
            format!(
                "key prefix:  {}, namespace root: {}",
                cache.key_prefix(),
                cache.namespace_root()
            ),
            match cache.settings().l1_options() {
                Some(l1) => format!(
                    "l1:          on, {} MiB; a change made elsewhere is seen within {:?} \
                     (at once when announced)",
                    l1.capacity_bytes >> 20,
                    l1.max_age
                ),
                None => "l1:          off (--l1 or NSCACHE_L1=1 puts one in front of Redis)".into(),
            },
            format!(
                "table watcher: {}",
                if self.watcher.is_some() {
                    "listening for changes to watched tables (nscache watch-table)"
                } else {
                    "off (needs DATABASE_URL)"
                }
            ),
        ]
    }

    /// Serve on `listener` until SIGTERM or ctrl-c, within the configured
    /// [`EdgeLimits`]; then finish the requests in flight and return.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_until(listener, crate::edge::shutdown_signal())
            .await
    }

    /// Serve on `listener` until `shutdown` resolves (see [`crate::edge::serve`]).
    pub async fn serve_until(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        crate::edge::serve(listener, self.router(), self.edge, shutdown).await
    }
}
