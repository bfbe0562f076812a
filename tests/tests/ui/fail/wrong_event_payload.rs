use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge(event: Event<Refund>) {
    let _ = event;
}

fn main() {}
