//! Two handlers with one name share their idempotency records: the app must not start.
//!
//! A test binary of its own, since its registry is broken on purpose.

#![allow(clippy::unwrap_used)]

use actix_web::App;
use nextgen_events::actix::webhooks;
use nextgen_events::prelude::*;
use nextgen_events::{Context, Registry, WebhookConfig, receive, sign};

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

#[actix_rt::test]
async fn dispatch_refuses_to_run_them() {
    let config = WebhookConfig::new("whsec_test").with_clock(|| 1_713_745_200);
    let body = br#"{"id":"evt_1","object":"event","type":"something.new","created":1713745200,"livemode":false,"data":{"object":{}}}"#;
    let header = sign(body, "whsec_test", 1_713_745_200);
    let error = receive(&config, body, Some(&header), &Context::new())
        .await
        .unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (500, "duplicate_handler_name")
    );
}
