use nextgen_events::prelude::*;

#[nextgen_event("charge.succeeded")]
async fn on_charge<T>(charge: Charge, extra: web::Data<T>) {
    let _ = (charge, extra);
}

fn main() {}
