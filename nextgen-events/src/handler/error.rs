//! `HandlerError`: why a handler did not succeed, as its outcome reports it.

use std::any::Any;

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
    /// The handler takes the app's transaction, and it was not committed: its writes and its
    /// done marker were rolled back together (the handler failed or panicked, its claim lapsed
    /// or was taken over, a renewal of it failed, or the database refused the commit). A
    /// redelivery runs it again, from a clean slate.
    #[error("the handler's transaction was rolled back: {0}")]
    RolledBack(String),
    /// The handler takes the app's transaction, and the endpoint's store cannot hold its done
    /// marker in it (mounting refuses that, so this is seen only by a dispatch of one's own).
    #[error(
        "the handler takes a PostgreSQL transaction (`&mut PgConnection`), and the idempotency store cannot write its done marker in it: use a `PgStore` or a `PgInbox` on the database of the handler's tables"
    )]
    NoTransaction,
    /// The handler was given a payload of another type than it was registered for.
    #[error(
        "the handler was given a payload of the wrong type (expected `{expected}`): this is a bug in nextgen-events, please report it"
    )]
    WrongPayload {
        /// The type the handler expected.
        expected: &'static str,
    },
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
