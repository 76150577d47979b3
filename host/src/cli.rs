//! The `nscache` command line: cache operations for operators and for checking
//! a deployment from outside.
//!
//! Exit codes: 0 ok, 1 miss / not added / not found, 2 usage or bad input
//! (message on stderr), 3 backend unavailable (or failed).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::control::ControlError;
use crate::directory::{ProfileTable, Role};
use crate::server::{Server, ServerConfig, ServerError, default_data_dir, open_directory};
use crate::store::RedisOptions;
use crate::{Cache, CacheError, COMPONENT_WASM, Expiry, Keyspace, Ttl};

/// Exit code: the key was missing, not added, or not found.
pub const EXIT_MISS: u8 = 1;
/// Exit code: bad usage or input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the backend is unavailable or failed.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// nscache: per-user namespaced cache with O(1) invalidation.
#[derive(Debug, Parser)]
#[command(name = "nscache", version, propagate_version = true)]
pub struct Cli {
    /// Redis URL, e.g. redis://127.0.0.1:6379/1 (database 1 when none is given).
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Global key prefix (Django's KEY_PREFIX).
    #[arg(long, env = "CACHE_KEY_PREFIX", global = true, default_value = "revisbali")]
    pub prefix: String,
    /// Postgres URL for accounts and profiles (default: an embedded SQLite file in --data-dir).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded database [default: $NSCACHE_DATA_DIR, else ~/.local/share/nscache].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// An existing application table holding the users' cache flags (e.g. core_userprofile).
    #[arg(long, env = "NSCACHE_PROFILE_TABLE", global = true)]
    pub profile_table: Option<String>,
    /// The user id column of --profile-table.
    #[arg(long, env = "NSCACHE_PROFILE_USER_COLUMN", global = true, default_value = "user_id")]
    pub profile_user_column: String,
    /// The flag column of --profile-table.
    #[arg(long, env = "NSCACHE_PROFILE_FLAG_COLUMN", global = true, default_value = "cache_enabled")]
    pub profile_flag_column: String,
    /// First segment of namespace keys (default: cache).
    #[arg(long, env = "NSCACHE_NAMESPACE_ROOT", global = true)]
    pub namespace_root: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API, /health and /metrics. Without REDIS_URL / DATABASE_URL it
    /// uses the embedded memory store and SQLite file, and creates a first admin.
    Serve(ServeArgs),
    /// Apply the database migrations (idempotent).
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Measure throughput and latency against raw Redis in the same run (needs Redis).
    Bench(BenchArgs),
    /// Install triggers so that every write to a Postgres table (by anyone: SQL,
    /// other services, psql) invalidates its cached queries (needs DATABASE_URL).
    WatchTable {
        /// The table's name in the cache (what queries declare they read).
        name: String,
        /// The Postgres table, if it differs (e.g. `billing.invoices`).
        #[arg(long)]
        relation: Option<String>,
    },
    /// Remove the triggers of a watched table.
    UnwatchTable {
        /// The table's name in the cache.
        name: String,
    },
    /// Print the value of KEY (exit 1 on a miss).
    Get(KeyArgs),
    /// Store VALUE at KEY.
    Set(WriteArgs),
    /// Store VALUE at KEY only if KEY does not exist (exit 1 if it does).
    Add(WriteArgs),
    /// Add DELTA (default 1) to the integer at KEY and print the result (exit 1 if KEY is missing).
    Incr(CounterArgs),
    /// Subtract DELTA (default 1) from the integer at KEY and print the result.
    Decr(CounterArgs),
    /// Remove KEY (exit 1 if it did not exist).
    Delete(KeyArgs),
    /// Print the time KEY has left: seconds, "forever", or "missing" (exit 1).
    Ttl(KeyArgs),
    /// Invalidate a user's namespace, a table's cached queries, or everything; prints the new version.
    Invalidate(InvalidateArgs),
    /// Print the current version of a user's namespace ("none" and exit 1 if it holds nothing).
    Version {
        /// The user id.
        #[arg(long)]
        user: String,
    },
    /// Write the cache component (.wasm) to a file, for embedding in another wasmtime host.
    Component {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "NSCACHE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Mark session cookies Secure (serving over TLS, or behind a TLS proxy).
    #[arg(long, env = "NSCACHE_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Take client addresses from X-Forwarded-For (only behind a trusted proxy).
    #[arg(long, env = "NSCACHE_TRUST_PROXY")]
    pub trust_proxy: bool,
}

/// Options of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A run under a minute (shorter cells, namespaces up to 10,000 keys).
    #[arg(long)]
    pub quick: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the results as SVG to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Seconds measured per cell (default 3, or 0.4 with --quick).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Only these scenarios (get-hit, get-miss, set, incr, add, namespaced-get,
    /// get-or-set-contended, invalidate-user), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only these implementations (raw-redis, nscache, nscache-l1), comma-separated.
    #[arg(long = "impl", value_delimiter = ',')]
    pub implementations: Vec<String>,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (a user unless --admin or --service). Prints a generated
    /// password unless --password-stdin is given.
    Add {
        /// Login name.
        name: String,
        /// An admin.
        #[arg(long, conflicts_with = "service")]
        admin: bool,
        /// A service (authenticates with API tokens, no password).
        #[arg(long)]
        service: bool,
        /// Read the password from standard input (first line).
        #[arg(long, conflicts_with = "service")]
        password_stdin: bool,
        /// The cache namespace id of the account (the application's user id; default: the account id).
        #[arg(long)]
        user_id: Option<String>,
    },
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for an account and print it (it is shown only once).
    Create {
        /// The account's login name.
        name: String,
        /// A label for the token.
        #[arg(long, default_value = "default")]
        label: String,
    },
}

/// A key, in the global keyspace or a user's namespace.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Work in this user's namespace instead of the global keyspace.
    #[arg(long)]
    pub user: Option<String>,
    /// The key.
    pub key: String,
}

/// A key and a value to write.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Work in this user's namespace instead of the global keyspace.
    #[arg(long)]
    pub user: Option<String>,
    /// The key.
    pub key: String,
    /// The value (stored as given).
    pub value: String,
    /// Expiry in seconds (fractions allowed; 0 expires at once) or "none" for no expiry. Default: 300.
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: Option<Expiry>,
}

/// A counter and a delta.
#[derive(Debug, Args)]
pub struct CounterArgs {
    /// Work in this user's namespace instead of the global keyspace.
    #[arg(long)]
    pub user: Option<String>,
    /// The key.
    pub key: String,
    /// The amount.
    #[arg(default_value_t = 1, allow_negative_numbers = true)]
    pub delta: i64,
}

/// What to invalidate: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct InvalidateArgs {
    /// Every entry of this user's namespace.
    #[arg(long)]
    pub user: Option<String>,
    /// Every cached query that read this table.
    #[arg(long)]
    pub table: Option<String>,
    /// Every user namespace (global keys are kept).
    #[arg(long)]
    pub all: bool,
}

/// Parse `--ttl`: seconds (fractions allowed) or `none`.
pub fn parse_ttl(s: &str) -> Result<Expiry, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Expiry::Never);
    }
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 && secs < 1e12 => Ok(Expiry::After(Duration::from_secs_f64(secs))),
        _ => Err(format!("{s:?} is not a number of seconds (>= 0) or \"none\"")),
    }
}

fn exit_code(err: &CacheError) -> u8 {
    match err {
        CacheError::NotFound => EXIT_MISS,
        CacheError::Unavailable(_) | CacheError::Internal(_) | CacheError::Component(_) => EXIT_UNAVAILABLE,
        CacheError::KeyTooLong(_)
        | CacheError::ValueTooLarge(_)
        | CacheError::InvalidName(_)
        | CacheError::InvalidArgument(_)
        | CacheError::NotAnInteger
        | CacheError::Config(_) => EXIT_USAGE,
    }
}

/// A failed command: the exit code and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl From<CacheError> for Failure {
    fn from(err: CacheError) -> Self {
        Failure { code: exit_code(&err), message: err.to_string() }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { code: EXIT_USAGE, message: message.into() }
}

impl From<ServerError> for Failure {
    fn from(err: ServerError) -> Self {
        match err {
            ServerError::Cache(e) => e.into(),
            ServerError::Directory(e) => Failure { code: if matches!(e, crate::directory::DirectoryError::Unavailable(_)) { EXIT_UNAVAILABLE } else { EXIT_USAGE }, message: e.to_string() },
            ServerError::Config(m) => usage(m),
        }
    }
}

impl From<ControlError> for Failure {
    fn from(err: ControlError) -> Self {
        let code = match &err {
            ControlError::Cache(e) => exit_code(e),
            ControlError::Directory(_) => EXIT_UNAVAILABLE,
            _ => EXIT_USAGE,
        };
        Failure { code, message: err.to_string() }
    }
}

fn server_config(cli: &Cli) -> Result<ServerConfig, Failure> {
    let profile_table = match &cli.profile_table {
        Some(table) => ProfileTable::existing(table, &cli.profile_user_column, &cli.profile_flag_column).map_err(|e| usage(e.to_string()))?,
        None => ProfileTable::default(),
    };
    Ok(ServerConfig {
        redis: cli.redis_url.clone().filter(|u| !u.is_empty()).map(|url| redis_options(url)).transpose()?,
        database_url: cli.database_url.clone().filter(|u| !u.is_empty()),
        data_dir: cli.data_dir.clone().unwrap_or_else(default_data_dir),
        profile_table,
        key_prefix: Some(cli.prefix.clone()),
        namespace_root: cli.namespace_root.clone(),
        ..ServerConfig::default()
    })
}

fn redis_options(url: String) -> Result<RedisOptions, Failure> {
    let mut options = RedisOptions::new(url);
    let secs = |name: &str| -> Result<Option<Duration>, Failure> {
        match std::env::var(name).ok().filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).map(|s| Some(Duration::from_secs_f64(s))).ok_or_else(|| usage(format!("{name}={v:?} is not a number of seconds"))),
        }
    };
    if let Ok(n) = std::env::var("NSCACHE_POOL_SIZE") {
        options.pool_size = n.parse().map_err(|_| usage(format!("NSCACHE_POOL_SIZE={n:?} is not a number")))?;
    }
    if let Some(t) = secs("NSCACHE_CONNECT_TIMEOUT")? {
        options.connect_timeout = t;
    }
    if let Some(t) = secs("NSCACHE_SOCKET_TIMEOUT")? {
        options.socket_timeout = t;
    }
    Ok(options)
}

/// A pool on the application's Postgres (DATABASE_URL), for table watching.
fn app_pool(cli: &Cli) -> Result<sqlx::PgPool, Failure> {
    let url = cli.database_url.clone().filter(|u| !u.is_empty()).ok_or_else(|| usage("table watching needs Postgres: pass --database-url URL or set DATABASE_URL"))?;
    sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_lazy(&url).map_err(|e| usage(format!("bad DATABASE_URL: {e}")))
}

async fn server(cli: &Cli) -> Result<Server, Failure> {
    Ok(Server::build(server_config(cli)?).await?)
}

fn write_line(out: &mut impl Write, line: &str) -> Result<(), Failure> {
    writeln!(out, "{line}").map_err(|e| usage(format!("writing output: {e}")))
}

/// Run a command; what it prints goes to `out`.
pub async fn run(cli: Cli, out: &mut impl Write) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Component { out: path } => {
            std::fs::write(path, COMPONENT_WASM).map_err(|e| usage(format!("writing {}: {e}", path.display())))?;
            write_line(out, &format!("{} ({} bytes)", path.display(), COMPONENT_WASM.len()))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Serve(args) => return serve(&cli, args, out).await,
        Command::Migrate => {
            let config = server_config(&cli)?;
            let directory = open_directory(&config).await?;
            let report = directory.migrate().await.map_err(ServerError::from)?;
            for name in &report.applied {
                write_line(out, &format!("applied {name}"))?;
            }
            for name in &report.already {
                write_line(out, &format!("already applied {name}"))?;
            }
            write_line(out, &format!("{} migrated ({})", directory.kind(), directory.location()))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::User(UserCommand::Add { name, admin, service, password_stdin, user_id }) => {
            let role = if *admin { Role::Admin } else if *service { Role::Service } else { Role::User };
            let server = server(&cli).await?;
            let (password, generated) = match (role, password_stdin) {
                (Role::Service, _) => (None, false),
                (_, true) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).map_err(|e| usage(format!("reading the password: {e}")))?;
                    (Some(line.trim_end_matches(['\r', '\n']).to_owned()), false)
                }
                (_, false) => (Some(crate::auth::random_secret(12)), true),
            };
            let account = server.control().create_account(name, role, password.as_deref(), user_id.as_deref()).await?;
            write_line(out, &format!("created {} {:?} (namespace id {})", account.role.as_str(), account.username, account.user_id))?;
            if generated && let Some(p) = password {
                write_line(out, &format!("password: {p}"))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench(args) => {
            let url = cli.redis_url.clone().filter(|u| !u.is_empty()).ok_or_else(|| usage("bench measures Redis: pass --redis-url URL or set REDIS_URL"))?;
            let mut options = if args.quick { crate::bench::BenchOptions::quick(url) } else { crate::bench::BenchOptions::full(url) };
            if args.concurrency.contains(&0) {
                return Err(usage("concurrency levels are at least 1"));
            }
            options.concurrency = args.concurrency.clone();
            if let Some(s) = args.seconds {
                if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
                    return Err(usage("--seconds is between 0 and 3600"));
                }
                options.duration = Duration::from_secs_f64(s);
            }
            options.only = args.only.clone();
            options.implementations = args.implementations.clone();
            options.json = args.json.clone();
            options.plot = args.plot.clone();
            let report = crate::bench::run(options, &mut std::io::stderr())
                .await
                .map_err(|e| Failure { code: EXIT_UNAVAILABLE, message: format!("bench: {e}") })?;
            write_line(out, &report.table())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::WatchTable { name, relation } => {
            let pool = app_pool(&cli)?;
            let relation = relation.as_deref().unwrap_or(name);
            crate::query::watch_table(&pool, relation, name).await.map_err(ServerError::from)?;
            write_line(out, &format!("watching {relation} as {name:?}: writes to it invalidate its cached queries (while `nscache serve` or a TableWatcher listens)"))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::UnwatchTable { name } => {
            let pool = app_pool(&cli)?;
            let removed = crate::query::unwatch_table(&pool, name).await.map_err(ServerError::from)?;
            write_line(out, if removed { "unwatched" } else { "not watched" })?;
            return Ok(ExitCode::from(if removed { 0 } else { EXIT_MISS }));
        }
        Command::Token(TokenCommand::Create { name, label }) => {
            let server = server(&cli).await?;
            let token = server.control().create_token(name, label).await?;
            write_line(out, &token)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let url = cli.redis_url.filter(|u| !u.is_empty()).ok_or_else(|| usage("no Redis URL: pass --redis-url URL or set REDIS_URL"))?;
    let cache = Cache::builder().redis_url(url).key_prefix(cli.prefix).build().await?;
    // A command must not report a miss or a skipped write as if all were well.
    cache.ping().await?;
    let errors_before = cache.store_stats().errors;
    let code = execute(&cache, cli.command, out).await?;
    if cache.store_stats().errors > errors_before {
        return Err(Failure { code: EXIT_UNAVAILABLE, message: "the store failed during the command (see the log above); nothing may have been done".into() });
    }
    Ok(ExitCode::from(code))
}

fn keyspace(cache: &Cache, user: Option<String>) -> Keyspace {
    match user {
        Some(user) => cache.user(user),
        None => cache.global(),
    }
}

fn print(out: &mut impl Write, bytes: &[u8]) -> Result<(), Failure> {
    out.write_all(bytes).and_then(|()| out.write_all(b"\n")).map_err(|e| Failure { code: EXIT_USAGE, message: format!("writing output: {e}") })
}

async fn execute(cache: &Cache, command: Command, out: &mut impl Write) -> Result<u8, Failure> {
    let miss = |found: bool| if found { 0 } else { EXIT_MISS };
    Ok(match command {
        Command::Get(a) => match keyspace(cache, a.user).get(&a.key).await? {
            Some(value) => {
                print(out, &value)?;
                0
            }
            None => EXIT_MISS,
        },
        Command::Set(a) => {
            keyspace(cache, a.user).set(&a.key, a.value, a.ttl.unwrap_or_default()).await?;
            print(out, b"OK")?;
            0
        }
        Command::Add(a) => {
            let added = keyspace(cache, a.user).add(&a.key, a.value, a.ttl.unwrap_or_default()).await?;
            print(out, if added { b"added" } else { b"exists" })?;
            miss(added)
        }
        Command::Incr(a) => {
            let n = keyspace(cache, a.user).incr(&a.key, a.delta).await?;
            print(out, n.to_string().as_bytes())?;
            0
        }
        Command::Decr(a) => {
            let n = keyspace(cache, a.user).decr(&a.key, a.delta).await?;
            print(out, n.to_string().as_bytes())?;
            0
        }
        Command::Delete(a) => {
            let deleted = keyspace(cache, a.user).delete(&a.key).await?;
            print(out, if deleted { b"deleted" } else { b"missing" })?;
            miss(deleted)
        }
        Command::Ttl(a) => match keyspace(cache, a.user).ttl(&a.key).await? {
            Ttl::Missing => {
                print(out, b"missing")?;
                EXIT_MISS
            }
            Ttl::Forever => {
                print(out, b"forever")?;
                0
            }
            Ttl::Remaining(d) => {
                print(out, format!("{:.3}", d.as_secs_f64()).as_bytes())?;
                0
            }
        },
        Command::Invalidate(a) => {
            let version = match (a.user, a.table, a.all) {
                (Some(user), None, false) => cache.invalidate_user(&user).await?,
                (None, Some(table), false) => cache.invalidate_table(&table).await?,
                (None, None, true) => cache.invalidate_all().await?,
                _ => return Err(usage("give exactly one of --user, --table, --all")),
            };
            print(out, version.to_string().as_bytes())?;
            0
        }
        Command::Version { user } => match cache.version_of(&user).await? {
            Some(v) => {
                print(out, v.to_string().as_bytes())?;
                0
            }
            None => {
                print(out, b"none")?;
                EXIT_MISS
            }
        },
        Command::Component { .. }
        | Command::Serve(_)
        | Command::Migrate
        | Command::User(_)
        | Command::Token(_)
        | Command::Bench(_)
        | Command::WatchTable { .. }
        | Command::UnwatchTable { .. } => {
            return Err(usage("not a cache command"));
        }
    })
}

async fn serve(cli: &Cli, args: &ServeArgs, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let mut config = server_config(cli)?;
    config.listen = args.listen;
    config.secure_cookies = args.secure_cookies;
    config.trust_proxy = args.trust_proxy;
    let listen = config.listen;
    let directory = open_directory(&config).await?;
    if directory.kind() == "postgres" {
        match directory.migrate().await {
            Ok(report) if !report.applied.is_empty() => write_line(out, &format!("applied migrations: {}", report.applied.join(", ")))?,
            Ok(_) => {}
            Err(e) => write_line(out, &format!("warning: could not check migrations now ({e}); serving anyway"))?,
        }
    }
    let mut server = Server::with_directory(config, directory).await?;
    if cli.database_url.as_deref().is_some_and(|u| !u.is_empty()) {
        // Writes to watched tables invalidate their cached queries.
        server.watch_tables(app_pool(cli)?);
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| usage(format!("cannot listen on {listen}: {e}")))?;
    let address = listener.local_addr().map_err(|e| usage(e.to_string()))?;
    write_line(out, &format!("nscache {} serving on http://{address}", env!("CARGO_PKG_VERSION")))?;
    for line in server.describe() {
        write_line(out, &format!("  {line}"))?;
    }
    match server.control().ensure_admin().await {
        Ok(Some((name, password))) => {
            write_line(out, &format!("  created the first admin: sign in as {name:?} with password {password}"))?;
            write_line(out, &format!("  e.g. curl -c cookies -H 'content-type: application/json' -d '{{\"username\":\"{name}\",\"password\":\"{password}\"}}' http://{address}/api/v1/session"))?;
        }
        Ok(None) => {}
        Err(e) => write_line(out, &format!("  warning: could not check for an admin account: {e}"))?,
    }
    out.flush().map_err(|e| usage(e.to_string()))?;
    server.serve(listener).await.map_err(|e| Failure { code: EXIT_UNAVAILABLE, message: format!("server: {e}") })?;
    Ok(ExitCode::SUCCESS)
}
