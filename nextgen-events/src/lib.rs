//! Receive NextGen payment webhooks: verified, typed, compile-time checked handlers.

pub mod actix;
pub mod catalog;
pub mod config;
pub mod context;
pub mod delivery;
pub mod dispatch;
pub mod envelope;
pub mod error;
pub mod handler;
pub mod idempotency;
pub mod inbox;
pub mod metrics;
pub mod payloads;
mod read;
// Redis: an idempotency store and an inbox shared by several replicas (cargo feature `redis`).
// Documented inside (an outer doc here would resolve the module's links from the crate root).
#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;
mod report;
pub mod signature;
// SQLite: the inbox and the idempotency store in one durable file (cargo feature `sqlite`).
#[cfg(feature = "sqlite")]
pub mod sqlite;
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
///   JSON text without building a `Value` (see [`handler::FromAnyEvent`]).
/// - Later arguments implement [`FromContext`]: `web::Data<T>` from the app.
/// - The return type is `()` or `Result<(), E>` with `E: Display`; an `Err` answers 500, so
///   the sender delivers the event again.
/// - The function stays callable as written. It is registered through `inventory`, also from
///   library crates, as long as the binary links them (`use my_handlers as _;`).
/// - Several handlers of one event all run.
pub use nextgen_macros::nextgen_event;

pub use config::{ConfigError, WebhookConfig};
pub use context::{AppData, Context, FromContext};
pub use delivery::{VerifiedDelivery, receive};
pub use dispatch::{dispatch, dispatch_with};
pub use envelope::{EnvelopeError, Event, EventData, UntypedEvent};
pub use error::WebhookError;
pub use handler::Handler;
pub use registry::{DuplicateHandlerName, Registry};
pub use report::{DispatchReport, HandlerError, HandlerOutcome};
pub use signature::{SignatureError, Verifier, sign, verify};

/// Not public API: what the `#[nextgen_event]` expansion names.
#[doc(hidden)]
pub mod __private {
    pub use crate::catalog::ErasedEvent;
    pub use crate::handler::{
        FromAnyEvent, FromEvent, HandlerFn, HandlerFuture, IntoHandlerResult, ObjectForm, downcast,
    };
    pub use inventory;
    pub use serde_json::Value;
}

/// What a handler author needs: `use nextgen_events::prelude::*;`.
pub mod prelude {
    pub use crate::nextgen_event;
    pub use crate::payloads::{
        Charge, ChargeStatus, Customer, Dispute, DisputeReason, DisputeStatus, Invoice,
        InvoiceStatus, Refund, RefundReason, RefundStatus,
    };
    pub use crate::{
        Context, Event, FromContext, HandlerError, SignatureError, WebhookConfig, WebhookError,
    };
    pub use actix_web::web;
}
