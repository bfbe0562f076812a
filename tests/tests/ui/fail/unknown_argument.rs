use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded", nmae = "ledger.book_charge")]
async fn on_charge(charge: Charge) {
    let _ = charge;
}

#[nextgen_event("charge.succeeded", retries = 3)]
async fn book_charge(charge: Charge) {
    let _ = charge;
}

fn main() {}
