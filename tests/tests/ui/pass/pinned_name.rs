use nextgen_events::prelude::*;
use nextgen_events::Registry;

// The name is the handler's idempotency key: pinned, it survives moving the function.
#[nextgen_event("charge.succeeded", name = "ledger.book_charge")]
async fn on_charge(charge: Charge) -> Result<(), String> {
    let _ = charge;
    Ok(())
}

// A trailing comma is accepted.
#[nextgen_event("refund.created", name = "ledger.book_refund",)]
async fn on_refund(refund: Refund) {
    let _ = refund;
}

// Without `name`, the handler is named by its path.
#[nextgen_event("charge.failed")]
async fn on_failure(charge: Charge) {
    let _ = charge;
}

fn main() {
    let names: Vec<&str> = Registry::global().iter().map(|handler| handler.name()).collect();
    assert!(names.contains(&"ledger.book_charge"), "{names:?}");
    assert!(names.contains(&"ledger.book_refund"), "{names:?}");
    assert!(
        names.iter().any(|name| name.ends_with("::on_failure")),
        "{names:?}"
    );
    let charge = Registry::global().handlers_for("charge.succeeded");
    assert_eq!(charge.len(), 1);
    assert_eq!(charge[0].name(), "ledger.book_charge");
}
