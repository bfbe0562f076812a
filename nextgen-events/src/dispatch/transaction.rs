//! Handlers that take the app's transaction: their writes and their done marker commit
//! together, or neither does.
//!
//! On PostgreSQL, the store begins a transaction on its database with the handler's claim
//! taken in it (one round trip, see `postgres/store/transaction.rs`) and runs the handler in
//! it; the claim's row stays locked until the transaction ends, so no other delivery can take
//! it over meanwhile (one that tries waits up to the lease for the end, then finds the marker,
//! or the claim free after a rollback). The handler runs with the transaction, then the done marker
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
use crate::idempotency::{Claim, ClaimedRun, ClaimedWork, IdempotencyStore, StoreError};

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
    // The store runs the handler inside its transaction; the outcome comes back this way.
    let (outcome_sender, outcome) = std::sync::mpsc::sync_channel(1);
    let work: ClaimedWork = Box::new(move |transaction| {
        Box::pin(async move {
            let outcome = run_one(handler, Ok(call(transaction))).await;
            let commit = outcome.result.is_ok();
            let _ = outcome_sender.send(outcome);
            commit
        })
    });
    let run = transactions
        .run_claimed(event_id, name, lease, work)
        .await?;
    let ran = outcome.try_recv().ok();
    Ok(match (run, ran) {
        (ClaimedRun::NotClaimed(Claim::AlreadyDone), _) => {
            tracing::info!(handler = name, "already handled: skipped");
            (not_run(handler, Ok(()), true), false)
        }
        (ClaimedRun::NotClaimed(_), _) => {
            tracing::info!(handler = name, "being handled by another delivery");
            (not_run(handler, Err(HandlerError::InProgress), false), true)
        }
        // Committed together; or the handler's own `Err` (or panic), all of it rolled back.
        (ClaimedRun::Committed | ClaimedRun::RolledBack, Some(outcome)) => (outcome, false),
        (ClaimedRun::NotCommitted(why), Some(mut outcome)) => {
            tracing::error!(
                handler = name,
                %why,
                "the handler succeeded, but its transaction did not commit: it runs again on the next delivery"
            );
            outcome.result = Err(HandlerError::RolledBack(why));
            (outcome, false)
        }
        // A store that says it ran the work without running it: nothing is counted done.
        (run, None) => {
            let why = format!("the store answered {run:?} without running the handler");
            tracing::error!(handler = name, %why, "the handler did not run");
            (
                not_run(handler, Err(HandlerError::RolledBack(why)), false),
                false,
            )
        }
    })
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
