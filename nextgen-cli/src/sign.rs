//! `nextgen sign`: the `NextGen-Signature` header value of a body, as NextGen computes it.

use std::path::PathBuf;

use crate::Failure;
use crate::verify::{read_body, secrets, unix_now};

/// Print the `NextGen-Signature` header value of a body.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The body, byte for byte as it will be sent (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// The signing secret [default: the first of `NEXTGEN_WEBHOOK_SECRET`].
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// The timestamp to sign at, in seconds since the Unix epoch [default: now].
    #[arg(long, value_name = "UNIX_SECONDS")]
    timestamp: Option<u64>,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let body = read_body(&args.body)?;
    let secret = match &args.secret {
        Some(secret) => secret.clone(),
        None => secrets(&[])?.swap_remove(0),
    };
    if secret.trim().is_empty() {
        return Err(Failure::usage(
            "the secret is empty: pass the endpoint's signing secret (`whsec_...`) with --secret or NEXTGEN_WEBHOOK_SECRET",
        ));
    }
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    println!("{}", nextgen_events::sign(&body, &secret, timestamp));
    Ok(())
}
