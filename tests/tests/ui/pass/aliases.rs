use nextgen_events::nextgen_event;
use nextgen_events::payloads::Charge as Payment;

type ChargeEvent = nextgen_events::Event<nextgen_events::payloads::Charge>;

#[nextgen_event("charge.succeeded")]
async fn on_payment(payment: Payment) {
    let _ = payment.amount;
}

#[nextgen_event("charge.captured")]
async fn on_capture(event: ChargeEvent) {
    let _ = event.data.object.amount;
}

// Names the expansion uses for its own items: the user's types must still win.
type ChargeRefundedPayload = Payment;
type WebhookHandlerReturn = Result<(), String>;

#[nextgen_event("charge.refunded")]
async fn on_refunded(charge: ChargeRefundedPayload) -> WebhookHandlerReturn {
    let _ = charge;
    Ok(())
}

mod nested {
    use nextgen_events::prelude::*;

    #[nextgen_event("refund.failed")]
    pub(crate) async fn on_refund_failed(
        refund: Refund,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = refund;
        Ok(())
    }
}

fn main() {
    // A handler declared inside a function body registers too.
    #[nextgen_event("refund.updated")]
    async fn local(event: nextgen_events::Event<nextgen_events::payloads::Refund>) {
        let _ = event;
    }
    let _ = nested::on_refund_failed;

    // Compiling is not registering: each handler above must be in the registry, under its
    // event type, by its own name (trybuild runs this `main`, a panic fails the case).
    let registry = nextgen_events::Registry::global();
    for (event_type, name) in [
        ("refund.updated", "local"),
        ("charge.succeeded", "on_payment"),
        ("charge.captured", "on_capture"),
        ("charge.refunded", "on_refunded"),
        ("refund.failed", "on_refund_failed"),
    ] {
        let handlers = registry.handlers_for(event_type);
        let names: Vec<&str> = handlers.iter().map(|handler| handler.name()).collect();
        assert!(
            handlers
                .iter()
                .any(|handler| handler.event_type() == event_type
                    && handler.name().rsplit("::").next() == Some(name)),
            "no handler `{name}` registered for {event_type:?}; registered: {names:?}"
        );
        assert_eq!(handlers.len(), 1, "{event_type}: {names:?}");
    }
    assert_eq!(
        registry.iter().count(),
        5,
        "registered: {:?}",
        registry
            .iter()
            .map(|handler| handler.name())
            .collect::<Vec<_>>()
    );
}
