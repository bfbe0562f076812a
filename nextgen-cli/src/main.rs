//! `nextgen`: the command-line companion of nextgen-events: `trigger`, `inbox`, `sign`,
//! `verify`.
//!
//! Exit status: 0 success; 1 the work failed (a delivery that does not verify); 2 a usage
//! error.

mod failure;
mod inbox;
mod shown;
mod sign;
mod trigger;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use failure::Failure;

/// Send, sign and verify NextGen webhook deliveries, and look into inboxes.
#[derive(Debug, Parser)]
#[command(name = "nextgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a signed sample event (of any catalog type) to a webhook endpoint.
    Trigger(trigger::Args),
    /// Look into a webhook inbox (SQLite, Redis or PostgreSQL) and replay deliveries.
    Inbox(inbox::Args),
    /// Print the `NextGen-Signature` header value of a body.
    Sign(sign::Args),
    /// Verify a delivery, and say exactly why it does not verify.
    Verify(verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Trigger(args) => return trigger::main(args),
        Command::Inbox(args) => return inbox::main(args),
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => verify::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
