//! Dispatch reports: what happened to each handler of one delivery.

use std::time::Duration;

use crate::handler::HandlerError;

/// How one handler did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOutcome {
    /// The handler's full path.
    pub handler: &'static str,
    /// `Ok` when it completed, or why it did not.
    pub result: Result<(), HandlerError>,
    /// How long it ran.
    pub duration: Duration,
    /// True when it was not run because it already succeeded for this event id, or because
    /// the event is stale (see `stale`).
    pub skipped: bool,
    /// True when a `latest_only` handler was not run because it already handled a newer
    /// event of the same object (`skipped` is true too).
    pub stale: bool,
}

/// What a dispatch did: which handlers ran, which failed and why, and how long each took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchReport {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// One outcome per handler that matched, in the order they ran.
    pub outcomes: Vec<HandlerOutcome>,
}

impl DispatchReport {
    /// Whether every matching handler succeeded (also true when none matched).
    pub fn is_success(&self) -> bool {
        self.outcomes.iter().all(|outcome| outcome.result.is_ok())
    }

    /// Whether the only failures are handlers another delivery of the event is running.
    pub fn only_in_progress(&self) -> bool {
        let mut failures = self.failures().peekable();
        failures.peek().is_some()
            && failures.all(|outcome| outcome.result == Err(HandlerError::InProgress))
    }

    /// The handlers that failed.
    pub fn failures(&self) -> impl Iterator<Item = &HandlerOutcome> {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.result.is_err())
    }
}
