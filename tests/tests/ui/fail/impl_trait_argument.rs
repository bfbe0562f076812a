use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: impl Into<Charge>) {
    let _ = charge.into();
}

fn main() {}
