//! Handlers that take the app's PostgreSQL transaction (`tx: &mut PgConnection`): what
//! `#[nextgen_event]` registers for them, started once dispatch has opened the transaction.

use std::future::Future;
use std::pin::Pin;

use sqlx::PgConnection;

use super::HandlerError;
use crate::catalog::ErasedEvent;
use crate::handler::Context;

/// The run of a transactional handler, its arguments taken: given the transaction, the
/// handler's future, which borrows it.
pub type PgCall = Box<
    dyn for<'c> FnOnce(
            &'c mut PgConnection,
        )
            -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'c>>
        + Send,
>;

/// Extracts a transactional handler's arguments from the event and the context; the
/// transaction comes later (see [`PgCall`]).
pub type PgHandlerFn = fn(ErasedEvent, &Context<'_>) -> Result<PgCall, HandlerError>;

/// Boxes the `#[nextgen_event]` expansion's closure as a [`PgCall`] (a function, so that the
/// compiler gives the closure the signature for every lifetime of the transaction).
#[doc(hidden)]
pub fn postgres_call<F>(call: F) -> PgCall
where
    F: for<'c> FnOnce(
            &'c mut PgConnection,
        )
            -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'c>>
        + Send
        + 'static,
{
    Box::new(call)
}
