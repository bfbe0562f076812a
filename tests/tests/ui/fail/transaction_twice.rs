use nextgen_events::prelude::*;

struct PgConnection;

#[nextgen_event("charge.succeeded")]
async fn book(charge: Charge, tx: &mut PgConnection, again: &mut PgConnection) {
    let _ = (charge, tx, again);
}

fn main() {}
