use nextgen_events::prelude::*;

struct Billing;

impl Billing {
    #[nextgen_event("charge.succeeded")]
    async fn on_charge(&self, charge: Charge) {
        let _ = charge;
    }
}

fn main() {}
