//! Dispatch reads a delivery in one pass when it can; whatever the member order, escapes or
//! surprises in the body, handlers must see exactly what a plain parse would give them.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use nextgen_events::Context;
use nextgen_events::prelude::*;
use nextgen_events::testing::run_handlers_unverified;
use nextgen_events::{EnvelopeError, Event};

static SEEN: Mutex<Vec<(String, String, i64)>> = Mutex::new(Vec::new());

#[nextgen_event("charge.refunded")]
async fn refunded(event: Event<Charge>) {
    let charge = event.data.object;
    SEEN.lock()
        .unwrap()
        .push((event.id, charge.id, charge.amount_refunded));
}

#[nextgen_event("refund.created")]
async fn refund(event: Event<Refund>) {
    SEEN.lock()
        .unwrap()
        .push((event.id, event.data.object.id, event.data.object.amount));
}

fn seen(event_id: &str) -> Vec<(String, i64)> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(id, _, _)| id == event_id)
        .map(|(_, object, amount)| (object.clone(), *amount))
        .collect()
}

const CHARGE: &str = r#"{"id":"ch_1","amount":2000,"amount_refunded":2000,"currency":"usd","paid":true,"status":"succeeded","refunded":true,"metadata":{"type":"refund.created"}}"#;

async fn run(body: String) -> Result<nextgen_events::DispatchReport, EnvelopeError> {
    let expected: Result<Event<serde_json::Value>, _> = Event::from_slice(body.as_bytes());
    let report = run_handlers_unverified(body.as_bytes(), &Context::new())
        .await
        .map_err(|error| match error {
            nextgen_events::WebhookError::Envelope(error) => error,
            other => panic!("without a store only the envelope can fail: {other}"),
        });
    // The one-pass reader and the plain parse agree on whether this is an event at all.
    let envelope_read =
        report.is_ok() || matches!(report, Err(EnvelopeError::PayloadMismatch { .. }));
    assert_eq!(envelope_read, expected.is_ok());
    report
}

#[actix_rt::test]
async fn type_before_data() {
    let body = format!(
        r#"{{"id":"evt_p1","type":"charge.refunded","created":1,"livemode":false,"data":{{"object":{CHARGE}}}}}"#
    );
    run(body).await.unwrap();
    assert_eq!(seen("evt_p1"), [("ch_1".to_owned(), 2000)]);
}

#[actix_rt::test]
async fn data_before_type_in_alphabetical_order() {
    let body = format!(
        r#"{{"created":1,"data":{{"object":{CHARGE}}},"id":"evt_p2","livemode":false,"object":"event","type":"charge.refunded"}}"#
    );
    run(body).await.unwrap();
    assert_eq!(seen("evt_p2"), [("ch_1".to_owned(), 2000)]);
}

#[actix_rt::test]
async fn a_nested_type_after_the_real_one_does_not_mislead() {
    // The last `"type"` in the body is not the envelope's: a guess from it must be caught.
    let body = format!(
        r#"{{"data":{{"object":{CHARGE}}},"id":"evt_p3","type":"charge.refunded","created":1,"livemode":false,"zz":{{"type":"refund.created"}}}}"#
    );
    run(body).await.unwrap();
    assert_eq!(seen("evt_p3"), [("ch_1".to_owned(), 2000)]);
}

#[actix_rt::test]
async fn escaped_keys_and_whitespace() {
    let body = format!(
        "{{ \"\\u0069d\" : \"evt_p4\" ,\n \"data\" : {{ \"object\" : {CHARGE} }} , \"t\\u0079pe\" : \"charge.refunded\", \"created\": 1, \"livemode\": false }}"
    );
    run(body).await.unwrap();
    assert_eq!(seen("evt_p4"), [("ch_1".to_owned(), 2000)]);
}

#[actix_rt::test]
async fn previous_attributes_and_unknown_members_are_kept_and_ignored() {
    let body = format!(
        r#"{{"id":"evt_p5","type":"charge.refunded","extra":[1,{{"a":null}}],"created":1,"livemode":false,"data":{{"previous_attributes":{{"refunded":false}},"object":{CHARGE},"more":true}}}}"#
    );
    run(body).await.unwrap();
    assert_eq!(seen("evt_p5"), [("ch_1".to_owned(), 2000)]);
}

#[actix_rt::test]
async fn duplicates_and_mismatches_give_the_thorough_errors() {
    let body = format!(
        r#"{{"id":"evt_p6","id":"evt_p6b","type":"charge.refunded","created":1,"livemode":false,"data":{{"object":{CHARGE}}}}}"#
    );
    let error = run(body).await.unwrap_err();
    assert!(matches!(error, EnvelopeError::NotAnEvent { .. }), "{error}");
    assert!(
        error.to_string().contains("duplicate field `id`"),
        "{error}"
    );
    assert!(seen("evt_p6").is_empty() && seen("evt_p6b").is_empty());

    let bad = CHARGE.replace(r#""amount":2000"#, r#""amount":"2000""#);
    for body in [
        format!(
            r#"{{"id":"evt_p7","type":"charge.refunded","created":1,"livemode":false,"data":{{"object":{bad}}}}}"#
        ),
        format!(
            r#"{{"data":{{"object":{bad}}},"id":"evt_p7","created":1,"livemode":false,"type":"charge.refunded"}}"#
        ),
    ] {
        let error = run(body).await.unwrap_err();
        match &error {
            EnvelopeError::PayloadMismatch { path, .. } => assert_eq!(path, "data.object.amount"),
            other => panic!("{other}"),
        }
    }
    assert!(seen("evt_p7").is_empty());
}

#[test]
fn a_delivery_kept_for_later_must_be_text_throughout() {
    use nextgen_events::{Endpoint, WebhookConfig, WebhookError, sign};
    // Invalid UTF-8 inside a member nobody reads: serde_json skips it unchecked.
    let body = b"{\"id\":\"evt_1\",\"object\":\"ev\xffent\",\"type\":\"x.y\",\"created\":1,\"livemode\":false,\"data\":{\"object\":{}}}";
    let endpoint = Endpoint::new(WebhookConfig::new("whsec_t").with_clock(|| 10)).unwrap();
    let header = sign(body, "whsec_t", 10);
    let error = endpoint.verify(body.to_vec(), Some(&header)).unwrap_err();
    assert!(
        matches!(error, WebhookError::Envelope(EnvelopeError::NotJson { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("UTF-8"), "{error}");
}
