use nextgen_events::prelude::*;

#[nextgen_event(42)]
async fn on_charge(charge: Charge) {
    let _ = charge;
}

fn main() {}
