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
    /// Set an account's password (its sessions end). Prints a generated one
    /// unless --password-stdin is given.
    Passwd {
        /// Login name.
        name: String,
        /// Read the new password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: its sessions end, its API tokens and sign-ins are refused.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Login name.
        name: String,
    },
    /// Delete an account with its sessions, API tokens and device cookies.
    Delete {
        /// Login name.
        name: String,
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
        /// Refuse the token after this long (`90s`, `30m`, `12h`, `30d`, `8w`);
        /// default: valid until revoked.
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<std::time::Duration>,
    },
    /// List the API tokens (id, label, owner, created, expires, last used), never the tokens.
    List,
    /// Revoke a token by id (see `token list`): refused from the next request on.
    Revoke {
        /// The token's id.
        id: i64,
    },
}

/// `30d`-style lifetimes: a whole number and one of s, m, h, d, w.
fn parse_lifetime(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: a number then s, m, h, d or w (e.g. 30d)"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h, d or w (e.g. 30d)")),
    };
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs)),
        _ => Err(format!("{s:?}: more than zero, and not absurdly long")),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    let (name, admin, service, password_stdin, user_id) = match command {
        UserCommand::Add {
            name,
            admin,
            service,
            password_stdin,
            user_id,
        } => (name, admin, service, password_stdin, user_id),
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let server = Server::build(cli.server_config()?).await?;
            let password = if *password_stdin {
                password_from_stdin()?
            } else {
                crate::auth::random_secret(12)
            };
            server.control().set_password(name, &password).await?;
            write_line(
                out,
                &format!("password of {name:?} changed; its sessions ended"),
            )?;
            if !password_stdin {
                write_line(out, &format!("password: {password}"))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        UserCommand::Disable { name } | UserCommand::Enable { name } => {
            let disable = matches!(command, UserCommand::Disable { .. });
            let server = Server::build(cli.server_config()?).await?;
            server.control().set_disabled(name, disable).await?;
            write_line(
                out,
                &if disable {
                    format!(
                        "disabled {name:?}: its sessions ended; its tokens and sign-ins are refused"
                    )
                } else {
                    format!("enabled {name:?}")
                },
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        UserCommand::Delete { name } => {
            let server = Server::build(cli.server_config()?).await?;
            server.control().delete_account(name).await?;
            write_line(
                out,
                &format!("deleted {name:?} with its sessions and API tokens"),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
    };
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
    let server = Server::build(cli.server_config()?).await?;
    match command {
        TokenCommand::Create {
            name,
            label,
            expires_in,
        } => {
            let token = server
                .control()
                .create_token_expiring(name, label, *expires_in)
                .await?;
            write_line(out, &token)?;
        }
        TokenCommand::List => {
            write_line(out, "id\tlabel\towner\tcreated\texpires\tlast used")?;
            for t in server.control().list_tokens().await? {
                write_line(
                    out,
                    &format!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        t.id,
                        t.label,
                        t.owner,
                        t.created_at,
                        t.expires_at.map_or_else(|| "never".to_owned(), utc),
                        t.last_used_at.map_or_else(|| "never".to_owned(), utc),
                    ),
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            server.control().revoke_token(*id).await?;
            write_line(out, &format!("revoked token {id}"))?;
        }
    }
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
