use std::process::ExitCode;

use clap::Parser;

/// Allocation is on every request's path (bodies, JSON, keys): see Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = stockd::cli::Cli::parse();
    stockd::telemetry::init_logs(cli.log_format);
    stockd::cli::run(cli)
}
