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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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

/// Run a cache command; what it prints goes to `out`.
pub async fn run(cli: Cli, out: &mut impl Write) -> Result<ExitCode, Failure> {
    if let Command::Component { out: path } = &cli.command {
        std::fs::write(path, COMPONENT_WASM).map_err(|e| usage(format!("writing {}: {e}", path.display())))?;
        writeln!(out, "{} ({} bytes)", path.display(), COMPONENT_WASM.len()).map_err(|e| usage(e.to_string()))?;
        return Ok(ExitCode::SUCCESS);
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
        Command::Component { .. } => unreachable!("handled before connecting"),
    })
}
