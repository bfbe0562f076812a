use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(refund: Refund) {
    let _ = refund;
}

fn main() {}
