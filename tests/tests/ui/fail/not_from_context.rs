use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge, note: String) {
    let _ = (charge, note);
}

fn main() {}
