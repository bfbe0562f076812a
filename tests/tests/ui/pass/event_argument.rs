use nextgen_events::prelude::*;

#[nextgen_event("refund.created")]
async fn on_refund(event: Event<Refund>) {
    let _ = (event.id, event.data.object.amount);
}

#[nextgen_event("customer.updated")]
async fn on_customer(event: nextgen_events::Event<nextgen_events::payloads::Customer>) {
    let _ = event.data.previous_attributes;
}

fn main() {}
