use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge) {
    let _ = (charge.id, charge.amount);
}

#[nextgen_event("charge.dispute.created")]
async fn on_dispute(dispute: Dispute) {
    let _ = dispute;
}

#[nextgen_event("invoice.paid")]
async fn on_invoice(invoice: nextgen_events::payloads::Invoice) {
    let _ = invoice;
}

fn main() {}
