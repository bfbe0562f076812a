use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge) -> u32 {
    let _ = charge;
    0
}

fn main() {}
