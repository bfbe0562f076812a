use nextgen_events::prelude::*;

#[nextgen_event("*")]
async fn audit(event: Event<serde_json::Value>) {
    let _ = (event.id, event.event_type);
}

#[nextgen_event("*")]
async fn audit_payload(object: serde_json::Value) {
    let _ = object;
}

fn main() {}
