// A type of one's own named `SqliteTx` is not the library's: the error says which to take.
use nextgen_events::prelude::*;

struct SqliteTx;

#[nextgen_event("refund.created")]
async fn book(refund: Refund, tx: &mut SqliteTx) {
    let _ = (refund, tx);
}

fn main() {}
