use nextgen_events::prelude::*;

struct PgConnection;

#[nextgen_event("charge.succeeded")]
async fn book(tx: &mut PgConnection, charge: Charge) {
    let _ = (charge, tx);
}

fn main() {}
