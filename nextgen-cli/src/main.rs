//! `nextgen`: the command-line companion of nextgen-events.
//!
//! Exit status: 0 success; 1 the work failed (a delivery that does not verify); 2 a usage
//! error.

mod failure;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use failure::Failure;

/// Sign and verify NextGen webhook deliveries.
#[derive(Debug, Parser)]
#[command(name = "nextgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the `NextGen-Signature` header value of a body.
    Sign(sign::Args),
    /// Verify a delivery, and say exactly why it does not verify.
    Verify(verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => verify::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
