//! Why a command stopped: a message for stderr and an exit status.

use std::process::ExitCode;

use crate::shown::clean_body;

/// A command's failure: exit status 2 for a usage error, 1 for anything else.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong and what to do, printed after `error: `.
    pub(crate) message: String,
    /// The process's exit status.
    pub(crate) status: u8,
}

impl Failure {
    /// The command line or its input was wrong: exit status 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: 2,
        }
    }

    /// The work failed: exit status 1.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: 1,
        }
    }

    /// Prints the message to stderr, escaped (it may hold what came from outside: a store's
    /// error, an endpoint's answer, a path), and gives the exit status.
    pub(crate) fn report(&self) -> ExitCode {
        eprintln!("error: {}", clean_body(&self.message));
        ExitCode::from(self.status)
    }
}
