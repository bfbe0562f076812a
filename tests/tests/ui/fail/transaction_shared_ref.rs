use nextgen_events::prelude::*;

struct PgConnection;
struct Transaction<'c>(&'c ());

#[nextgen_event("charge.succeeded")]
async fn book(charge: Charge, tx: &PgConnection) {
    let _ = (charge, tx);
}

#[nextgen_event("charge.refunded")]
async fn refund(charge: Charge, tx: &mut Transaction<'_>) {
    let _ = (charge, tx);
}

fn main() {}
