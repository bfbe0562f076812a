use nextgen_events::prelude::*;

#[nextgen_event("charge.succeded")]
async fn on_charge(charge: Charge) {
    let _ = charge;
}

fn main() {}
