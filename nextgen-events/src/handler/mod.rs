//! Handlers: what `#[nextgen_event]` registers, and the traits its expansion checks types with.

mod context;
mod error;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod transaction;

#[cfg(feature = "axum")]
pub(crate) use context::Source;
pub use context::{AppData, Context, FromContext};
pub use error::HandlerError;
pub(crate) use error::panic_message;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use transaction::TxFuture;
#[cfg(feature = "postgres")]
pub use transaction::{PgCall, PgHandlerFn, postgres_call};
#[cfg(feature = "sqlite")]
pub use transaction::{SqliteCall, SqliteHandlerFn, sqlite_call};

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::catalog::ErasedEvent;
use crate::envelope::Event;
use crate::metrics::HandlerMetrics;

/// The future a handler call returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// Extracts a handler's arguments from the event and the context, then starts the handler.
/// The extraction is synchronous so the returned future does not borrow the context.
pub type HandlerFn = fn(ErasedEvent, &Context<'_>) -> Result<HandlerFuture, HandlerError>;

/// How a handler is started.
#[derive(Clone, Copy)]
enum Calling {
    /// With its arguments, at once.
    Plain(HandlerFn),
    /// With its arguments, then the transaction dispatch opens for it.
    #[cfg(feature = "postgres")]
    InPostgres(PgHandlerFn),
    /// With its arguments, then the writes to fill, applied with its marker.
    #[cfg(feature = "sqlite")]
    InSqlite(SqliteHandlerFn),
}

/// Which database a transactional handler's transaction is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransactionOf {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

/// A handler given its arguments.
pub(crate) enum Started {
    /// Running (on its first poll).
    Now(HandlerFuture),
    /// Waiting for the transaction its writes and its done marker go into.
    #[cfg(feature = "postgres")]
    InTransaction(PgCall),
    /// Waiting for the writes it fills, applied with its done marker.
    #[cfg(feature = "sqlite")]
    InSqlite(SqliteCall),
}

/// A registered handler: one `#[nextgen_event]` function.
pub struct Handler {
    event_type: &'static str,
    name: &'static str,
    function: &'static str,
    call: Calling,
    latest_only: bool,
    form: ObjectForm,
    metrics: Option<&'static HandlerMetrics>,
}

/// How a `*` handler takes `data.object`: what dispatch builds for it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectForm {
    /// A `serde_json::Value` tree (`Event<Value>` or `Value`); also what typed handlers say.
    Json,
    /// The object's JSON text as it came (`Event<Box<RawValue>>` or `Box<RawValue>`).
    Raw,
}

impl Handler {
    /// Describes a handler; called by the `#[nextgen_event]` expansion.
    #[doc(hidden)]
    pub const fn new(event_type: &'static str, name: &'static str, call: HandlerFn) -> Self {
        Handler {
            event_type,
            name,
            function: name,
            call: Calling::Plain(call),
            latest_only: false,
            form: ObjectForm::Json,
            metrics: None,
        }
    }

    /// Describes a handler that takes the app's PostgreSQL transaction; called by the
    /// `#[nextgen_event]` expansion.
    #[doc(hidden)]
    #[cfg(feature = "postgres")]
    pub const fn in_postgres_transaction(
        event_type: &'static str,
        name: &'static str,
        call: PgHandlerFn,
    ) -> Self {
        Handler {
            event_type,
            name,
            function: name,
            call: Calling::InPostgres(call),
            latest_only: false,
            form: ObjectForm::Json,
            metrics: None,
        }
    }

    /// Describes a handler that takes a [`SqliteTx`](crate::sqlite::SqliteTx); called by the
    /// `#[nextgen_event]` expansion.
    #[doc(hidden)]
    #[cfg(feature = "sqlite")]
    pub const fn in_sqlite_transaction(
        event_type: &'static str,
        name: &'static str,
        call: SqliteHandlerFn,
    ) -> Self {
        Handler {
            event_type,
            name,
            function: name,
            call: Calling::InSqlite(call),
            latest_only: false,
            form: ObjectForm::Json,
            metrics: None,
        }
    }

    /// Makes it a `latest_only` handler; called by the `#[nextgen_event]` expansion for
    /// `#[nextgen_event("...", latest_only)]`.
    #[doc(hidden)]
    pub const fn latest_only(mut self) -> Self {
        self.latest_only = true;
        self
    }

    /// Sets how a `*` handler takes the object; called by the `#[nextgen_event]` expansion.
    #[doc(hidden)]
    pub const fn object_form(mut self, form: ObjectForm) -> Self {
        self.form = form;
        self
    }

    /// Keeps its metric keys in `metrics`, a static of its own; called by the
    /// `#[nextgen_event]` expansion.
    #[doc(hidden)]
    pub const fn with_metrics(mut self, metrics: &'static HandlerMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sets the function's path, when the name was pinned to something else; called by the
    /// `#[nextgen_event]` expansion.
    #[doc(hidden)]
    pub const fn defined_at(mut self, function: &'static str) -> Self {
        self.function = function;
        self
    }

    /// The event type it handles, or `*`.
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// Its name: the function's full path, such as `my_service::webhooks::on_charge`, or the
    /// one pinned with `#[nextgen_event("...", name = "...")]`. It keys the handler's
    /// idempotency records, so it must not change while events may be redelivered.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The function's full path, whatever its name.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// Whether it was registered with `latest_only`: per `data.object.id` it only handles
    /// events newer than the newest it handled (see
    /// [`idempotency`](crate::idempotency#newest-state-per-object-latest_only-handlers)).
    pub fn is_latest_only(&self) -> bool {
        self.latest_only
    }

    /// Whether it takes the app's transaction (`tx: &mut PgConnection` or `tx: &mut
    /// SqliteTx`): its writes and its done marker commit together, so it runs exactly once.
    pub fn takes_transaction(&self) -> bool {
        self.transaction().is_some()
    }

    /// The backend of the transaction it takes, if it takes one.
    pub(crate) fn transaction(&self) -> Option<TransactionOf> {
        match self.call {
            Calling::Plain(_) => None,
            #[cfg(feature = "postgres")]
            Calling::InPostgres(_) => Some(TransactionOf::Postgres),
            #[cfg(feature = "sqlite")]
            Calling::InSqlite(_) => Some(TransactionOf::Sqlite),
        }
    }

    /// The keys of its metrics, kept by the macro's expansion.
    pub(crate) fn metrics(&self) -> Option<&'static HandlerMetrics> {
        self.metrics
    }

    /// How it takes the object, for `*` handlers.
    pub(crate) fn form(&self) -> ObjectForm {
        self.form
    }

    pub(crate) fn start(
        &self,
        event: ErasedEvent,
        context: &Context<'_>,
    ) -> Result<Started, HandlerError> {
        match self.call {
            Calling::Plain(call) => call(event, context).map(Started::Now),
            #[cfg(feature = "postgres")]
            Calling::InPostgres(call) => call(event, context).map(Started::InTransaction),
            #[cfg(feature = "sqlite")]
            Calling::InSqlite(call) => call(event, context).map(Started::InSqlite),
        }
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("event_type", &self.event_type)
            .field("name", &self.name)
            .field("function", &self.function)
            .field("latest_only", &self.latest_only)
            .finish()
    }
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (\"{}\")", self.function, self.event_type)
    }
}

inventory::collect!(Handler);

/// A handler's first argument: the payload `P` itself or the whole `Event<P>`.
#[diagnostic::on_unimplemented(
    message = "this handler's first argument is `{Self}`, but the event carries `{P}`",
    label = "expected `{P}` or `Event<{P}>`",
    note = "the event catalog gives each event type one payload type: take it, or the whole `Event<..>` around it"
)]
pub trait FromEvent<P>: Sized {
    /// Takes the argument out of the event.
    fn from_event(event: Event<P>) -> Self;
}

impl<P> FromEvent<P> for P {
    fn from_event(event: Event<P>) -> Self {
        event.data.object
    }
}

impl<P> FromEvent<P> for Event<P> {
    fn from_event(event: Event<P>) -> Self {
        event
    }
}

/// A `*` handler's first argument: the event's object as JSON (`Event<serde_json::Value>`
/// or `serde_json::Value`), or as its JSON text, exactly as it came
/// (`Event<Box<RawValue>>` or `Box<RawValue>`).
///
/// The raw forms cost no JSON tree: an audit trail that logs ids and types, or stores the
/// object as it came, should take them.
///
/// ```
/// use nextgen_events::prelude::*;
/// use serde_json::value::RawValue;
///
/// #[nextgen_event("*")]
/// async fn audit(event: Event<Box<RawValue>>) {
///     println!("{} {}: {} bytes", event.event_type, event.id, event.data.object.get().len());
/// }
/// # fn main() {}
/// ```
#[diagnostic::on_unimplemented(
    message = "a `\"*\"` handler cannot take `{Self}`",
    label = "expected `Event<serde_json::Value>`, `Event<Box<RawValue>>`, or the object alone",
    note = "a `*` handler sees every event, known or not, as JSON"
)]
pub trait FromAnyEvent: Sized {
    /// What dispatch builds for it.
    #[doc(hidden)]
    const FORM: ObjectForm;

    /// Takes the argument out of the event dispatch built for [`FORM`](Self::FORM).
    #[doc(hidden)]
    fn from_any_event(event: ErasedEvent) -> Result<Self, HandlerError>;
}

impl FromAnyEvent for Event<Value> {
    const FORM: ObjectForm = ObjectForm::Json;

    fn from_any_event(event: ErasedEvent) -> Result<Self, HandlerError> {
        downcast(event)
    }
}

impl FromAnyEvent for Value {
    const FORM: ObjectForm = ObjectForm::Json;

    fn from_any_event(event: ErasedEvent) -> Result<Self, HandlerError> {
        downcast::<Value>(event).map(|event| event.data.object)
    }
}

impl FromAnyEvent for Event<Box<RawValue>> {
    const FORM: ObjectForm = ObjectForm::Raw;

    fn from_any_event(event: ErasedEvent) -> Result<Self, HandlerError> {
        downcast(event)
    }
}

impl FromAnyEvent for Box<RawValue> {
    const FORM: ObjectForm = ObjectForm::Raw;

    fn from_any_event(event: ErasedEvent) -> Result<Self, HandlerError> {
        downcast::<Box<RawValue>>(event).map(|event| event.data.object)
    }
}

/// What a handler may return: `()` or `Result<(), E>` with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a webhook handler",
    label = "return `()` or `Result<(), E>` where `E: Display`",
    note = "an `Err` is reported and answered with 500, so the sender delivers the event again"
)]
pub trait IntoHandlerResult {
    /// Turns the handler's return value into its outcome.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: fmt::Display> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        // `{:#}` gives error chains (anyhow and friends) their causes on one line.
        self.map_err(|error| HandlerError::Failed(format!("{error:#}")))
    }
}

/// A payload with an `id`, which `latest_only` handlers key the newest state by; the
/// `#[nextgen_event(..., latest_only)]` expansion checks the payload implements it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`latest_only` needs the event's object to have an `id`, and `{Self}` has none",
    label = "`latest_only` keys the newest state by `data.object.id`",
    note = "remove `latest_only`, and compare the event's `created` with the state you keep in the handler"
)]
pub trait ObjectId {
    /// The object's id.
    fn object_id(&self) -> &str;
}

macro_rules! object_ids {
    ($($payload:ident),*) => {
        $(impl ObjectId for crate::payloads::$payload {
            fn object_id(&self) -> &str {
                &self.id
            }
        })*
    };
}

object_ids!(Charge, Dispute, Customer, Refund, Invoice);

/// Takes the type-erased event back out as the payload type the handler was registered for.
#[doc(hidden)]
pub fn downcast<P: 'static>(event: ErasedEvent) -> Result<Event<P>, HandlerError> {
    event
        .downcast::<Event<P>>()
        .map(|event| *event)
        .map_err(|_| HandlerError::WrongPayload {
            expected: std::any::type_name::<P>(),
        })
}
