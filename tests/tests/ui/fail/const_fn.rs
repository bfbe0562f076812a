use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
const fn on_charge(charge: Charge) {
    std::mem::forget(charge);
}

fn main() {}
