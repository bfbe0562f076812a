//! `#[nextgen_event]` handlers at run time: registration, dispatch, arguments, failures.
//!
//! Every handler of this binary sits in one global registry and cargo runs the tests in
//! parallel threads, so each test uses event types no other test dispatches, or looks only at
//! its own handlers' outcomes, and reads what handlers saw under ids it made up itself.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use nextgen_events::prelude::*;
use nextgen_events::testing::{SignedDelivery, event_body, run_handlers_unverified, sample_event};
use nextgen_events::{Context, Endpoint, WebhookConfig, WebhookError};
use nextgen_events::{DispatchReport, EnvelopeError, HandlerOutcome, Registry, SignatureError};
use serde_json::{Value, json};

/// What this binary's handlers saw: `(key, what)`, the key being an event id or an object id.
static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record(key: &str, what: impl Into<String>) {
    SEEN.lock().unwrap().push((key.to_owned(), what.into()));
}

fn seen(key: &str) -> Vec<String> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(seen_key, _)| seen_key == key)
        .map(|(_, what)| what.clone())
        .collect()
}

// ---- handlers ------------------------------------------------------------------------------

#[nextgen_event("charge.succeeded")]
async fn record_amount(charge: Charge) {
    record(
        &charge.id,
        format!("amount {} {}", charge.amount, charge.currency),
    );
}

#[nextgen_event("charge.failed")]
async fn record_envelope(event: Event<Charge>) {
    record(
        &event.id,
        format!(
            "{} {} {}",
            event.event_type, event.data.object.id, event.livemode
        ),
    );
}

// Declared out of name order: they run in name order all the same.
#[nextgen_event("charge.pending")]
async fn pending_c(charge: Charge) {
    record(&charge.id, "pending_c");
}

#[nextgen_event("charge.pending")]
async fn pending_a(event: Event<Charge>) {
    record(&event.data.object.id, "pending_a");
}

#[nextgen_event("charge.pending")]
async fn pending_b(charge: Charge) -> Result<(), String> {
    record(&charge.id, "pending_b");
    Ok(())
}

#[nextgen_event("*")]
async fn audit(event: Event<Value>) {
    record(&event.id, format!("audit {}", event.event_type));
}

#[nextgen_event("*")]
async fn audit_object(object: Value) {
    if let Some(id) = object.get("id").and_then(Value::as_str) {
        record(id, "audit_object");
    }
}

#[nextgen_event("charge.captured")]
async fn refuse_capture(charge: Charge) -> Result<(), String> {
    Err(format!("capture of {} refused by the ledger", charge.id))
}

#[nextgen_event("charge.refunded")]
async fn refunded_a(charge: Charge) {
    record(&charge.id, "refunded_a");
}

#[nextgen_event("charge.refunded")]
async fn refunded_b_panics(charge: Charge) {
    panic!("the ledger exploded on {}", charge.id);
}

#[nextgen_event("charge.refunded")]
async fn refunded_c(charge: Charge) -> Result<(), std::io::Error> {
    record(&charge.id, "refunded_c");
    Ok(())
}

/// App data a handler takes as `web::Data<Crm>`.
struct Crm {
    synced: Mutex<Vec<String>>,
}

#[nextgen_event("customer.updated")]
async fn sync_crm(customer: Customer, crm: web::Data<Crm>) {
    crm.synced.lock().unwrap().push(customer.id);
}

#[nextgen_event("charge.updated")]
async fn on_charge_updated(event: Event<Charge>) -> Result<(), String> {
    record(&event.id, format!("updated {}", event.data.object.amount));
    Ok(())
}

// ---- helpers -------------------------------------------------------------------------------

fn charge_json(id: &str, amount: i64) -> Value {
    json!({
        "id": id, "object": "charge", "amount": amount, "amount_refunded": 0,
        "currency": "usd", "paid": true, "status": "succeeded", "created": 1_713_745_200
    })
}

fn charge(id: &str, amount: i64) -> Charge {
    serde_json::from_value(charge_json(id, amount)).unwrap()
}

fn customer_json(id: &str) -> Value {
    json!({"id": id, "object": "customer", "balance": 0, "created": 1_713_745_200,
           "email": "ada@example.com"})
}

fn refund_json(id: &str, amount: i64) -> Value {
    json!({"id": id, "object": "refund", "amount": amount, "charge": "ch_refunded",
           "created": 1_713_745_200, "currency": "eur", "status": "succeeded"})
}

/// An (unsigned) body for `event_type` around `object`, and the event's id.
fn body(event_type: &str, object: Value) -> (String, Vec<u8>) {
    let event = sample_event(event_type, object);
    (event.id.clone(), event_body(&event).unwrap())
}

async fn run(event_type: &str, object: Value) -> (String, DispatchReport) {
    let (id, body) = body(event_type, object);
    let report = run_handlers_unverified(&body, &Context::new())
        .await
        .unwrap();
    (id, report)
}

fn name(handler: &str) -> String {
    format!("{}::{handler}", module_path!())
}

/// The outcomes of this binary's typed handlers (not the wildcard ones).
fn typed_outcomes(report: &DispatchReport) -> Vec<&HandlerOutcome> {
    let wildcard: Vec<_> = Registry::global()
        .wildcard_handlers()
        .iter()
        .map(|handler| handler.name())
        .collect();
    report
        .outcomes
        .iter()
        .filter(|outcome| !wildcard.contains(&outcome.handler))
        .collect()
}

fn handler_names(outcomes: &[&HandlerOutcome]) -> Vec<&'static str> {
    outcomes.iter().map(|outcome| outcome.handler).collect()
}

// ---- tests ---------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_payload_handler_gets_the_payload() {
    let (id, report) = run("charge.succeeded", charge_json("ch_amount_1", 2000)).await;

    assert!(report.is_success(), "{report:#?}");
    assert_eq!(report.event_id, id);
    assert_eq!(report.event_type, "charge.succeeded");
    assert_eq!(
        handler_names(&typed_outcomes(&report)),
        [name("record_amount")]
    );
    assert_eq!(seen("ch_amount_1"), ["amount 2000 usd", "audit_object"]);
}

#[actix_rt::test]
async fn an_event_handler_gets_the_envelope() {
    let (id, report) = run("charge.failed", charge_json("ch_envelope_1", 150)).await;

    assert!(report.is_success(), "{report:#?}");
    assert_eq!(
        handler_names(&typed_outcomes(&report)),
        [name("record_envelope")]
    );
    assert_eq!(
        seen(&id),
        ["charge.failed ch_envelope_1 false", "audit charge.failed"]
    );
}

#[actix_rt::test]
async fn several_handlers_of_one_event_all_run_in_name_order() {
    let registered: Vec<_> = Registry::global()
        .handlers_for("charge.pending")
        .iter()
        .map(|handler| handler.name())
        .collect();
    assert_eq!(
        registered,
        [name("pending_a"), name("pending_b"), name("pending_c")]
    );

    let (_, report) = run("charge.pending", charge_json("ch_pending_1", 10)).await;

    assert!(report.is_success(), "{report:#?}");
    // Typed handlers first, then the wildcard ones, each group in name order.
    let all: Vec<_> = report
        .outcomes
        .iter()
        .map(|outcome| outcome.handler)
        .collect();
    assert_eq!(
        all,
        [
            name("pending_a"),
            name("pending_b"),
            name("pending_c"),
            name("audit"),
            name("audit_object"),
        ]
    );
    assert_eq!(
        seen("ch_pending_1"),
        ["pending_a", "pending_b", "pending_c", "audit_object"]
    );
}

#[actix_rt::test]
async fn the_wildcard_sees_every_event_known_or_not() {
    let wildcard: Vec<_> = Registry::global()
        .wildcard_handlers()
        .iter()
        .map(|handler| handler.name())
        .collect();
    assert_eq!(wildcard, [name("audit"), name("audit_object")]);

    // Known to the catalog, but no typed handler in this binary.
    let (known, report) = run("invoice.paid", json!({"id": "in_wild_1", "whatever": 1})).await;
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(seen(&known), ["audit invoice.paid"]);
    assert_eq!(seen("in_wild_1"), ["audit_object"]);

    // Not in the catalog at all.
    let (unknown, report) = run("payout.teleported", json!({"id": "po_wild_1"})).await;
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(seen(&unknown), ["audit payout.teleported"]);
    assert_eq!(seen("po_wild_1"), ["audit_object"]);
}

#[actix_rt::test]
async fn an_unknown_event_type_is_acknowledged_with_only_wildcard_outcomes() {
    assert!(
        Registry::global()
            .handlers_for("subscription.renewed")
            .is_empty()
    );

    let (id, report) = run(
        "subscription.renewed",
        json!({"id": "sub_1", "plan": "gold"}),
    )
    .await;

    assert_eq!(report.event_id, id);
    assert_eq!(report.event_type, "subscription.renewed");
    assert!(typed_outcomes(&report).is_empty(), "{report:#?}");
    let outcomes: Vec<_> = report
        .outcomes
        .iter()
        .map(|outcome| (outcome.handler.to_owned(), outcome.result.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [(name("audit"), Ok(())), (name("audit_object"), Ok(()))]
    );
    assert!(report.is_success());
    assert!(report.into_result().is_ok());
}

#[actix_rt::test]
async fn handlers_from_a_library_crate_run() {
    let registered: Vec<_> = Registry::global()
        .iter()
        .map(|handler| handler.name())
        .collect();
    assert!(
        registered.contains(&"nextgen_tests::welcome_customer"),
        "{registered:?}"
    );
    assert!(
        registered.contains(&"nextgen_tests::book_refund"),
        "{registered:?}"
    );

    let (_, report) = run("customer.created", customer_json("cus_lib_1")).await;
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(
        handler_names(&typed_outcomes(&report)),
        ["nextgen_tests::welcome_customer"]
    );
    let calls = nextgen_tests::calls_for("cus_lib_1");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].handler, "welcome_customer");
    assert_eq!(calls[0].detail, "welcome ada@example.com");

    let (id, report) = run("refund.created", refund_json("re_lib_1", 500)).await;
    assert!(report.is_success(), "{report:#?}");
    let calls = nextgen_tests::calls_for(&id);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].detail, "refund re_lib_1 of 500 eur");

    // A library handler's error is reported under its own full name.
    let (_, report) = run("refund.created", refund_json("re_lib_2", 0)).await;
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report:#?}");
    assert_eq!(failures[0].handler, "nextgen_tests::book_refund");
    assert_eq!(
        failures[0].result,
        Err(HandlerError::Failed(
            "refund re_lib_2 has a non-positive amount 0".to_owned()
        ))
    );
}

#[actix_rt::test]
async fn a_payload_that_does_not_fit_is_an_error_and_no_handler_runs() {
    let mut object = charge_json("ch_mismatch_1", 0);
    object["amount"] = json!("20");
    let (id, body) = body("charge.succeeded", object);

    let error = run_handlers_unverified(&body, &Context::new())
        .await
        .unwrap_err();

    match &error {
        WebhookError::Envelope(EnvelopeError::PayloadMismatch {
            event_type,
            payload,
            path,
            message,
        }) => {
            assert_eq!(event_type, "charge.succeeded");
            assert_eq!(*payload, "Charge");
            assert_eq!(path, "data.object.amount");
            assert!(
                message.contains("expected i64, found a string"),
                "{message}"
            );
        }
        other => panic!("expected PayloadMismatch, got {other:?}"),
    }
    assert_eq!(error.code(), "payload_mismatch");
    assert!(error.to_string().contains("data.object.amount"), "{error}");
    // Neither the typed handler nor the wildcard ones ran.
    assert!(seen("ch_mismatch_1").is_empty());
    assert!(seen(&id).is_empty());
}

#[actix_rt::test]
async fn a_handler_error_is_reported_with_the_handler_name_and_the_error_text() {
    let (_, report) = run("charge.captured", charge_json("ch_refused_1", 700)).await;

    assert!(!report.is_success());
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report:#?}");
    assert_eq!(failures[0].handler, "handlers::refuse_capture");
    assert_eq!(failures[0].handler, name("refuse_capture"));
    let error = failures[0].result.clone().unwrap_err();
    assert_eq!(
        error,
        HandlerError::Failed("capture of ch_refused_1 refused by the ledger".to_owned())
    );
    assert!(
        error
            .to_string()
            .contains("capture of ch_refused_1 refused by the ledger"),
        "{error}"
    );
    // The wildcard handlers still ran.
    assert_eq!(report.outcomes.len(), 3, "{report:#?}");
}

#[actix_rt::test]
async fn a_panicking_handler_is_reported_and_the_others_still_run() {
    let (_, report) = run("charge.refunded", charge_json("ch_panic_1", 900)).await;

    let outcomes: Vec<_> = report
        .outcomes
        .iter()
        .map(|outcome| (outcome.handler.to_owned(), outcome.result.clone()))
        .collect();
    assert_eq!(
        outcomes[..3],
        [
            (name("refunded_a"), Ok(())),
            (
                name("refunded_b_panics"),
                Err(HandlerError::Panicked(
                    "the ledger exploded on ch_panic_1".to_owned()
                ))
            ),
            (name("refunded_c"), Ok(())),
        ]
    );
    assert_eq!(
        seen("ch_panic_1"),
        ["refunded_a", "refunded_c", "audit_object"]
    );
    assert_eq!(report.failures().count(), 1);
}

#[actix_rt::test]
async fn app_data_reaches_a_handler_through_the_context() {
    let crm = web::Data::new(Crm {
        synced: Mutex::new(Vec::new()),
    });
    let (id, body) = body("customer.updated", customer_json("cus_crm_1"));

    let context = Context::new().with_data(crm.clone());
    let report = run_handlers_unverified(&body, &context).await.unwrap();

    assert!(report.is_success(), "{report:#?}");
    assert_eq!(*crm.synced.lock().unwrap(), ["cus_crm_1"]);
    assert_eq!(seen(&id), ["audit customer.updated"]);
}

#[actix_rt::test]
async fn a_handler_without_its_app_data_fails_naming_the_type() {
    let (_, body) = body("customer.updated", customer_json("cus_crm_2"));

    let report = run_handlers_unverified(&body, &Context::new())
        .await
        .unwrap();

    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report:#?}");
    assert_eq!(failures[0].handler, name("sync_crm"));
    let Err(HandlerError::MissingAppData { type_name }) = failures[0].result else {
        panic!("expected MissingAppData, got {:?}", failures[0].result);
    };
    assert!(type_name.contains("Data<handlers::Crm>"), "{type_name}");
    let message = failures[0].result.clone().unwrap_err().to_string();
    assert!(message.contains("handlers::Crm"), "{message}");
    // The other handlers of the event still ran.
    assert_eq!(seen("cus_crm_2"), ["audit_object"]);
}

#[actix_rt::test]
async fn an_annotated_function_can_be_called_directly() {
    record_amount(charge("ch_direct_1", 4200)).await;
    assert_eq!(seen("ch_direct_1"), ["amount 4200 usd"]);

    let error = refuse_capture(charge("ch_direct_2", 1)).await.unwrap_err();
    assert_eq!(error, "capture of ch_direct_2 refused by the ledger");

    let crm = web::Data::new(Crm {
        synced: Mutex::new(Vec::new()),
    });
    let customer = serde_json::from_value(customer_json("cus_direct_1")).unwrap();
    sync_crm(customer, crm.clone()).await;
    assert_eq!(*crm.synced.lock().unwrap(), ["cus_direct_1"]);

    // And from the library crate.
    let customer = serde_json::from_value(customer_json("cus_direct_2")).unwrap();
    nextgen_tests::welcome_customer(customer).await;
    assert_eq!(nextgen_tests::calls_for("cus_direct_2").len(), 1);
}

#[actix_rt::test]
async fn a_signed_delivery_is_verified_and_dispatched() {
    const SECRET: &str = "whsec_handlers_test";
    let config = WebhookConfig::new(SECRET);

    let event = sample_event("charge.updated", charge("ch_signed_1", 321));
    let delivery = SignedDelivery::now(&event, SECRET).unwrap();
    let report = Endpoint::new(config.clone())
        .unwrap()
        .receive(&delivery.body, Some(&delivery.signature), &Context::new())
        .await
        .unwrap()
        .into_report()
        .unwrap();
    assert_eq!(report.event_id, event.id);
    assert_eq!(
        handler_names(&typed_outcomes(&report)),
        [name("on_charge_updated")]
    );
    assert_eq!(seen(&event.id), ["updated 321", "audit charge.updated"]);

    // Signed with another secret: rejected before any handler runs.
    let event = sample_event("charge.updated", charge("ch_signed_2", 1));
    let forged = SignedDelivery::now(&event, "whsec_someone_else").unwrap();
    let error = Endpoint::new(config.clone())
        .unwrap()
        .receive(&forged.body, Some(&forged.signature), &Context::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WebhookError::Signature(SignatureError::NoMatch { .. })
        ),
        "{error:?}"
    );
    assert_eq!(error.status(), 400);
    assert!(seen(&event.id).is_empty());

    // No header at all.
    let error = Endpoint::new(config.clone())
        .unwrap()
        .receive(&forged.body, None, &Context::new())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WebhookError::Signature(SignatureError::MissingHeader)
    );

    // A failing handler: the whole report comes back in the error, answered with 500.
    let event = sample_event("charge.captured", charge("ch_signed_3", 5));
    let delivery = SignedDelivery::now(&event, SECRET).unwrap();
    let error = Endpoint::new(config.clone())
        .unwrap()
        .receive(&delivery.body, Some(&delivery.signature), &Context::new())
        .await
        .unwrap_err();
    assert_eq!(error.status(), 500);
    let WebhookError::HandlersFailed(report) = &error else {
        panic!("expected HandlersFailed, got {error:?}");
    };
    assert_eq!(report.event_id, event.id);
    let failed: Vec<_> = report.failures().map(|outcome| outcome.handler).collect();
    assert_eq!(failed, [name("refuse_capture")]);
    assert!(
        error.to_string().contains("1 of 3 handlers failed"),
        "{error}"
    );

    // A payload that does not fit, once verified: 500, so the sender retries after a fix.
    let mut object = charge_json("ch_signed_4", 1);
    object["amount"] = json!("20");
    let delivery = SignedDelivery::now(&sample_event("charge.succeeded", object), SECRET).unwrap();
    let error = Endpoint::new(config.clone())
        .unwrap()
        .receive(&delivery.body, Some(&delivery.signature), &Context::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "payload_mismatch");
    assert_eq!(error.status(), 500);
}
