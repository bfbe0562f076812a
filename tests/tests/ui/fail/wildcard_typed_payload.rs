use nextgen_events::prelude::*;

// "*" sees every event, known or not: its payload can only be JSON.
#[nextgen_event("*")]
async fn audit(charge: Charge) {
    let _ = charge;
}

fn main() {}
