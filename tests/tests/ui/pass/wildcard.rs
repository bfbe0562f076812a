use nextgen_events::prelude::*;

#[nextgen_event("*")]
async fn audit(event: Event<serde_json::Value>) {
    let _ = (event.id, event.event_type);
}

#[nextgen_event("*")]
async fn audit_payload(object: serde_json::Value) {
    let _ = object;
}

// The object's JSON text, without a `Value` tree: the envelope, or the object alone.
#[nextgen_event("*")]
async fn archive(event: Event<Box<serde_json::value::RawValue>>) {
    let _ = (event.id, event.data.object.get().len());
}

#[nextgen_event("*")]
async fn archive_object(object: Box<serde_json::value::RawValue>) {
    let _ = object;
}

fn main() {}
