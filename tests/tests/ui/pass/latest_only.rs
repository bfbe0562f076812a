use nextgen_events::prelude::*;
use nextgen_events::Registry;

#[nextgen_event("customer.updated", latest_only)]
async fn on_customer(customer: Customer) {
    let _ = customer;
}

#[nextgen_event("charge.updated", name = "ledger.charge_state", latest_only)]
async fn on_charge(event: Event<Charge>) -> Result<(), String> {
    let _ = event;
    Ok(())
}

#[nextgen_event("refund.updated", latest_only, name = "ledger.refund_state")]
async fn on_refund(refund: Refund) {
    let _ = refund;
}

fn main() {
    let handlers: Vec<_> = Registry::global()
        .iter()
        .filter(|handler| handler.is_latest_only())
        .map(|handler| handler.name())
        .collect();
    assert_eq!(handlers.len(), 3, "{handlers:?}");
    assert!(handlers.contains(&"ledger.charge_state"), "{handlers:?}");
    assert!(handlers.contains(&"ledger.refund_state"), "{handlers:?}");
}
