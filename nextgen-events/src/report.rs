//! Dispatch reports: what happened to each handler of one delivery, and why one failed.

use std::any::Any;
use std::time::Duration;

/// Why one handler did not complete a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The handler returned `Err`; holds its error's `Display` output.
    #[error("the handler returned an error: {0}")]
    Failed(String),
    /// The handler panicked; holds the panic message.
    #[error("the handler panicked: {0}")]
    Panicked(String),
    /// The handler takes an argument from app data that the app does not register.
    #[error(
        "the handler needs app data of type `{type_name}`, which the app does not register: add `.app_data(...)` with it to the App (or `Context::with_data` in tests)"
    )]
    MissingAppData {
        /// The missing type, as `std::any::type_name` spells it.
        type_name: &'static str,
    },
    /// Another delivery of the same event id is running this handler right now; a redelivery
    /// will find it done, or run it if that delivery failed.
    #[error("another delivery of this event is running the handler right now")]
    InProgress,
    /// A `latest_only` handler's event has no `data.object.id` to key the object's newest
    /// state by; the handler did not run.
    #[error(
        "the handler is `latest_only`, but the event has no `data.object.id` (a string) to tell its object by; remove `latest_only` from the handler if its events can come without one"
    )]
    MissingObjectId,
    /// The handler was given a payload of another type than it was registered for.
    #[error(
        "the handler was given a payload of the wrong type (expected `{expected}`): this is a bug in nextgen-events, please report it"
    )]
    WrongPayload {
        /// The type the handler expected.
        expected: &'static str,
    },
}

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

/// The message of a caught panic, when it has one.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
