use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Chrage) {
    let _ = charge;
}

fn main() {}
