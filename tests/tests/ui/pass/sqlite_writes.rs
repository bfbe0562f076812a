// A handler that queues its SQLite writes, applied with its done marker; another beside it
// takes app data too.
use nextgen_events::prelude::*;
use nextgen_events::sqlite::SqliteTx;

struct Prices;

#[nextgen_event("refund.created")]
async fn book(refund: Refund, tx: &mut SqliteTx) -> Result<(), String> {
    tx.write(move |db| {
        db.execute("INSERT INTO ledger (refund) VALUES (?1)", [&refund.id])?;
        Ok(())
    });
    Ok(())
}

#[nextgen_event("charge.refunded")]
async fn reprice(charge: Charge, tx: &mut SqliteTx, prices: web::Data<Prices>) {
    let _ = (charge, prices);
    tx.write(|db| db.execute_batch("UPDATE totals SET n = n + 1"));
}

fn main() {}
