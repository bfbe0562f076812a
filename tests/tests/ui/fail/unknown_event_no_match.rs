use nextgen_events::prelude::*;

#[nextgen_event("subscription.renewed")]
async fn on_renewal(event: Event<serde_json::Value>) {
    let _ = event;
}

fn main() {}
