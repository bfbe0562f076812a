use nextgen_events::prelude::*;

#[derive(Debug)]
struct NotDisplay;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge) -> Result<(), NotDisplay> {
    let _ = charge;
    Err(NotDisplay)
}

fn main() {}
