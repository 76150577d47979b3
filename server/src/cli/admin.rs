//! The operator's commands on the directory and the database: `migrate`,
//! `user`, `token`, `watch-table`, `unwatch-table`.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use nscache::Settings;

use super::{Cli, EXIT_MISS, Failure, usage, write_line};
use crate::directory::Role;
use crate::server::{Server, open_directory};

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
        /// The application's id of this person: the account's cache namespace and
        /// profile row. Required for users and admins when the flags live in the
        /// application's profile table (--profile-table); otherwise the default is a
        /// namespace of the account's own (`account:ID`), never an application id.
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

/// `nscache migrate`.
pub async fn migrate(cli: &Cli, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let directory = open_directory(&cli.server_config()?).await?;
    let report = directory.migrate().await?;
    for name in &report.applied {
        write_line(out, &format!("applied {name}"))?;
    }
    for name in &report.already {
        write_line(out, &format!("already applied {name}"))?;
    }
    write_line(
        out,
        &format!("{} migrated ({})", directory.kind(), directory.location()),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Read a password from the first line of standard input.
fn password_from_stdin() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| usage(format!("reading the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `nscache user …`.
pub async fn user(
    cli: &Cli,
    command: &UserCommand,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let UserCommand::Add {
        name,
        admin,
        service,
        password_stdin,
        user_id,
    } = command;
    let role = match (admin, service) {
        (true, _) => Role::Admin,
        (_, true) => Role::Service,
        _ => Role::User,
    };
    let server = Server::build(cli.server_config()?).await?;
    let (password, generated) = match (role, password_stdin) {
        (Role::Service, _) => (None, false),
        (_, true) => (Some(password_from_stdin()?), false),
        (_, false) => (Some(crate::auth::random_secret(12)), true),
    };
    let account = server
        .control()
        .create_account(name, role, password.as_deref(), user_id.as_deref())
        .await?;
    write_line(
        out,
        &format!(
            "created {} {:?} (namespace id {})",
            account.role.as_str(),
            account.username,
            account.user_id
        ),
    )?;
    if generated && let Some(p) = password {
        write_line(out, &format!("password: {p}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `nscache token …`.
pub async fn token(
    cli: &Cli,
    command: &TokenCommand,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let TokenCommand::Create { name, label } = command;
    let server = Server::build(cli.server_config()?).await?;
    let token = server.control().create_token(name, label).await?;
    write_line(out, &token)?;
    Ok(ExitCode::SUCCESS)
}

/// A pool on the application's Postgres (`database-url`), for table watching.
pub(super) fn app_pool(settings: &Settings) -> Result<sqlx::PgPool, Failure> {
    let url = settings.database_url.as_deref().ok_or_else(|| {
        usage("table watching needs Postgres: pass --database-url URL or set DATABASE_URL")
    })?;
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy(url)
        .map_err(|e| usage(format!("bad DATABASE_URL: {e}")))
}

/// What a failed `watch-table` / `unwatch-table` means for the exit code.
fn watch_failure(e: nscache::query::WatchError) -> Failure {
    match e {
        nscache::query::WatchError::InvalidName(e) => usage(e.to_string()),
        nscache::query::WatchError::Database(e) => crate::directory::DirectoryError::from(e).into(),
    }
}

/// `nscache watch-table NAME [--relation TABLE]`.
pub async fn watch_table(
    settings: &Settings,
    name: &str,
    relation: Option<&str>,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let pool = app_pool(settings)?;
    let relation = relation.unwrap_or(name);
    nscache::query::watch_table(&pool, relation, name)
        .await
        .map_err(watch_failure)?;
    write_line(
        out,
        &format!(
            "watching {relation} as {name:?}: writes to it invalidate its cached queries (while `nscache serve` or a TableWatcher listens)"
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `nscache unwatch-table NAME`.
pub async fn unwatch_table(
    settings: &Settings,
    name: &str,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let pool = app_pool(settings)?;
    let removed = nscache::query::unwatch_table(&pool, name)
        .await
        .map_err(watch_failure)?;
    write_line(out, if removed { "unwatched" } else { "not watched" })?;
    Ok(ExitCode::from(if removed { 0 } else { EXIT_MISS }))
}
