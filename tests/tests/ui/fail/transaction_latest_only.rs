use nextgen_events::prelude::*;

struct PgConnection;

#[nextgen_event("customer.updated", latest_only)]
async fn sync(customer: Customer, tx: &mut PgConnection) {
    let _ = (customer, tx);
}

fn main() {}
