//! `nscache serve`: the HTTP API, `/health`, `/metrics` and the admin UI.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::admin::app_pool;
use super::{Cli, EXIT_UNAVAILABLE, Failure, usage, write_line};
use crate::server::{Server, open_directory};

/// Options of `serve` (the cache's own are the global options).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "NSCACHE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Mark session cookies Secure (serving over TLS, or behind a TLS proxy).
    #[arg(long, env = "NSCACHE_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// How many reverse proxies in front of the server append to
    /// X-Forwarded-For: the client address is the N-th entry from the right
    /// (0: the peer address; entries the client wrote are never trusted).
    #[arg(long, env = "NSCACHE_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,
    /// Same as --trusted-proxies 1 (kept for existing deployments).
    #[arg(long, env = "NSCACHE_TRUST_PROXY", conflicts_with = "trusted_proxies")]
    pub trust_proxy: bool,
}

/// Run the server until it is stopped.
pub async fn run(cli: &Cli, args: &ServeArgs, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let mut config = cli.server_config()?;
    config.listen = args.listen;
    config.secure_cookies = args.secure_cookies;
    config.trusted_proxies = if args.trust_proxy {
        1
    } else {
        args.trusted_proxies
    };
    let directory = open_directory(&config).await?;
    if directory.kind() == "postgres" {
        match directory.migrate().await {
            Ok(report) if !report.applied.is_empty() => write_line(
                out,
                &format!("applied migrations: {}", report.applied.join(", ")),
            )?,
            Ok(_) => {}
            Err(e) => write_line(
                out,
                &format!("warning: could not check migrations now ({e}); serving anyway"),
            )?,
        }
    }
    let listen = config.listen;
    let watch = config.cache.database_url.is_some();
    let pool = if watch {
        Some(app_pool(&config.cache)?)
    } else {
        None
    };
    let mut server = Server::with_directory(config, directory).await?;
    if let Some(pool) = pool {
        // Writes to watched tables invalidate their cached queries.
        server.watch_tables(pool);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| usage(format!("cannot listen on {listen}: {e}")))?;
    let address = listener.local_addr().map_err(|e| usage(e.to_string()))?;
    write_line(
        out,
        &format!(
            "nscache {} serving on http://{address}",
            env!("CARGO_PKG_VERSION")
        ),
    )?;
    for line in server.describe() {
        write_line(out, &format!("  {line}"))?;
    }
    announce_first_admin(&server, &address.to_string(), out).await?;
    out.flush().map_err(|e| usage(e.to_string()))?;
    server.serve(listener).await.map_err(|e| Failure {
        code: EXIT_UNAVAILABLE,
        message: format!("server: {e}"),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// With no admin yet, create one and say how to sign in.
async fn announce_first_admin(
    server: &Server,
    address: &str,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match server.control().ensure_admin().await {
        Ok(Some((name, password))) => {
            write_line(
                out,
                &format!("  created the first admin: sign in as {name:?} with password {password}"),
            )?;
            write_line(
                out,
                &format!(
                    "  e.g. curl -c cookies -H 'content-type: application/json' -d '{{\"username\":\"{name}\",\"password\":\"{password}\"}}' http://{address}/api/v1/session"
                ),
            )
        }
        Ok(None) => Ok(()),
        Err(e) => write_line(
            out,
            &format!("  warning: could not check for an admin account: {e}"),
        ),
    }
}
