//! Handlers that take the app's transaction (`tx: &mut PgConnection`, `tx: &mut SqliteTx`):
//! what `#[nextgen_event]` registers for them, started once dispatch has the transaction.

use std::future::Future;
use std::pin::Pin;

#[cfg(feature = "postgres")]
use sqlx::PgConnection;

use super::HandlerError;
use crate::catalog::ErasedEvent;
use crate::handler::Context;
#[cfg(feature = "sqlite")]
use crate::idempotency::sqlite_tx::SqliteTx;

/// A handler's future that borrows its transaction for `'c`.
pub type TxFuture<'c> = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'c>>;

/// The run of a handler that takes a PostgreSQL transaction, its arguments taken: given the
/// transaction, the handler's future, which borrows it.
#[cfg(feature = "postgres")]
pub type PgCall = Box<dyn for<'c> FnOnce(&'c mut PgConnection) -> TxFuture<'c> + Send>;

/// Extracts a transactional handler's arguments from the event and the context; the
/// transaction comes later (see [`PgCall`]).
#[cfg(feature = "postgres")]
pub type PgHandlerFn = fn(ErasedEvent, &Context<'_>) -> Result<PgCall, HandlerError>;

/// Boxes the `#[nextgen_event]` expansion's closure as a [`PgCall`] (a function, so that the
/// compiler gives the closure the signature for every lifetime of the transaction).
#[doc(hidden)]
#[cfg(feature = "postgres")]
pub fn postgres_call<F>(call: F) -> PgCall
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> TxFuture<'c> + Send + 'static,
{
    Box::new(call)
}

/// The run of a handler that takes a [`SqliteTx`], its arguments taken: given the writes to
/// fill, the handler's future, which borrows them.
#[cfg(feature = "sqlite")]
pub type SqliteCall = Box<dyn for<'c> FnOnce(&'c mut SqliteTx) -> TxFuture<'c> + Send>;

/// Extracts such a handler's arguments from the event and the context (see [`SqliteCall`]).
#[cfg(feature = "sqlite")]
pub type SqliteHandlerFn = fn(ErasedEvent, &Context<'_>) -> Result<SqliteCall, HandlerError>;

/// Boxes the `#[nextgen_event]` expansion's closure as a [`SqliteCall`].
#[doc(hidden)]
#[cfg(feature = "sqlite")]
pub fn sqlite_call<F>(call: F) -> SqliteCall
where
    F: for<'c> FnOnce(&'c mut SqliteTx) -> TxFuture<'c> + Send + 'static,
{
    Box::new(call)
}
