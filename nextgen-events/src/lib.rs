#![doc = include_str!("../docs/index.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unreachable_pub)]
// Without an HTTP integration nothing mounts the route, so its shared half and the inbox's
// intake go unused; the core still builds, for stores and dispatch on their own.
#![cfg_attr(not(any(feature = "actix", feature = "axum")), allow(dead_code))]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod backend;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod backend_runtime;
mod budget;
pub mod catalog;
mod config;
mod delivery;
mod dispatch;
mod endpoint;
mod envelope;
mod error;
pub mod guide;
mod handler;
pub mod idempotency;
pub mod inbox;
mod limits;
pub mod metrics;
pub mod payloads;
mod read;
// Redis: an idempotency store and an inbox shared by several replicas (cargo feature `redis`).
// Documented inside (an outer doc here would resolve the module's links from the crate root).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
// PostgreSQL: an idempotency store and an inbox shared by several replicas (cargo feature
// `postgres`). Documented inside, as `redis`.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod registry;
mod route;
mod signature;
mod text;
// SQLite: the inbox and the idempotency store in one durable file (cargo feature `sqlite`).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
// Signed sample deliveries for tests (cargo feature `testing`): not in production builds.
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod throttle;

/// Registers an `async fn` as the handler of a NextGen event type.
///
/// ```
/// use nextgen_events::prelude::*;
///
/// #[derive(Debug)]
/// struct StoreDown;
/// impl std::fmt::Display for StoreDown {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("the order store is down")
///     }
/// }
///
/// // The payload itself...
/// #[nextgen_event("charge.succeeded")]
/// async fn on_charge(charge: Charge) -> Result<(), StoreDown> {
///     println!("charge {} for {} {}", charge.id, charge.amount, charge.currency);
///     Ok(())
/// }
///
/// // ...or the whole envelope, and app data registered on the actix `App`.
/// struct Ledger;
/// #[nextgen_event("refund.created")]
/// async fn on_refund(event: Event<Refund>, ledger: web::Data<Ledger>) {
///     let _ = (event.id, event.data.object.amount, ledger);
/// }
///
/// // Every event, known to the catalog or not, as JSON...
/// #[nextgen_event("*")]
/// async fn audit(event: Event<serde_json::Value>) {
///     println!("{} {}", event.event_type, event.id);
/// }
///
/// // ...or as the object's JSON text, which costs no `Value` tree.
/// #[nextgen_event("*")]
/// async fn archive(event: Event<Box<serde_json::value::RawValue>>) {
///     println!("{} {}", event.id, event.data.object.get());
/// }
/// # fn main() {}
/// ```
///
/// - The event type is checked against the catalog at compile time (with a "did you mean").
/// - The first argument is the catalog's payload for the event type, or `Event<ThatPayload>`;
///   `"*"` handlers take `Event<serde_json::Value>`, or `Event<Box<RawValue>>` for the object's
///   JSON text without building a `Value`.
/// - Later arguments implement [`FromContext`]: `web::Data<T>` (actix), `Extension<T>` or
///   `State<T>` (axum) from the app.
/// - The return type is `()` or `Result<(), E>` with `E: Display`; an `Err` answers 500, so
///   the sender delivers the event again.
/// - The function stays callable as written. It is registered through `inventory`, also from
///   library crates, as long as the binary links them (`use my_handlers as _;`).
/// - Several handlers of one event all run.
/// - `name = "..."` pins the handler's name (its idempotency key), in place of the function's
///   path.
/// - `latest_only` (as in `#[nextgen_event("customer.updated", latest_only)]`) never applies
///   an older state over a newer one: per `data.object.id` the handler only runs for events
///   newer (by `created`, then event id) than the newest it handled; older ones are
///   acknowledged without running it. See
///   [`idempotency`](crate::idempotency#newest-state-per-object-latest_only-handlers).
pub use nextgen_macros::nextgen_event;

pub use config::{ConfigError, WebhookConfig};
pub use delivery::VerifiedDelivery;
pub use dispatch::{DispatchReport, HandlerOutcome};
pub use endpoint::{Endpoint, Health, IntoEndpoint, LockHealth, Received, StopReport, StoreHealth};
pub use envelope::{EnvelopeError, Event, EventData, EventRequest, RawEvent, UntypedEvent};
pub use error::WebhookError;
pub use handler::{AppData, Context, FromContext, Handler, HandlerError};
pub use registry::{DuplicateHandlerName, Registry};
pub use signature::{
    Clock, HeaderProblem, Secret, SignatureError, SignatureHeader, Verifier, sign, verify,
};

/// Not public API: what the `#[nextgen_event]` expansion names.
#[doc(hidden)]
pub mod __private {
    pub use crate::catalog::erased::ErasedEvent;
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub use crate::handler::TxFuture;
    pub use crate::handler::{
        FromAnyEvent, FromEvent, HandlerFn, HandlerFuture, IntoHandlerResult, ObjectForm, ObjectId,
        downcast,
    };
    #[cfg(feature = "postgres")]
    pub use crate::handler::{PgCall, PgHandlerFn, postgres_call};
    #[cfg(feature = "sqlite")]
    pub use crate::handler::{SqliteCall, SqliteHandlerFn, sqlite_call};
    pub use crate::metrics::record::HandlerMetrics;
    pub use inventory;
    pub use serde_json::Value;

    /// The type of a handler's transaction argument (`&mut PgConnection` as the macro saw
    /// it), checked where the user wrote it.
    #[cfg(feature = "postgres")]
    #[diagnostic::on_unimplemented(
        message = "a handler's transaction is `&mut PgConnection` of the sqlx that nextgen-events is built on, and `{Self}` is not it",
        label = "not nextgen-events' `&mut PgConnection`",
        note = "use `nextgen_events::postgres::PgConnection` (and `nextgen_events::postgres::sqlx` for queries), or the same sqlx version as nextgen-events"
    )]
    pub trait PostgresTransaction {}

    #[cfg(feature = "postgres")]
    impl PostgresTransaction for &mut sqlx::PgConnection {}

    /// See the other definition (with the cargo feature `postgres`).
    #[cfg(not(feature = "postgres"))]
    #[diagnostic::on_unimplemented(
        message = "this handler takes a PostgreSQL transaction (`{Self}`), which needs the cargo feature `postgres` of nextgen-events",
        label = "a PostgreSQL transaction",
        note = "enable it: `nextgen-events = {{ version = \"0.1\", features = [\"postgres\"] }}`"
    )]
    pub trait PostgresTransaction {}

    /// Compiles only for a [`PostgresTransaction`].
    pub fn postgres_transaction<T: PostgresTransaction>() {}

    /// The type of a handler's SQLite writes argument (`&mut SqliteTx` as the macro saw it),
    /// checked where the user wrote it.
    #[cfg(feature = "sqlite")]
    #[diagnostic::on_unimplemented(
        message = "a handler's SQLite writes are `&mut nextgen_events::sqlite::SqliteTx`, and `{Self}` is not it",
        label = "not nextgen-events' `&mut SqliteTx`",
        note = "use `nextgen_events::sqlite::SqliteTx`"
    )]
    pub trait SqliteTransaction {}

    #[cfg(feature = "sqlite")]
    impl SqliteTransaction for &mut crate::idempotency::sqlite_tx::SqliteTx {}

    /// See the other definition (with the cargo feature `sqlite`).
    #[cfg(not(feature = "sqlite"))]
    #[diagnostic::on_unimplemented(
        message = "this handler takes SQLite writes (`{Self}`), which need the cargo feature `sqlite` of nextgen-events",
        label = "SQLite writes",
        note = "enable it: `nextgen-events = {{ version = \"0.1\", features = [\"sqlite\"] }}`"
    )]
    pub trait SqliteTransaction {}

    /// Compiles only for a [`SqliteTransaction`].
    pub fn sqlite_transaction<T: SqliteTransaction>() {}
}

/// The part of a `#[nextgen_event]` expansion for a handler that takes the app's PostgreSQL
/// transaction: as it is with the cargo feature `postgres`, nothing without it (the
/// expansion's `postgres_transaction` check then says which feature, at the argument).
#[cfg(feature = "postgres")]
#[doc(hidden)]
#[macro_export]
macro_rules! __in_postgres_transaction {
    ($($expansion:tt)*) => { $($expansion)* };
}

/// See the other definition (with the cargo feature `postgres`).
#[cfg(not(feature = "postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __in_postgres_transaction {
    ($($expansion:tt)*) => {};
}

/// The part of a `#[nextgen_event]` expansion for a handler that takes a `SqliteTx`: as it is
/// with the cargo feature `sqlite`, nothing without it (as `__in_postgres_transaction`).
#[cfg(feature = "sqlite")]
#[doc(hidden)]
#[macro_export]
macro_rules! __in_sqlite_transaction {
    ($($expansion:tt)*) => { $($expansion)* };
}

/// See the other definition (with the cargo feature `sqlite`).
#[cfg(not(feature = "sqlite"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __in_sqlite_transaction {
    ($($expansion:tt)*) => {};
}

/// What handler code uses: `use nextgen_events::prelude::*;` brings the attribute, the
/// envelope, the payloads, the handler arguments (`FromContext`, `Context`, the framework's own
/// `web` or `Extension`/`State`) and `HandlerError`. Configuration and errors are
/// at the crate root.
pub mod prelude {
    pub use crate::nextgen_event;
    pub use crate::payloads::{
        Charge, ChargeStatus, Customer, Dispute, DisputeReason, DisputeStatus, Invoice,
        InvoiceStatus, Refund, RefundReason, RefundStatus,
    };
    pub use crate::{Context, Event, FromContext, HandlerError};
    #[cfg(feature = "actix")]
    pub use actix_web::web;
    #[cfg(feature = "axum")]
    pub use axum::{Extension, extract::State};
}
