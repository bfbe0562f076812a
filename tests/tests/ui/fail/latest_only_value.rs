use nextgen_events::prelude::*;

#[nextgen_event("customer.updated", latest_only = true)]
async fn on_customer(customer: Customer) {
    let _ = customer;
}

fn main() {}
