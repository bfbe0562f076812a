use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteTx;

#[nextgen_event("refund.created")]
async fn book(refund: Refund, tx: SqliteTx) {
    let _ = (refund, tx);
}

fn main() {}
