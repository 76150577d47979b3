//! The `nscache` command line: the server, its accounts, and cache operations
//! for operators and for checking a deployment from outside.
//!
//! Every command reads the same [`Settings`](nscache::Settings): the
//! library's defaults, then its environment variables, then the global
//! `--option`s of [`SettingsArgs`] (one per setting, on every subcommand).
//!
//! Exit codes: 0 ok, 1 miss / not added / not found, 2 usage or bad input
//! (message on stderr), 3 backend unavailable (or failed).

mod admin;
mod bench;
mod data;
mod doctor;
mod serve;
mod settings_args;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nscache::{COMPONENT_WASM, CacheError, Settings};

pub use self::admin::{TokenCommand, UserCommand};
pub use self::bench::BenchArgs;
pub use self::data::{CounterArgs, DataCommand, InvalidateArgs, KeyArgs, WriteArgs};
pub use self::doctor::{DoctorArgs, FlushArgs, PurgeArgs, confirmed};
pub use self::serve::ServeArgs;
pub use self::settings_args::SettingsArgs;
use crate::control::ControlError;
use crate::directory::DirectoryError;
use crate::server::{ServerConfig, ServerError, default_data_dir};

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
    /// The cache's settings (global options, each with its environment variable).
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Directory of the embedded database [env: NSCACHE_DATA_DIR; default: ~/.local/share/nscache].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API, /health, /metrics and the admin UI. Without REDIS_URL /
    /// DATABASE_URL it uses the embedded memory store and SQLite file, and creates a
    /// first admin.
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
    /// Check the deployment (Redis, databases, keys, Postgres, component): one
    /// line per check, ✓ ok, ⚠ warning, ✗ failure, each with its fix. Exit 1 on a
    /// failure (with --strict, on a warning too). The key checks SCAN nscache's
    /// database once (operator's command only).
    Doctor(DoctorArgs),
    /// Remove what nscache owns in its database (never another database, never
    /// the task queue's), after typing the database number (or --yes).
    Flush(FlushArgs),
    /// Physically delete one user's entries of every version (right to erasure):
    /// SCAN by the user's prefix; prints how many keys were removed.
    Purge(PurgeArgs),
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
    /// Write the cache component (.wasm) to a file, for embedding in another host.
    // Its help shows only its own option: the cache settings (global options)
    // mean nothing to a command that only writes a file.
    #[command(help_template = COMPONENT_HELP)]
    Component {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Cache operations on the global keyspace or a user's namespace.
    #[command(flatten)]
    Data(DataCommand),
}

/// `nscache component --help`: what the file is, and its one option.
const COMPONENT_HELP: &str = "\
{about-with-newline}
Usage: nscache component --out <FILE>

Options:
      --out <FILE>  Where to write it
  -h, --help        Print help

The component implements the WIT package nscache:cache@0.1.0 (world
`cache-component`, in wit/). It imports only nscache:cache/store, batch,
atomics and profiles (nothing from WASI) and exports cache, locks,
invalidation, queries and config. A host supplies the imports and proves
itself with the conformance kit in tests/conformance/; see the README,
\"Embedding the component\".
";

/// A failed command: the exit code and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

/// The exit code of a cache error.
fn exit_code(err: &CacheError) -> u8 {
    match err {
        CacheError::NotFound => EXIT_MISS,
        CacheError::Unavailable(_) | CacheError::Internal(_) | CacheError::Component(_) => {
            EXIT_UNAVAILABLE
        }
        CacheError::KeyTooLong(_)
        | CacheError::ValueTooLarge(_)
        | CacheError::ReplyTooLarge(_)
        | CacheError::QuotaExceeded(_)
        | CacheError::InvalidName(_)
        | CacheError::InvalidArgument(_)
        | CacheError::NotAnInteger
        | CacheError::Config(_) => EXIT_USAGE,
    }
}

impl From<CacheError> for Failure {
    fn from(err: CacheError) -> Self {
        Failure {
            code: exit_code(&err),
            message: err.to_string(),
        }
    }
}

impl From<DirectoryError> for Failure {
    fn from(err: DirectoryError) -> Self {
        let code = if matches!(err, DirectoryError::Unavailable(_)) {
            EXIT_UNAVAILABLE
        } else {
            EXIT_USAGE
        };
        Failure {
            code,
            message: err.to_string(),
        }
    }
}

impl From<ServerError> for Failure {
    fn from(err: ServerError) -> Self {
        match err {
            ServerError::Cache(e) => e.into(),
            ServerError::Directory(e) => e.into(),
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
        Failure {
            code,
            message: err.to_string(),
        }
    }
}

/// A usage error (exit 2).
fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

/// Print one line of output.
fn write_line(out: &mut impl Write, line: &str) -> Result<(), Failure> {
    writeln!(out, "{line}").map_err(|e| usage(format!("writing output: {e}")))
}

impl Cli {
    /// The settings every command uses: defaults, environment, then flags.
    pub fn settings(&self) -> Result<Settings, Failure> {
        Ok(self.settings.resolve()?)
    }

    /// The server's configuration (for the commands that need the directory).
    fn server_config(&self) -> Result<ServerConfig, Failure> {
        Ok(ServerConfig {
            cache: self.settings()?,
            data_dir: self.data_dir.clone().unwrap_or_else(default_data_dir),
            ..ServerConfig::default()
        })
    }
}

/// Run a command; what it prints goes to `out`.
pub async fn run(cli: Cli, out: &mut impl Write) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Serve(args) => serve::run(&cli, args, out).await,
        Command::Migrate => admin::migrate(&cli, out).await,
        Command::User(command) => admin::user(&cli, command, out).await,
        Command::Token(command) => admin::token(&cli, command, out).await,
        Command::Doctor(args) => doctor::doctor(&cli, args, out).await,
        Command::Flush(args) => doctor::flush(&cli, args, out).await,
        Command::Purge(args) => doctor::purge(&cli, args, out).await,
        Command::Bench(args) => bench::run(&cli.settings()?, args, out).await,
        Command::WatchTable { name, relation } => {
            admin::watch_table(&cli.settings()?, name, relation.as_deref(), out).await
        }
        Command::UnwatchTable { name } => admin::unwatch_table(&cli.settings()?, name, out).await,
        Command::Component { out: path } => {
            std::fs::write(path, COMPONENT_WASM)
                .map_err(|e| usage(format!("writing {}: {e}", path.display())))?;
            write_line(
                out,
                &format!("{} ({} bytes)", path.display(), COMPONENT_WASM.len()),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(command) => data::run(&cli.settings()?, command, out).await,
    }
}
