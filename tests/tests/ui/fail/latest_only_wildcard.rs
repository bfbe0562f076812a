use nextgen_events::prelude::*;

#[nextgen_event("*", latest_only)]
async fn on_any(event: Event<serde_json::Value>) {
    let _ = event;
}

fn main() {}
