use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded", name = "ledger book charge")]
async fn on_charge(charge: Charge) {
    let _ = charge;
}

#[nextgen_event("charge.succeeded", name = "ledger\0book_charge")]
async fn book_charge(charge: Charge) {
    let _ = charge;
}

#[nextgen_event("charge.succeeded", name = "\tledger.book_charge")]
async fn ledger_charge(charge: Charge) {
    let _ = charge;
}

fn main() {}
