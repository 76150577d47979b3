//! The data commands: `get`, `set`, `add`, `incr`, `decr`, `delete`, `ttl`,
//! `invalidate`, `version` — one cache call each, on the store the settings
//! name (Redis, required: the embedded memory store lives only as long as
//! the command).

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use nscache::{Cache, Expiry, Keyspace, Settings, Ttl};

use super::{EXIT_MISS, EXIT_UNAVAILABLE, Failure, usage};

/// The data commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
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
    /// Expiry in seconds (fractions allowed; 0 expires at once), "none" for no
    /// expiry, or "default" [default: default].
    #[arg(long, value_parser = parse_expiry)]
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

/// `--ttl`, with the library's one TTL parser.
fn parse_expiry(s: &str) -> Result<Expiry, String> {
    s.parse::<Expiry>().map_err(|e| e.to_string())
}

/// Run a data command against the store `settings` name.
pub async fn run(
    settings: &Settings,
    command: &DataCommand,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    if settings.redis_url.is_none() {
        return Err(usage("no Redis URL: pass --redis-url URL or set REDIS_URL"));
    }
    let cache = Cache::builder().settings(settings.clone()).build().await?;
    // A command must not report a miss or a skipped write as if all were well.
    cache.ping().await?;
    let errors_before = cache.store_stats().errors;
    let code = execute(&cache, command, out).await?;
    if cache.store_stats().errors > errors_before {
        return Err(Failure {
            code: EXIT_UNAVAILABLE,
            message: "the store failed during the command (see the log above); nothing may have been done".into(),
        });
    }
    Ok(ExitCode::from(code))
}

fn keyspace(cache: &Cache, user: &Option<String>) -> Keyspace {
    match user {
        Some(user) => cache.user(user.clone()),
        None => cache.global(),
    }
}

fn print(out: &mut impl Write, bytes: &[u8]) -> Result<(), Failure> {
    out.write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| usage(format!("writing output: {e}")))
}

/// Print `line` and exit 0 when `found`, else exit 1.
fn report(out: &mut impl Write, found: bool, line: &[u8]) -> Result<u8, Failure> {
    print(out, line)?;
    Ok(if found { 0 } else { EXIT_MISS })
}

async fn execute(
    cache: &Cache,
    command: &DataCommand,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    match command {
        DataCommand::Get(a) => match keyspace(cache, &a.user).get(&a.key).await? {
            Some(value) => report(out, true, &value),
            None => Ok(EXIT_MISS),
        },
        DataCommand::Set(a) => {
            keyspace(cache, &a.user)
                .set(&a.key, &a.value, a.ttl.unwrap_or_default())
                .await?;
            report(out, true, b"OK")
        }
        DataCommand::Add(a) => {
            let added = keyspace(cache, &a.user)
                .add(&a.key, &a.value, a.ttl.unwrap_or_default())
                .await?;
            report(out, added, if added { b"added" } else { b"exists" })
        }
        DataCommand::Incr(a) => {
            let n = keyspace(cache, &a.user).incr(&a.key, a.delta).await?;
            report(out, true, n.to_string().as_bytes())
        }
        DataCommand::Decr(a) => {
            let n = keyspace(cache, &a.user).decr(&a.key, a.delta).await?;
            report(out, true, n.to_string().as_bytes())
        }
        DataCommand::Delete(a) => {
            let deleted = keyspace(cache, &a.user).delete(&a.key).await?;
            report(out, deleted, if deleted { b"deleted" } else { b"missing" })
        }
        DataCommand::Ttl(a) => match keyspace(cache, &a.user).ttl(&a.key).await? {
            Ttl::Missing => report(out, false, b"missing"),
            Ttl::Forever => report(out, true, b"forever"),
            Ttl::Remaining(d) => report(out, true, format!("{:.3}", d.as_secs_f64()).as_bytes()),
        },
        DataCommand::Invalidate(a) => {
            let version = match (&a.user, &a.table, a.all) {
                (Some(user), None, false) => cache.invalidate_user(user).await?,
                (None, Some(table), false) => cache.invalidate_table(table).await?,
                (None, None, true) => cache.invalidate_all().await?,
                _ => return Err(usage("give exactly one of --user, --table, --all")),
            };
            report(out, true, version.to_string().as_bytes())
        }
        DataCommand::Version { user } => match cache.version_of(user).await? {
            Some(v) => report(out, true, v.to_string().as_bytes()),
            None => report(out, false, b"none"),
        },
    }
}
