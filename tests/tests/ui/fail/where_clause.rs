use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge)
where
    Charge: Clone,
{
    let _ = charge;
}

fn main() {}
