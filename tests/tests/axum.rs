//! The axum integration's own parts over real HTTP: handler arguments from the router
//! (`Extension<T>`, `State<T>`), and a route of one's own with the `VerifiedEvent` extractor.
//! The answers both integrations share are in the table of `http.rs`.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use nextgen_events::axum::{VerifiedEvent, received, webhooks};
use nextgen_events::prelude::*;
use nextgen_events::sign;
use nextgen_events::{WebhookConfig, WebhookError};
use serde_json::json;
use support::{SECRET, TestServer, now, post as post_to};

static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record(event_id: &str, what: String) {
    SEEN.lock().unwrap().push((event_id.to_owned(), what));
}

fn seen(event_id: &str) -> Vec<String> {
    let seen = SEEN.lock().unwrap();
    seen.iter()
        .filter(|(id, _)| id == event_id)
        .map(|(_, what)| what.clone())
        .collect()
}

/// A value an `Extension` layer adds.
#[derive(Clone)]
struct Ledger(Arc<AtomicUsize>);

/// The router's state.
#[derive(Clone)]
struct AppState {
    name: &'static str,
}

#[nextgen_event("invoice.paid")]
async fn count_invoices(event: Event<Invoice>, Extension(ledger): Extension<Ledger>) {
    let total = ledger.0.fetch_add(1, Ordering::SeqCst) + 1;
    record(&event.id, format!("ledger total {total}"));
}

#[nextgen_event("customer.created")]
async fn greet(event: Event<Customer>, State(state): State<AppState>) {
    record(
        &event.id,
        format!("{} greets {}", state.name, event.data.object.id),
    );
}

#[derive(Clone)]
struct NeverAdded;

#[nextgen_event("invoice.payment_failed")]
async fn needs_missing(_invoice: Invoice, _missing: Extension<NeverAdded>) {}

fn delivery(id: &str, event_type: &str, object: serde_json::Value) -> (Vec<u8>, String) {
    let body = json!({ "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
                       "type": event_type, "data": { "object": object } })
    .to_string()
    .into_bytes();
    let signature = sign(&body, SECRET, now());
    (body, signature)
}

fn invoice(id: &str) -> serde_json::Value {
    json!({ "id": id, "object": "invoice", "amount_due": 5000, "amount_paid": 5000,
            "amount_remaining": 0, "currency": "usd", "created": 1_713_745_200, "status": "paid" })
}

fn app() -> Router {
    Router::new()
        .merge(webhooks("/webhook", WebhookConfig::new(SECRET)))
        .layer(Extension(Ledger(Arc::new(AtomicUsize::new(0)))))
        .with_state(AppState { name: "shop" })
}

#[actix_rt::test]
async fn handlers_take_extensions_and_the_routers_state() {
    let server = TestServer::start_axum(app());
    let url = server.url("/webhook");
    for id in ["evt_axum_inv_1", "evt_axum_inv_2"] {
        let (body, signature) = delivery(id, "invoice.paid", invoice("in_1"));
        let answer = post_to(&url, body, Some(&signature)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body, json!({ "received": true }));
    }
    assert_eq!(seen("evt_axum_inv_1"), ["ledger total 1"]);
    assert_eq!(seen("evt_axum_inv_2"), ["ledger total 2"]);

    let customer =
        json!({ "id": "cus_9", "object": "customer", "balance": 0, "created": 1_713_745_200 });
    let (body, signature) = delivery("evt_axum_customer", "customer.created", customer);
    let answer = post_to(&url, body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(seen("evt_axum_customer"), ["shop greets cus_9"]);
}

#[actix_rt::test]
async fn a_missing_extension_is_a_500_naming_the_type() {
    let server = TestServer::start_axum(app());
    let (body, signature) = delivery(
        "evt_axum_missing",
        "invoice.payment_failed",
        invoice("in_2"),
    );
    let answer = post_to(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 500, "{:?}", answer.body);
    assert_eq!(answer.code(), "handler_failed");
    assert!(
        answer.message().contains("1 of 1 handlers failed"),
        "{}",
        answer.message()
    );
}

/// A route of one's own with the `VerifiedEvent` extractor, as the `axum` module shows it.
async fn own_route(event: VerifiedEvent) -> Result<axum::response::Response, WebhookError> {
    let taken = event.handle().await?;
    let handlers = taken.report().map_or(0, |report| report.outcomes.len());
    record(&event.event_id, format!("own route: {handlers} handlers"));
    let delivery = event.into_delivery();
    record(
        &delivery.event_id,
        format!("queued {}", delivery.event_type),
    );
    Ok(received())
}

#[actix_rt::test]
async fn the_verified_event_extractor_verifies_dispatches_and_hands_over_the_delivery() {
    let app = Router::new()
        .route("/own", post(own_route))
        .layer(Extension(
            nextgen_events::Endpoint::new(WebhookConfig::new(SECRET)).unwrap(),
        ))
        .layer(Extension(Ledger(Arc::new(AtomicUsize::new(10)))));
    let server = TestServer::start_axum(app);
    let url = server.url("/own");

    let (body, signature) = delivery("evt_axum_own", "invoice.paid", invoice("in_3"));
    let answer = post_to(&url, body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        seen("evt_axum_own"),
        [
            "ledger total 11",
            "own route: 1 handlers",
            "queued invoice.paid"
        ]
    );

    // A delivery that is not genuine never reaches the route.
    let (body, _) = delivery("evt_axum_own_forged", "invoice.paid", invoice("in_4"));
    let forged = sign(&body, "whsec_forged", now());
    let answer = post_to(&url, body, Some(&forged)).await;
    assert_eq!((answer.status, answer.code()), (400, "signature_mismatch"));
    assert!(seen("evt_axum_own_forged").is_empty());

    // Without the config on the router, the extractor says what to add.
    let server = TestServer::start_axum(Router::new().route("/own", post(own_route)));
    let (body, signature) = delivery("evt_axum_unconfigured", "invoice.paid", invoice("in_5"));
    let answer = post_to(&server.url("/own"), body, Some(&signature)).await;
    assert_eq!((answer.status, answer.code()), (500, "not_configured"));
    assert!(
        answer.message().contains("Extension(endpoint)"),
        "{}",
        answer.message()
    );
}
