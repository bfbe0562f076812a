//! `*` handlers that take the object's JSON text (`Event<Box<RawValue>>`, `Box<RawValue>`)
//! beside one that takes a `Value`: each gets its own form, byte for byte, in name order.
//!
//! A binary of its own: every `*` handler sees every event, so the handlers of
//! `handlers.rs` would see these, and these theirs.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use nextgen_events::prelude::*;
use nextgen_events::testing::run_handlers_unverified;
use nextgen_events::{EnvelopeError, Registry};
use serde_json::Value;
use serde_json::value::RawValue;

/// What this binary's handlers saw: `(event id, handler, what)`.
static SEEN: Mutex<Vec<(String, &'static str, String)>> = Mutex::new(Vec::new());

fn seen(event_id: &str) -> Vec<(&'static str, String)> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(id, _, _)| id == event_id)
        .map(|(_, handler, what)| (*handler, what.clone()))
        .collect()
}

#[nextgen_event("*")]
async fn a_raw_event(event: Event<Box<RawValue>>) {
    let what = format!("{} {}", event.event_type, event.data.object.get());
    SEEN.lock().unwrap().push((event.id, "a_raw_event", what));
}

#[nextgen_event("*")]
async fn b_json_event(event: Event<Value>) {
    let what = event.data.object["id"].to_string();
    SEEN.lock().unwrap().push((event.id, "b_json_event", what));
}

#[nextgen_event("*")]
async fn c_raw_object(object: Box<RawValue>) {
    // No envelope here: the object's text says which event it came with.
    let text = object.get().to_owned();
    let id = text.contains("wild_raw_1").then_some("evt_wild_raw_1");
    let id = id.unwrap_or("evt_other").to_owned();
    SEEN.lock().unwrap().push((id, "c_raw_object", text));
}

#[nextgen_event("charge.succeeded")]
async fn typed(charge: Charge) {
    SEEN.lock()
        .unwrap()
        .push(("evt_wild_raw_1".to_owned(), "typed", charge.id));
}

/// The object as it was written: odd spacing, an escape, a number spelt `1.0e2`. A `Value`
/// would print it otherwise; the raw forms keep it.
const OBJECT: &str = r#"{ "id":"ch_wild_raw_1", "object": "charge","amount" :2000,
    "amount_refunded": 0, "currency": "usd", "paid": true, "status": "succeeded",
    "created": 1713745200, "description": "caf\u00e9", "extra": {"score": 1.0e2} }"#;

fn body(id: &str, event_type: &str, object: &str) -> Vec<u8> {
    format!(
        r#"{{"id": "{id}", "object": "event", "api_version": "2026-04-17", "created": 1713745200,
        "livemode": false, "type": "{event_type}", "data": {{"object": {object}}}}}"#
    )
    .into_bytes()
}

#[actix_rt::test]
async fn raw_handlers_receive_the_object_bytes_exactly() {
    let report = run_handlers_unverified(
        &body("evt_wild_raw_1", "charge.succeeded", OBJECT),
        &Context::new(),
    )
    .await
    .unwrap();
    assert!(report.is_success(), "{report:#?}");
    let order: Vec<_> = report.outcomes.iter().map(|o| o.handler).collect();
    let name = |handler: &str| format!("{}::{handler}", module_path!());
    assert_eq!(
        order,
        [
            name("typed"),
            name("a_raw_event"),
            name("b_json_event"),
            name("c_raw_object")
        ]
    );
    assert_eq!(
        seen("evt_wild_raw_1"),
        [
            ("typed", "ch_wild_raw_1".to_owned()),
            ("a_raw_event", format!("charge.succeeded {OBJECT}")),
            ("b_json_event", "\"ch_wild_raw_1\"".to_owned()),
            ("c_raw_object", OBJECT.to_owned()),
        ]
    );
}

#[actix_rt::test]
async fn the_wildcard_handlers_run_in_name_order_whatever_their_form() {
    let forms: Vec<_> = Registry::global()
        .wildcard_handlers()
        .iter()
        .map(|handler| handler.name().rsplit("::").next().unwrap())
        .collect();
    assert_eq!(forms, ["a_raw_event", "b_json_event", "c_raw_object"]);
}

/// Valid JSON that `Value` refuses (a number beyond f64, a lone surrogate escape), for a
/// catalog type and for a type outside the catalog: the `*` handler taking a `Value` matches,
/// so the delivery is payload drift naming the path, never acknowledged with it skipped. No
/// handler runs, so none runs twice when the delivery comes back.
#[actix_rt::test]
async fn an_object_a_value_cannot_hold_is_drift_for_every_event_type() {
    let objects = [
        (
            r#"{"id": "ch_huge", "amount": 1e400}"#,
            "data.object.amount",
        ),
        (
            r#"{"id": "ch_lone", "description": "\ud800"}"#,
            "data.object.description",
        ),
    ];
    for event_type in ["charge.succeeded", "payout.teleported"] {
        for (n, (object, path)) in objects.iter().enumerate() {
            let id = format!("evt_wild_drift_{n}_{event_type}");
            let refused = run_handlers_unverified(&body(&id, event_type, object), &Context::new())
                .await
                .expect_err("a `*` handler taking a `Value` cannot take this object");
            match &refused {
                nextgen_events::WebhookError::Envelope(EnvelopeError::PayloadMismatch {
                    event_type: refused_type,
                    path: refused_path,
                    ..
                }) => {
                    assert_eq!(refused_type, event_type);
                    assert_eq!(refused_path, path, "{refused}");
                }
                other => panic!("{event_type} {object}: {other:?}"),
            }
            assert_eq!(refused.code(), "payload_mismatch");
            assert!(refused.to_string().contains(path), "{refused}");
            assert_eq!(seen(&id), [], "{event_type} {object}");
        }
    }
}
