//! The example's webhook handlers: one `async fn` per event type, registered by
//! `#[nextgen_event]`. Nothing calls them by name; dispatch finds them through the registry.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use nextgen_events::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// App state the handlers share: totals of the charges that succeeded, per currency.
///
/// Registered on the actix `App` as `web::Data<Ledger>`, and reached by a handler that takes a
/// `web::Data<Ledger>` argument.
#[derive(Debug, Default)]
pub struct Ledger {
    totals: Mutex<Totals>,
}

#[derive(Debug, Default)]
struct Totals {
    charges: u64,
    collected: BTreeMap<String, i64>,
}

impl Ledger {
    /// Records a charge that succeeded; returns how many charges were recorded so far and the
    /// total collected in its currency.
    pub fn record(&self, charge: &Charge) -> (u64, i64) {
        // A panic elsewhere while the lock was held leaves plain counters intact: keep them.
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        totals.charges += 1;
        let collected = totals.collected.entry(charge.currency.clone()).or_default();
        *collected += charge.amount;
        let collected = *collected;
        (totals.charges, collected)
    }

    /// The totals as JSON, for `GET /ledger`.
    pub fn snapshot(&self) -> Value {
        let totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        json!({ "charges": totals.charges, "collected": totals.collected })
    }
}

/// A charge succeeded: count it in the ledger.
#[nextgen_event("charge.succeeded")]
pub async fn charge_succeeded(charge: Charge, ledger: web::Data<Ledger>) {
    let (charges, collected) = ledger.record(&charge);
    tracing::info!(
        "charge {} succeeded: {} {}",
        charge.id,
        charge.amount,
        charge.currency
    );
    tracing::info!(
        "ledger: {charges} charge(s), {collected} {} collected",
        charge.currency
    );
}

/// A charge was refunded, fully or partly.
#[nextgen_event("charge.refunded")]
pub async fn charge_refunded(event: Event<Charge>) {
    let charge = &event.data.object;
    let scope = if charge.refunded == Some(true) {
        "fully"
    } else {
        "partly"
    };
    tracing::info!(
        "charge {} {scope} refunded: {} of {} {}",
        charge.id,
        charge.amount_refunded,
        charge.amount,
        charge.currency
    );
}

/// A customer was created.
#[nextgen_event("customer.created")]
pub async fn customer_created(customer: Customer) {
    tracing::info!(
        "customer {} created: {}",
        customer.id,
        customer.name.as_deref().unwrap_or("(no name)")
    );
}

/// A refund was created; an unknown reason is still logged (the payload keeps it verbatim).
#[nextgen_event("refund.created")]
pub async fn refund_created(event: Event<Refund>) {
    let refund = &event.data.object;
    let reason = refund
        .reason
        .as_ref()
        .map_or("no reason given", |r| r.as_str());
    tracing::info!(
        "refund {} created for charge {}: {} {} ({reason}, {})",
        refund.id,
        refund.charge,
        refund.amount,
        refund.currency,
        refund.status
    );
}

/// Every event, known to the catalog or not: an audit trail of ids and types.
///
/// It takes the object as its JSON text (`Box<RawValue>`), as it came: an audit line needs no
/// `Value` tree, whose building would cost more than the typed handlers' whole parse.
///
/// With `NEXTGEN_RUN_LOG` set (the chaos script sets it) it is also the effect that must
/// happen once: each run appends a line to that file and syncs it before it succeeds.
#[nextgen_event("*")]
pub async fn audit(event: Event<Box<RawValue>>) -> Result<(), std::io::Error> {
    let mode = if event.livemode { "live" } else { "test" };
    tracing::info!("audit: {} {} ({mode} mode)", event.id, event.event_type);
    match RunLog::from_env() {
        Some(log) => log.record(&event.id).await,
        None => Ok(()),
    }
}

/// The file each run of [`audit`] is appended to, durably, so that duplicate runs show.
struct RunLog {
    file: Mutex<std::fs::File>,
    /// Who ran it: `NEXTGEN_RUN_TAG`, e.g. which start of which replica.
    tag: String,
    /// How long a run takes before its effect: `NEXTGEN_HANDLER_DELAY_MS`.
    delay: std::time::Duration,
}

impl RunLog {
    fn from_env() -> Option<&'static RunLog> {
        static LOG: std::sync::LazyLock<Option<RunLog>> = std::sync::LazyLock::new(|| {
            let path = std::env::var("NEXTGEN_RUN_LOG").ok()?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .inspect_err(|error| tracing::error!(%error, path, "cannot open the run log"))
                .ok()?;
            let delay = std::env::var("NEXTGEN_HANDLER_DELAY_MS")
                .ok()
                .and_then(|ms| ms.trim().parse().ok())
                .unwrap_or(0);
            Some(RunLog {
                file: Mutex::new(file),
                tag: std::env::var("NEXTGEN_RUN_TAG").unwrap_or_else(|_| "-".to_owned()),
                delay: std::time::Duration::from_millis(delay),
            })
        });
        LOG.as_ref()
    }

    async fn record(&self, event_id: &str) -> Result<(), std::io::Error> {
        use std::io::Write;

        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // One write per line: appends from several processes do not interleave.
        file.write_all(format!("{} {event_id}\n", self.tag).as_bytes())?;
        file.sync_data()
    }
}
