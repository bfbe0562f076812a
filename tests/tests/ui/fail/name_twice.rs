use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded", name = "ledger.book_charge", name = "ledger.charge")]
async fn on_charge(charge: Charge) {
    let _ = charge;
}

fn main() {}
