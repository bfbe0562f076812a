use nextgen_events::prelude::*;

struct PgConnection;

#[nextgen_event("*")]
async fn audit(event: Event<serde_json::Value>, tx: &mut PgConnection) {
    let _ = (event, tx);
}

fn main() {}
