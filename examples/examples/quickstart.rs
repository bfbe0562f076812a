//! A payments service that receives NextGen webhooks: two typed handlers and one line of setup.

use std::sync::atomic::{AtomicI64, Ordering};

use std::time::Duration;

use actix_web::{App, HttpServer};
use nextgen_events::actix::webhooks;
use nextgen_events::prelude::*;
use nextgen_events::{Endpoint, WebhookConfig};

#[derive(Debug)]
struct LedgerDown;
impl std::fmt::Display for LedgerDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the ledger is down")
    }
}

/// The app's own state, shared with handlers through `web::Data`.
#[derive(Default)]
struct Ledger {
    refunded: AtomicI64,
}

impl Ledger {
    fn record_refund(&self, event_id: &str, amount: i64) {
        let total = self.refunded.fetch_add(amount, Ordering::Relaxed) + amount;
        tracing::info!(event = event_id, amount, total, "refund booked");
    }
}

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge) -> Result<(), LedgerDown> {
    tracing::info!(charge = %charge.id, amount = charge.amount, "paid");
    Ok(())
}

#[nextgen_event("refund.created")]
async fn on_refund(event: Event<Refund>, ledger: web::Data<Ledger>) {
    ledger.record_refund(&event.id, event.data.object.amount);
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // NEXTGEN_WEBHOOK_SECRET=whsec_...  (comma-separated during a secret rotation)
    let config = WebhookConfig::from_env().map_err(std::io::Error::other)?;
    // Checked once; every actix worker thread mounts a clone of it.
    let endpoint = Endpoint::new(config).map_err(std::io::Error::other)?;
    let ledger = web::Data::new(Ledger::default());
    let mounted = endpoint.clone();
    HttpServer::new(move || {
        App::new()
            .app_data(ledger.clone())
            .configure(webhooks("/webhook", mounted.clone())) // the one line
    })
    .bind(("127.0.0.1", 8080))?
    .run()
    .await?; // until Ctrl-C or SIGTERM, answering what is in flight
    // Handlers still running finish and record their outcome before the process exits.
    endpoint.shutdown(Duration::from_secs(30)).await;
    Ok(())
}
