//! Handlers that take the app's PostgreSQL transaction: their writes and their done marker
//! commit together, or neither does.
//!
//! Under the handler's claim, dispatch begins a transaction on the store's database, runs the
//! handler with it (renewing the claim meanwhile), writes the done marker in it, fenced by the
//! claim's owner token, and commits. A handler's `Err` or panic, a claim that lapsed or was
//! taken over, a renewal that did not go through, or a failed commit rolls everything back, and
//! the claim is released: the next delivery runs the handler from a clean slate. Two
//! deliveries can both run it, but only the one whose marker the store still takes commits.

use std::sync::atomic::{AtomicBool, Ordering};

use super::claims::Lease;
use super::{HandlerOutcome, not_run, run_one};
use crate::handler::{Handler, HandlerError, PgCall};

/// What becomes of the transaction after the handler ran.
enum Verdict {
    Commit,
    RollBack(Option<String>),
}

/// Runs `call` in a transaction under `lease`, and commits it with the done marker.
pub(super) async fn run(
    handler: &'static Handler,
    call: PgCall,
    lease: Lease<'_>,
) -> HandlerOutcome {
    let (store, event_id, name, token) = lease.parts();
    let Some(transactions) = store.pg_transactions() else {
        lease.record(false).await;
        tracing::error!(handler = name, "{}", HandlerError::NoTransaction);
        return not_run(handler, Err(HandlerError::NoTransaction), false);
    };
    let mut transaction = match transactions.begin().await {
        Ok(transaction) => transaction,
        Err(error) => {
            lease.record(false).await;
            let error = HandlerError::RolledBack(format!("it could not begin: {error}"));
            tracing::error!(handler = name, %error, "the handler did not run");
            return not_run(handler, Err(error), false);
        }
    };
    let renewal_failed = AtomicBool::new(false);
    let mut outcome = {
        let run = std::pin::pin!(run_one(handler, Ok(call(&mut transaction))));
        lease.hold_while_noting(run, &renewal_failed).await
    };
    let verdict = if outcome.result.is_err() {
        Verdict::RollBack(None)
    } else if renewal_failed.load(Ordering::Relaxed) {
        Verdict::RollBack(Some(
            "a renewal of its claim did not go through while it ran, so another delivery may hold the claim now".to_owned(),
        ))
    } else {
        match transactions
            .complete_in(&mut transaction, event_id, name, token)
            .await
        {
            Ok(true) => Verdict::Commit,
            Ok(false) => Verdict::RollBack(Some(
                "its claim lapsed before the commit, and another delivery may have taken it over: that one commits, this one does not; raise `WebhookConfig::lease` if the handler runs that long".to_owned(),
            )),
            Err(error) => Verdict::RollBack(Some(format!(
                "its done marker could not be written: {error}"
            ))),
        }
    };
    let why = match verdict {
        Verdict::Commit => match transaction.commit().await {
            // The marker is committed with the writes: nothing is left to record.
            Ok(()) => return outcome,
            Err(error) => Some(format!("the commit failed: {error}")),
        },
        Verdict::RollBack(why) => {
            if let Err(error) = transaction.rollback().await {
                // The connection is closed on such an error, which rolls it back all the same.
                tracing::warn!(handler = name, %error, "the rollback failed; the connection is dropped instead");
            }
            why
        }
    };
    if let Some(why) = why {
        tracing::error!(
            handler = name,
            %why,
            "the handler succeeded, but its transaction was rolled back: it runs again on the next delivery"
        );
        outcome.result = Err(HandlerError::RolledBack(why));
    }
    // A commit that failed after all may have gone through: the release then finds the
    // marker done and leaves it.
    lease.record(false).await;
    outcome
}
