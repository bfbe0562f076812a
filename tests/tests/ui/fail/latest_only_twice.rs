use nextgen_events::prelude::*;

#[nextgen_event("customer.updated", latest_only, name = "crm.sync_customer", latest_only)]
async fn on_customer(customer: Customer) {
    let _ = customer;
}

fn main() {}
