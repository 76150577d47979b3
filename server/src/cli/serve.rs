//! `nscache serve`: the HTTP API, `/health`, `/metrics` and the admin UI.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::admin::app_pool;
use super::{Cli, EXIT_UNAVAILABLE, Failure, usage, write_line};
use crate::edge::EdgeLimits;
use crate::server::{Server, open_directory};

/// Options of `serve` (the cache's own are the global options).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "NSCACHE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Mark session cookies Secure, named with the __Host- prefix (serving
    /// over TLS, or behind a TLS proxy).
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
    /// Seconds a client may take to send a request's line and headers (also
    /// how long an idle keep-alive connection stays open).
    #[arg(long, env = "NSCACHE_HEADER_TIMEOUT", value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub header_timeout: Duration,
    /// Seconds from a request's headers to its response's (408 beyond).
    #[arg(long, env = "NSCACHE_REQUEST_TIMEOUT", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub request_timeout: Duration,
    /// Seconds a request body may pause between two pieces before it is cut.
    #[arg(long, env = "NSCACHE_BODY_TIMEOUT", value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub body_timeout: Duration,
    /// Connections served at once; more wait, unaccepted, until one closes.
    #[arg(long, env = "NSCACHE_MAX_CONNECTIONS", value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Requests one caller (a token, a session, or an address without
    /// either) may have in flight (429 beyond); one client address may have
    /// 8 times that, whatever credentials it sends.
    #[arg(long, env = "NSCACHE_MAX_REQUESTS_PER_CALLER", value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_per_caller: u32,
    /// Seconds requests in flight may take to finish after SIGTERM or ctrl-c.
    #[arg(long, env = "NSCACHE_SHUTDOWN_GRACE", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub shutdown_grace: Duration,
}

/// A duration in seconds, fractions allowed (`10`, `0.5`).
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
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
    config.per_caller_requests = args.max_requests_per_caller as usize;
    config.edge = EdgeLimits {
        header_read_timeout: args.header_timeout,
        request_timeout: args.request_timeout,
        body_timeout: args.body_timeout,
        max_connections: args.max_connections as usize,
        shutdown_grace: args.shutdown_grace,
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
    let data_dir = config.data_dir.clone();
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
    announce_first_admin(&server, &data_dir, out).await?;
    out.flush().map_err(|e| usage(e.to_string()))?;
    server.serve(listener).await.map_err(|e| Failure {
        code: EXIT_UNAVAILABLE,
        message: format!("server: {e}"),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Write `secret` to `path`, readable and writable by its owner only
/// (the directory is created 0700 if missing).
fn write_private(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir)?;
    }
    // A fresh file (never one planted there, nor a link), renamed into place.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        writeln!(file, "{secret}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// With no admin yet, create one; its password goes to a file readable by
/// the owner only (never to the terminal or logs).
async fn announce_first_admin(
    server: &Server,
    data_dir: &std::path::Path,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match server.control().ensure_admin().await {
        Ok(Some((name, password))) => {
            let path = data_dir.join("first-admin-password");
            write_private(&path, &password)
                .map_err(|e| usage(format!("writing {}: {e}", path.display())))?;
            write_line(
                out,
                &format!(
                    "  created the first admin {name:?}; its password is in {} (readable by this user only)",
                    path.display()
                ),
            )?;
            write_line(
                out,
                &format!(
                    "  sign in, then set your own with `nscache user passwd {name} --password-stdin` and delete that file"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_nonsense() {
        assert_eq!(seconds("10"), Ok(Duration::from_secs(10)));
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "NaN", "inf", "ten", ""] {
            assert!(seconds(bad).is_err(), "{bad:?}");
        }
    }
}
