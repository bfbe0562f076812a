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
#[nextgen_event("*")]
pub async fn audit(event: Event<Box<RawValue>>) {
    let mode = if event.livemode { "live" } else { "test" };
    tracing::info!("audit: {} {} ({mode} mode)", event.id, event.event_type);
}
