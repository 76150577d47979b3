//! The `nscache` binary: see `nscache --help`.

use std::process::ExitCode;

use clap::Parser;
use nscache_server::cli::{Cli, run};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nscache: starting the async runtime: {e}");
            return ExitCode::from(nscache_server::cli::EXIT_UNAVAILABLE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(run(cli, &mut stdout)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("nscache: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
