//! Two handlers with one name share their idempotency records: the app must not start.
//!
//! A test binary of its own, since its registry is broken on purpose.

#![allow(clippy::unwrap_used)]

use actix_web::App;
use nextgen_events::actix::webhooks;
use nextgen_events::prelude::*;
use nextgen_events::{ConfigError, Endpoint, Registry, WebhookConfig};

#[nextgen_event("charge.succeeded", name = "ledger.book")]
async fn book_charge(_charge: Charge) {}

mod refunds {
    use nextgen_events::prelude::*;

    #[nextgen_event("refund.created", name = "ledger.book")]
    pub(crate) async fn book_refund(_refund: Refund) {}
}

#[test]
fn the_registry_names_both_handlers_and_the_fix() {
    let error = Registry::global().check_names().unwrap_err();
    assert_eq!(error.name, "ledger.book");
    let message = error.to_string();
    for needle in [
        "duplicate_names::book_charge",
        "duplicate_names::refunds::book_refund",
        "name = ",
    ] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
}

#[test]
fn mounting_the_route_stops_the_app_at_start_up() {
    let panic = std::panic::catch_unwind(|| {
        App::new().configure(webhooks("/webhook", WebhookConfig::new("whsec_test")))
    })
    .err()
    .expect("mounting the route must fail");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("two webhook handlers are named `ledger.book`"),
        "{message}"
    );
}

#[test]
fn no_endpoint_is_built_with_them() {
    let refused = Endpoint::new(WebhookConfig::new("whsec_test")).unwrap_err();
    assert!(
        matches!(&refused, ConfigError::DuplicateHandlerName(duplicate) if duplicate.name == "ledger.book"),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("give one of them another name"),
        "{refused}"
    );
    assert_eq!(WebhookConfig::new("whsec_test").check(), Err(refused));
}
