use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded", name)]
async fn on_charge(charge: Charge) {
    let _ = charge;
}

#[nextgen_event("charge.succeeded", name =)]
async fn book_charge(charge: Charge) {
    let _ = charge;
}

#[nextgen_event("charge.succeeded", name: "billing.charge")]
async fn ledger_charge(charge: Charge) {
    let _ = charge;
}

fn main() {}
