use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stockd::cli::Cli::parse();
    stockd::telemetry::init_logs(cli.log_format);
    stockd::cli::run(cli)
}
