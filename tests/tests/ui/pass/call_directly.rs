use nextgen_events::prelude::*;

#[nextgen_event("customer.deleted")]
async fn forget(customer: Customer) -> Result<(), String> {
    if customer.deleted == Some(true) {
        Ok(())
    } else {
        Err(format!("{} is not deleted", customer.id))
    }
}

fn main() {
    let customer: Customer = serde_json::from_value(serde_json::json!({
        "id": "cus_1", "balance": 0, "created": 1713745200, "deleted": true
    }))
    .expect("a customer");
    let result = actix_rt::System::new().block_on(forget(customer));
    assert_eq!(result, Ok(()));
}
