use nextgen_events::prelude::*;

#[nextgen_event("customer.updated", lastest_only)]
async fn on_customer(customer: Customer) {
    let _ = customer;
}

fn main() {}
