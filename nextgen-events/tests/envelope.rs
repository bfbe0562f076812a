//! The event envelope from the outside: `Event<T>` around the reference's samples, forward
//! compatibility, errors that name the offending JSON path, raw-then-typed parsing, and
//! serialization round trips.

#![allow(clippy::unwrap_used)]

use nextgen_events::RawEvent;
use nextgen_events::payloads::{Charge, ChargeStatus, Dispute};
use nextgen_events::{EnvelopeError, Event};
use serde_json::{Value, json};

/// The "Create a charge" response, verbatim from the API reference.
const REFERENCE_CHARGE: &str = r#"{
  "id": "ch_1J2k3L4m5N6o",
  "object": "charge",
  "amount": 2000,
  "amount_refunded": 0,
  "currency": "usd",
  "description": "My First Test Charge",
  "paid": true,
  "status": "succeeded"
}"#;

/// A dispute of the reference charge.
const DISPUTE: &str = r#"{
  "id": "dp_1P2q3R4s5T6u",
  "object": "dispute",
  "amount": 2000,
  "charge": "ch_1J2k3L4m5N6o",
  "created": 1713832200,
  "currency": "usd",
  "evidence_details": {"due_by": 1714953599, "has_evidence": false, "past_due": false,
                       "submission_count": 0},
  "reason": "fraudulent",
  "status": "needs_response"
}"#;

/// A full envelope around `object`, as NextGen sends it.
fn envelope(event_type: &str, object: &str) -> String {
    format!(
        r#"{{
  "id": "evt_3MtwBwLkdIwHu7ix28a3tqPa",
  "object": "event",
  "api_version": "2026-04-17",
  "created": 1713745200,
  "livemode": false,
  "type": "{event_type}",
  "pending_webhooks": 1,
  "request": {{"id": "req_9aB8cD7eF6", "idempotency_key": "idem-42"}},
  "data": {{"object": {object}}}
}}"#
    )
}

/// The reference charge's envelope as a JSON value, to be edited by a test.
fn charge_event_value() -> Value {
    serde_json::from_str(&envelope("charge.succeeded", REFERENCE_CHARGE)).unwrap()
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn charge_err(body: &[u8]) -> EnvelopeError {
    match Event::<Charge>::from_slice(body) {
        Ok(event) => panic!("parsed, expected an error: {event:?}"),
        Err(error) => error,
    }
}

/// The `path` and `message` of a `NotAnEvent`, checking its code and Display.
fn not_an_event(body: &[u8]) -> (String, String) {
    let error = charge_err(body);
    assert_eq!(error.code(), "invalid_event", "{error:?}");
    let display = error.to_string();
    match error {
        EnvelopeError::NotAnEvent { path, message } => {
            assert!(display.contains(&path), "{display}");
            assert!(display.contains(&message), "{display}");
            assert!(display.contains("not a NextGen event"), "{display}");
            // The same error comes from the envelope-only parse.
            let raw = RawEvent::parse(body).unwrap_err();
            assert_eq!(raw.code(), "invalid_event");
            (path, message)
        }
        other => panic!("expected NotAnEvent, got {other:?}"),
    }
}

/// The `path` and `message` of a `PayloadMismatch`, checking its code, event type and Display.
fn payload_mismatch<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    body: &[u8],
    event_type: &str,
    payload: &str,
) -> (String, String) {
    let error = match Event::<T>::from_slice(body) {
        Ok(event) => panic!("parsed, expected an error: {event:?}"),
        Err(error) => error,
    };
    assert_eq!(error.code(), "payload_mismatch", "{error:?}");
    let display = error.to_string();
    match error {
        EnvelopeError::PayloadMismatch {
            event_type: actual_type,
            payload: actual_payload,
            path,
            message,
        } => {
            assert_eq!(actual_type, event_type);
            assert_eq!(actual_payload, payload);
            assert!(display.contains(&path), "{display}");
            assert!(display.contains(&message), "{display}");
            assert!(display.contains(event_type), "{display}");
            assert!(display.contains(payload), "{display}");
            (path, message)
        }
        other => panic!("expected PayloadMismatch, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The reference sample
// ---------------------------------------------------------------------------------------------

#[test]
fn reference_charge_in_a_full_envelope() {
    let body = envelope("charge.succeeded", REFERENCE_CHARGE);
    let event = Event::<Charge>::from_slice(body.as_bytes()).unwrap();

    assert_eq!(event.id, "evt_3MtwBwLkdIwHu7ix28a3tqPa");
    assert_eq!(event.event_type, "charge.succeeded");
    assert_eq!(event.created, 1_713_745_200);
    assert!(!event.livemode);
    assert_eq!(event.api_version.as_deref(), Some("2026-04-17"));
    assert_eq!(event.pending_webhooks, Some(1));
    let request = event.request.as_ref().unwrap();
    assert_eq!(request.id.as_deref(), Some("req_9aB8cD7eF6"));
    assert_eq!(request.idempotency_key.as_deref(), Some("idem-42"));

    let charge = &event.data.object;
    assert_eq!(charge.id, "ch_1J2k3L4m5N6o");
    assert_eq!(charge.amount, 2000);
    assert_eq!(charge.amount_refunded, 0);
    assert_eq!(charge.currency, "usd");
    assert_eq!(charge.description.as_deref(), Some("My First Test Charge"));
    assert!(charge.paid);
    assert_eq!(charge.status, ChargeStatus::Succeeded);
    assert!(charge.metadata.is_empty());
    assert_eq!(event.data.previous_attributes, None);

    // The payload is the reference sample parsed on its own.
    let alone: Charge = serde_json::from_str(REFERENCE_CHARGE).unwrap();
    assert_eq!(event.data.object, alone);
}

#[test]
fn livemode_true_and_negative_created_are_kept() {
    let mut value = charge_event_value();
    value["livemode"] = json!(true);
    value["created"] = json!(-1);
    let event = Event::<Charge>::from_slice(&bytes(&value)).unwrap();
    assert!(event.livemode);
    assert_eq!(event.created, -1);
}

#[test]
fn previous_attributes_present_and_absent() {
    let mut value = charge_event_value();
    value["type"] = json!("charge.updated");
    value["data"]["previous_attributes"] =
        json!({"description": "Old description", "metadata": {"order": "41"}});
    let event = Event::<Charge>::from_slice(&bytes(&value)).unwrap();
    let previous = event.data.previous_attributes.as_ref().unwrap();
    assert_eq!(previous.len(), 2);
    assert_eq!(previous["description"], json!("Old description"));
    assert_eq!(previous["metadata"], json!({"order": "41"}));
    assert_eq!(event.data.object.amount, 2000);

    let absent = Event::<Charge>::from_slice(&bytes(&charge_event_value())).unwrap();
    assert_eq!(absent.data.previous_attributes, None);

    // An empty object is present (and empty), not absent.
    value["data"]["previous_attributes"] = json!({});
    let empty = Event::<Charge>::from_slice(&bytes(&value)).unwrap();
    assert_eq!(empty.data.previous_attributes.map(|m| m.len()), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Forward compatibility
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_fields_unknown_status_and_missing_optionals_still_parse() {
    let body = json!({
        "id": "evt_future",
        "type": "charge.succeeded",
        "created": 1_713_745_200,
        "livemode": false,
        "account": "acct_123",
        "brand_new_envelope_field": {"nested": [1, 2, 3]},
        "data": {
            "object": {
                "id": "ch_future",
                "amount": 500,
                "amount_refunded": 0,
                "currency": "eur",
                "paid": false,
                "status": "blocked_for_review",
                "brand_new_payload_field": [true, null],
                "outcome": {"risk_level": "elevated"}
            },
            "unknown_data_member": 7
        }
    });
    let event = Event::<Charge>::from_slice(&bytes(&body)).unwrap();
    assert_eq!(event.id, "evt_future");
    // Optional envelope fields absent.
    assert_eq!(event.api_version, None);
    assert_eq!(event.pending_webhooks, None);
    assert_eq!(event.request, None);
    assert_eq!(event.data.previous_attributes, None);
    // Optional payload fields absent.
    let charge = event.data.object;
    assert_eq!(charge.amount, 500);
    assert_eq!(charge.description, None);
    assert_eq!(charge.customer, None);
    assert_eq!(charge.failure_code, None);
    assert!(charge.metadata.is_empty());
    // Unknown status kept verbatim.
    assert_eq!(
        charge.status,
        ChargeStatus::Unknown("blocked_for_review".to_owned())
    );
    assert_eq!(charge.status.as_str(), "blocked_for_review");
}

#[test]
fn null_optional_fields_parse() {
    let mut value = charge_event_value();
    value["api_version"] = Value::Null;
    value["pending_webhooks"] = Value::Null;
    value["request"] = json!({"id": null, "idempotency_key": null});
    value["data"]["object"]["description"] = Value::Null;
    let event = Event::<Charge>::from_slice(&bytes(&value)).unwrap();
    assert_eq!(event.api_version, None);
    assert_eq!(event.pending_webhooks, None);
    let request = event.request.unwrap();
    assert_eq!(request.id, None);
    assert_eq!(request.idempotency_key, None);
    assert_eq!(event.data.object.description, None);
}

#[test]
fn untyped_event_parses_any_event_type() {
    // The public vector's `invoiceitem.created`: outside the catalog.
    let body = br#"{"account":"acct_123","api_version":"2017-05-25","created":1533204620,"data":{"object":{"amount":1000,"currency":"usd","customer":"cus_123","id":"ii_123","object":"invoiceitem","quantity":3}},"id":"evt_123","livemode":false,"object":"event","pending_webhooks":1,"request":{"id":"req_123","idempotency_key":"idempotency-key-123"},"type":"invoiceitem.created"}"#;
    let event = Event::<Value>::from_slice(body).unwrap();
    assert_eq!(event.id, "evt_123");
    assert_eq!(event.event_type, "invoiceitem.created");
    assert_eq!(event.created, 1_533_204_620);
    assert_eq!(event.data.object["object"], json!("invoiceitem"));
    assert_eq!(event.data.object["amount"], json!(1000));

    // Any JSON value as the object.
    for object in ["[1, 2]", "\"a string\"", "42", "null", "{}"] {
        let body = envelope("something.entirely.new", object);
        let event = Event::<Value>::from_slice(body.as_bytes()).unwrap();
        assert_eq!(event.event_type, "something.entirely.new");
        assert_eq!(
            event.data.object,
            serde_json::from_str::<Value>(object).unwrap()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Payload mismatches name the path
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_typed_amount_is_a_payload_mismatch() {
    let mut value = charge_event_value();
    value["data"]["object"]["amount"] = json!("20");
    let body = bytes(&value);
    let (path, message) = payload_mismatch::<Charge>(&body, "charge.succeeded", "Charge");
    assert_eq!(path, "data.object.amount");
    assert!(message.contains(", found a"), "{message}");
    let display = Event::<Charge>::from_slice(&body).unwrap_err().to_string();
    assert!(display.contains("data.object.amount"), "{display}");
    assert!(
        display.contains("expected i64, found a string"),
        "{display}"
    );
    // Nothing the sender wrote is repeated.
    assert!(!display.contains("20"), "{display}");

    // The envelope alone is fine: only the typed payload fails.
    let raw = RawEvent::parse(&body).unwrap();
    assert_eq!(raw.event_type, "charge.succeeded");
    assert!(Event::<Value>::from_slice(&body).is_ok());
}

#[test]
fn missing_required_payload_field_is_a_payload_mismatch() {
    let mut value = charge_event_value();
    value["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("currency");
    let (path, message) = payload_mismatch::<Charge>(&bytes(&value), "charge.succeeded", "Charge");
    assert_eq!(path, "data.object");
    assert!(message.contains("currency"), "{message}");
}

#[test]
fn object_of_the_wrong_shape_is_a_payload_mismatch() {
    let body = envelope("charge.succeeded", "42");
    let (path, message) = payload_mismatch::<Charge>(body.as_bytes(), "charge.succeeded", "Charge");
    assert_eq!(path, "data.object");
    assert!(message.contains(", found a"), "{message}");
}

#[test]
fn nested_metadata_paths_are_named() {
    let mut value = charge_event_value();
    value["data"]["object"]["metadata"] = json!(5);
    let (path, message) = payload_mismatch::<Charge>(&bytes(&value), "charge.succeeded", "Charge");
    assert_eq!(path, "data.object.metadata");
    assert!(message.contains(", found a"), "{message}");

    value["data"]["object"]["metadata"] = json!({"order_id": "6735", "count": 3});
    let (path, message) = payload_mismatch::<Charge>(&bytes(&value), "charge.succeeded", "Charge");
    assert_eq!(path, "data.object.metadata.count");
    assert!(message.contains(", found a"), "{message}");
}

#[test]
fn nested_dispute_evidence_details_path_is_named() {
    let body = envelope("charge.dispute.created", DISPUTE);
    let event = Event::<Dispute>::from_slice(body.as_bytes()).unwrap();
    assert_eq!(event.data.object.amount, 2000);
    assert_eq!(
        event.data.object.evidence_details.as_ref().unwrap().due_by,
        Some(1_714_953_599)
    );

    let mut value: Value = serde_json::from_str(&body).unwrap();
    value["data"]["object"]["evidence_details"]["due_by"] = json!("next week");
    let (path, message) =
        payload_mismatch::<Dispute>(&bytes(&value), "charge.dispute.created", "Dispute");
    assert_eq!(path, "data.object.evidence_details.due_by");
    assert!(message.contains(", found a"), "{message}");

    value["data"]["object"]["evidence_details"] = json!([1]);
    let (path, _) =
        payload_mismatch::<Dispute>(&bytes(&value), "charge.dispute.created", "Dispute");
    assert_eq!(path, "data.object.evidence_details");
}

// ---------------------------------------------------------------------------------------------
// Not JSON, not an event
// ---------------------------------------------------------------------------------------------

#[test]
fn non_json_body_is_not_json() {
    for body in [
        &b"not json"[..],
        b"",
        b"{",
        b"{\"id\": \"evt_1\", ",
        b"\xff\xfe",
        b"id=evt_1&type=charge.succeeded",
    ] {
        let error = charge_err(body);
        assert_eq!(error.code(), "invalid_json", "{body:?}: {error:?}");
        assert!(
            matches!(error, EnvelopeError::NotJson { .. }),
            "{body:?}: {error:?}"
        );
        assert!(error.to_string().contains("not valid JSON"), "{error}");
        assert_eq!(RawEvent::parse(body).unwrap_err().code(), "invalid_json");
        assert_eq!(
            Event::<Value>::from_slice(body).unwrap_err().code(),
            "invalid_json"
        );
    }
}

#[test]
fn json_array_is_not_an_event() {
    let (path, _) = not_an_event(b"[]");
    assert_eq!(path, "(top level)");

    let body = format!("[{}]", envelope("charge.succeeded", REFERENCE_CHARGE));
    // Rejected; the path it names is checked by `positional_array_is_not_an_event`.
    not_an_event(body.as_bytes());

    for scalar in ["42", "\"evt_1\"", "null", "true"] {
        not_an_event(scalar.as_bytes());
    }
}

/// The fields of the reference charge event in `Event`'s declaration order, as a JSON array.
fn positional_event() -> Value {
    let charge: Value = serde_json::from_str(REFERENCE_CHARGE).unwrap();
    json!([
        "evt_3MtwBwLkdIwHu7ix28a3tqPa",
        "charge.succeeded",
        "2026-04-17",
        1_713_745_200,
        false,
        1,
        null,
        [charge, null]
    ])
}

#[test]
fn positional_array_is_not_an_event() {
    let body = bytes(&positional_event());
    let (path, _) = not_an_event(&body);
    assert_eq!(path, "(top level)");

    // An envelope wrapped in an array is an array, not an event.
    let wrapped = format!("[{}]", envelope("charge.succeeded", REFERENCE_CHARGE));
    let (path, _) = not_an_event(wrapped.as_bytes());
    assert_eq!(path, "(top level)");
}

#[test]
fn missing_data_is_not_an_event() {
    let mut value = charge_event_value();
    value.as_object_mut().unwrap().remove("data");
    let (_, message) = not_an_event(&bytes(&value));
    assert!(message.contains("`data`"), "{message}");
    let display = charge_err(&bytes(&value)).to_string();
    assert!(display.contains("data"), "{display}");
}

#[test]
fn missing_data_object_is_not_an_event() {
    let mut value = charge_event_value();
    value["data"] = json!({"previous_attributes": {}});
    let (path, message) = not_an_event(&bytes(&value));
    assert_eq!(path, "data");
    assert!(message.contains("`object`"), "{message}");

    value["data"] = json!("not an object");
    let (path, _) = not_an_event(&bytes(&value));
    assert_eq!(path, "data");
}

#[test]
fn numeric_id_is_not_an_event() {
    let mut value = charge_event_value();
    value["id"] = json!(12345);
    let (path, message) = not_an_event(&bytes(&value));
    assert_eq!(path, "id");
    assert!(message.contains(", found a"), "{message}");
}

#[test]
fn other_envelope_fields_are_named() {
    let cases: [(&str, Option<Value>); 6] = [
        ("type", None),
        ("type", Some(json!(7))),
        ("created", Some(json!("yesterday"))),
        ("created", None),
        ("livemode", Some(json!("false"))),
        ("pending_webhooks", Some(json!(-1))),
    ];
    for (field, replacement) in cases {
        let mut value = charge_event_value();
        let object = value.as_object_mut().unwrap();
        match &replacement {
            Some(replacement) => {
                object.insert(field.to_owned(), replacement.clone());
            }
            None => {
                object.remove(field);
            }
        }
        let (path, message) = not_an_event(&bytes(&value));
        if replacement.is_some() {
            assert_eq!(path, field, "{message}");
        } else {
            assert_eq!(path, "(top level)");
            assert!(message.contains(&format!("`{field}`")), "{message}");
        }
    }
}

#[test]
fn trailing_garbage_is_rejected() {
    let body = envelope("charge.succeeded", REFERENCE_CHARGE);
    for suffix in ["x", " {}", "}", ",", "\0"] {
        let garbage = format!("{body}{suffix}");
        let error = charge_err(garbage.as_bytes());
        assert_eq!(error.code(), "invalid_json", "{suffix:?}: {error:?}");
        assert!(RawEvent::parse(garbage.as_bytes()).is_err());
        assert!(Event::<Value>::from_slice(garbage.as_bytes()).is_err());
    }
    // Trailing whitespace is not garbage.
    let with_newline = format!("{body}\r\n");
    assert!(Event::<Charge>::from_slice(with_newline.as_bytes()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Raw then typed, and round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_then_typed_equals_direct_parse() {
    let mut value = charge_event_value();
    value["data"]["previous_attributes"] = json!({"amount": 1500});
    for body in [
        envelope("charge.succeeded", REFERENCE_CHARGE).into_bytes(),
        bytes(&value),
    ] {
        let direct = Event::<Charge>::from_slice(&body).unwrap();
        let raw = RawEvent::parse(&body).unwrap();
        assert_eq!(raw.id, direct.id);
        assert_eq!(raw.event_type, direct.event_type);
        assert_eq!(raw.payload::<Charge>().unwrap(), direct.data.object);
        let untyped = raw.payload::<Value>().unwrap();
        assert_eq!(untyped["amount"], json!(2000));
        assert_eq!(raw.into_typed::<Charge>().unwrap(), direct);
    }
}

#[test]
fn serialized_event_parses_back_equal() {
    let mut value = charge_event_value();
    value["data"]["object"]["metadata"] = json!({"order_id": "6735"});
    value["data"]["object"]["customer"] = json!("cus_8mNq2Lp5Zk9Xw");
    value["data"]["object"]["status"] = json!("blocked_for_review");
    for previous in [None, Some(json!({"status": "pending"}))] {
        if let Some(previous) = previous {
            value["data"]["previous_attributes"] = previous;
        }
        let event = Event::<Charge>::from_slice(&bytes(&value)).unwrap();
        let serialized = serde_json::to_vec(&event).unwrap();
        let back = Event::<Charge>::from_slice(&serialized).unwrap();
        assert_eq!(back, event);

        // Serializing keeps the wire names.
        let as_value: Value = serde_json::from_slice(&serialized).unwrap();
        assert_eq!(as_value["type"], json!("charge.succeeded"));
        assert_eq!(
            as_value["data"]["object"]["status"],
            json!("blocked_for_review")
        );
    }

    // An event with every optional envelope field absent round-trips too.
    let minimal = json!({"id": "evt_min", "type": "charge.pending", "created": 0,
        "livemode": true, "data": {"object": serde_json::from_str::<Value>(REFERENCE_CHARGE).unwrap()}});
    let event = Event::<Charge>::from_slice(&bytes(&minimal)).unwrap();
    let back = Event::<Charge>::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
    assert_eq!(back, event);

    // And the untyped form.
    let untyped = Event::<Value>::from_slice(&bytes(&value)).unwrap();
    let back = Event::<Value>::from_slice(&serde_json::to_vec(&untyped).unwrap()).unwrap();
    assert_eq!(back, untyped);
}
