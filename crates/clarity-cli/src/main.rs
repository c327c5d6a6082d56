//! The `clarity` binary: parses the arguments and dispatches (everything else is in the lib).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = clarity_cli::Cli::parse();
    std::process::ExitCode::from(clarity_cli::run(cli))
}
