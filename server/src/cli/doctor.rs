//! The operator's checks and maintenance: `doctor`, `flush`, `purge`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{ArgGroup, Args};
use nscache::{Cache, Settings};

use super::{Cli, EXIT_UNAVAILABLE, EXIT_USAGE, Failure, usage, write_line};
use crate::doctor::{self, DoctorOptions, Status};
use crate::maintenance::{FlushScope, Maintenance, MaintenanceError};

/// `nscache doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON (every check with its status, message and fix).
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too (default: only on failures).
    #[arg(long)]
    pub strict: bool,
    /// Skip the key checks, which SCAN nscache's whole database once.
    #[arg(long)]
    pub no_scan: bool,
}

/// `nscache flush`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["cache", "queries", "all_namespaces"])))]
pub struct FlushArgs {
    /// Remove every namespace (entries, versions, counters of bytes): O(n)
    /// maintenance with SCAN. Global keys stay unless --include-global.
    #[arg(long)]
    pub cache: bool,
    /// Remove cached query results and table versions only (O(n), SCAN).
    #[arg(long)]
    pub queries: bool,
    /// Invalidate every namespace at once (O(1): the floor is bumped; old
    /// entries expire by their TTL). Removes nothing.
    #[arg(long)]
    pub all_namespaces: bool,
    /// With --cache: global keys too (invoice sequences, locks, cursors),
    /// after listing the counters it would delete.
    #[arg(long, requires = "cache")]
    pub include_global: bool,
    /// Do not ask for confirmation (scripts).
    #[arg(long)]
    pub yes: bool,
}

/// `nscache purge`.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// The user whose entries (every version) are physically deleted.
    #[arg(long)]
    pub user: String,
}

impl From<MaintenanceError> for Failure {
    fn from(err: MaintenanceError) -> Self {
        Failure {
            code: match err {
                MaintenanceError::Refused(_) => EXIT_USAGE,
                MaintenanceError::Redis(_) => EXIT_UNAVAILABLE,
            },
            message: err.to_string(),
        }
    }
}

/// `nscache doctor`: every check, one line each; the run is recorded for
/// the dashboard when the keys were scanned and Redis answered.
pub async fn doctor(
    cli: &Cli,
    args: &DoctorArgs,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let settings = cli.settings()?;
    let report = doctor::run(
        &settings,
        &DoctorOptions {
            scan: !args.no_scan,
            postgres: None,
            cache: None,
        },
    )
    .await;
    let redis_ok = report
        .check("redis.reachable")
        .is_some_and(|c| c.status == Status::Ok);
    if report.scanned && redis_ok {
        let cache = Cache::builder()
            .settings(store_only(&settings))
            .build()
            .await;
        if let Err(e) = match cache {
            Ok(cache) => doctor::record(&cache, &report).await,
            Err(e) => Err(e),
        } {
            tracing::warn!(error = %e, "could not record the doctor's run for the dashboard");
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| usage(format!("encoding the report: {e}")))?;
        write_line(out, &text)?;
    } else {
        out.write_all(report.render().as_bytes())
            .map_err(|e| usage(format!("writing output: {e}")))?;
    }
    Ok(ExitCode::from(report.exit_code(args.strict)))
}

/// `settings` for a cache that only talks to the store (no flags database).
fn store_only(settings: &Settings) -> Settings {
    Settings {
        database_url: None,
        l1: false,
        ..settings.clone()
    }
}

/// Whether `answer` (a line the operator typed) names database `db`.
pub fn confirmed(answer: &str, db: u32) -> bool {
    let answer = answer.trim();
    answer == db.to_string() || answer == format!("db{db}")
}

/// Ask the operator to type the database number; `yes` skips the question.
fn confirm(out: &mut impl Write, db: u32, what: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    write!(out, "{what}\nType the database number ({db}) to go on: ")
        .and_then(|()| out.flush())
        .map_err(|e| usage(format!("writing output: {e}")))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| usage(format!("reading the confirmation: {e}")))?;
    if confirmed(&line, db) {
        Ok(())
    } else {
        Err(usage(format!(
            "not confirmed (typed {:?}, not {db}): nothing was removed",
            line.trim()
        )))
    }
}

/// `nscache flush`.
pub async fn flush(cli: &Cli, args: &FlushArgs, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let settings = cli.settings()?;
    let cache = Cache::builder()
        .settings(store_only(&settings))
        .build()
        .await?;
    let resolved = cache.resolved_settings();
    let mut maintenance = Maintenance::connect(&resolved).await?;
    let db = maintenance.database();
    let place = maintenance.place();
    if args.all_namespaces {
        confirm(
            out,
            db,
            &format!(
                "Invalidate every namespace in {place} (O(1); old entries expire by their TTL)."
            ),
            args.yes,
        )?;
        let floor = cache.invalidate_all().await?;
        write_line(
            out,
            &format!("every namespace invalidated (floor {floor}); global keys untouched"),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let scope = if args.queries {
        FlushScope::Queries
    } else {
        FlushScope::Cache {
            include_global: args.include_global,
        }
    };
    let survey = maintenance.survey(scope).await?;
    if args.include_global {
        if survey.counters.is_empty() {
            write_line(out, "no global counters among the keys to delete")?;
        } else {
            write_line(
                out,
                "These global counters would be deleted (a deleted invoice sequence starts again: duplicate invoice numbers):",
            )?;
            for (key, value) in &survey.counters {
                write_line(out, &format!("  {key} = {value}"))?;
            }
        }
    }
    let what = match scope {
        FlushScope::Queries => "cached query results and table versions",
        FlushScope::Cache {
            include_global: true,
        } => "every namespace and every global key",
        FlushScope::Cache { .. } => "every namespace (global keys stay)",
    };
    confirm(
        out,
        db,
        &format!("Remove {} keys ({what}) from {place}.", survey.keys),
        args.yes,
    )?;
    let removed = maintenance.flush(scope).await?;
    write_line(
        out,
        &format!("removed {removed} keys ({what}) from {place}"),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `nscache purge --user ID`.
pub async fn purge(cli: &Cli, args: &PurgeArgs, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let settings = cli.settings()?;
    let cache = Cache::builder()
        .settings(store_only(&settings))
        .build()
        .await?;
    let mut maintenance = Maintenance::connect(&cache.resolved_settings()).await?;
    let removed = maintenance.purge_user(&args.user).await?;
    write_line(
        out,
        &format!(
            "removed {removed} keys of user {:?} (every version) from {}",
            args.user,
            maintenance.place()
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_database_number_confirms() {
        assert!(confirmed("1\n", 1));
        assert!(confirmed(" db1 ", 1));
        assert!(!confirmed("y", 1));
        assert!(!confirmed("", 1));
        assert!(!confirmed("0", 1));
    }
}
