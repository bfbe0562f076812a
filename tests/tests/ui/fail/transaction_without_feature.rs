// Without the cargo feature `postgres`, a handler that takes a transaction is refused at the
// argument, naming the feature.
use nextgen_events::prelude::*;

struct PgConnection;

#[nextgen_event("charge.succeeded")]
async fn book(charge: Charge, tx: &mut PgConnection) -> Result<(), String> {
    let _ = (charge, tx);
    Ok(())
}

fn main() {}
