//! Handlers that take the app's transaction: their writes and their done marker commit
//! together, or neither does.
//!
//! On PostgreSQL, dispatch begins a transaction on the store's database and takes the handler's claim in it;
//! the claim's row stays locked until the transaction ends, so no other delivery can take it
//! over meanwhile (one that tries waits up to the lease for the end, then finds the marker, or
//! the claim free after a rollback). The handler runs with the transaction, then the done marker
//! is written in it, and it commits: one commit for all of it. A handler's `Err` or panic, or a
//! marker that could not be written, rolls everything back, claim included, and so does a
//! process that dies mid-handler (its connection goes, and the server rolls back): the next
//! delivery runs the handler from a clean slate.
//!
//! On SQLite, the handler runs under its claim as any other, filling a [`SqliteTx`] with its
//! writes; then the file's writer applies them with the done marker in one transaction, only
//! while the claim is still this delivery's. The writer is held for those writes alone, never
//! for the handler's awaits.

#[cfg(feature = "postgres")]
use std::time::Duration;

#[cfg(feature = "sqlite")]
use super::claims::Lease;
use super::{HandlerOutcome, not_run, run_one};
#[cfg(feature = "postgres")]
use crate::handler::PgCall;
#[cfg(feature = "sqlite")]
use crate::handler::SqliteCall;
use crate::handler::{Handler, HandlerError};
#[cfg(feature = "sqlite")]
use crate::idempotency::sqlite_tx::SqliteTx;
#[cfg(feature = "postgres")]
use crate::idempotency::{Claim, IdempotencyStore, StoreError};

/// Runs `call` under a claim taken in its own transaction, and commits it with the done
/// marker. The outcome, and whether the delivery's run stops (another delivery holds the
/// handler); an `Err` when the store could not be reached.
#[cfg(feature = "postgres")]
pub(super) async fn run_postgres(
    store: &dyn IdempotencyStore,
    event_id: &str,
    handler: &'static Handler,
    call: PgCall,
    lease: Duration,
) -> Result<(HandlerOutcome, bool), StoreError> {
    let name = handler.name();
    let Some(transactions) = store.pg_transactions() else {
        tracing::error!(handler = name, "{}", HandlerError::NoTransaction);
        return Ok((
            not_run(handler, Err(HandlerError::NoTransaction), false),
            false,
        ));
    };
    let mut transaction = transactions.begin().await?;
    let claim = transactions
        .claim_in(&mut transaction, event_id, name, lease)
        .await;
    let token = match claim {
        Ok(Claim::Claimed(token)) => token,
        stopped => {
            if let Err(error) = transaction.rollback().await {
                tracing::warn!(handler = name, %error, "the rollback failed; the connection is dropped instead");
            }
            return match stopped? {
                Claim::AlreadyDone => {
                    tracing::info!(handler = name, "already handled: skipped");
                    Ok((not_run(handler, Ok(()), true), false))
                }
                _ => {
                    tracing::info!(handler = name, "being handled by another delivery");
                    Ok((not_run(handler, Err(HandlerError::InProgress), false), true))
                }
            };
        }
    };
    let mut outcome = run_one(handler, Ok(call(&mut transaction))).await;
    let why = if outcome.result.is_err() {
        None
    } else {
        match transactions
            .complete_in(&mut transaction, event_id, name, token)
            .await
        {
            Ok(true) => match transaction.commit().await {
                // The claim, the writes and the marker are committed together.
                Ok(()) => return Ok((outcome, false)),
                // It may have gone through after all: a redelivery then finds the marker.
                Err(error) => {
                    outcome.result = Err(HandlerError::RolledBack(format!(
                        "the commit failed: {error}"
                    )));
                    tracing::error!(handler = name, %error, "the handler succeeded, but its transaction did not commit: it runs again on the next delivery");
                    return Ok((outcome, false));
                }
            },
            Ok(false) => Some("its claim was not found in its own transaction".to_owned()),
            Err(error) => Some(format!("its done marker could not be written: {error}")),
        }
    };
    if let Err(error) = transaction.rollback().await {
        // The connection is closed on such an error, which rolls it back all the same.
        tracing::warn!(handler = name, %error, "the rollback failed; the connection is dropped instead");
    }
    if let Some(why) = why {
        tracing::error!(
            handler = name,
            %why,
            "the handler succeeded, but its transaction was rolled back: it runs again on the next delivery"
        );
        outcome.result = Err(HandlerError::RolledBack(why));
    }
    Ok((outcome, false))
}

/// Runs `call` under `lease`, then applies the writes it queued with the done marker, in one
/// transaction of the store's file.
#[cfg(feature = "sqlite")]
pub(super) async fn run_sqlite(
    handler: &'static Handler,
    call: SqliteCall,
    lease: Lease<'_>,
) -> HandlerOutcome {
    let (store, event_id, name, token) = lease.parts();
    let Some(transactions) = store.sqlite_transactions() else {
        lease.record(false).await;
        tracing::error!(handler = name, "{}", HandlerError::NoTransaction);
        return not_run(handler, Err(HandlerError::NoTransaction), false);
    };
    let mut writes = SqliteTx::default();
    let mut outcome = {
        let run = std::pin::pin!(run_one(handler, Ok(call(&mut writes))));
        lease.hold_while(run).await
    };
    if outcome.result.is_ok() {
        let why = match transactions
            .complete_with(event_id, name, token, writes)
            .await
        {
            // The writes and the marker are committed together.
            Ok(true) => return outcome,
            Ok(false) => "its claim lapsed before its writes were applied, and another delivery may hold it now: nothing was written; raise `WebhookConfig::lease` if the handler runs that long".to_owned(),
            Err(error) => format!("its writes or its done marker could not be written: {error}"),
        };
        tracing::error!(
            handler = name,
            %why,
            "the handler succeeded, but its writes were rolled back: it runs again on the next delivery"
        );
        outcome.result = Err(HandlerError::RolledBack(why));
    }
    lease.record(false).await;
    outcome
}
