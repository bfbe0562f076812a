//! `RawEvent::parse`, `RawEvent::into_typed` / `payload` and `Event::from_slice` on arbitrary
//! bytes (bodies that were signed by someone with the secret, but are not necessarily sane).
//!
//! Never panics, and the three ways of reading an event agree:
//! - `Event::<Value>::from_slice(body)` is `RawEvent::parse(body)` then `into_typed::<Value>()`,
//!   with the same result and the same error;
//! - once the envelope parsed, `data.object` always parses as JSON (it was valid JSON inside a
//!   valid document), except for the known gaps between serde_json's `RawValue` and `Value`
//!   (README.md, "Known findings"), which only the `strict` feature treats as failures;
//! - a typed event (`Charge`, `Customer`, `Refund`, `Dispute`, `Invoice`) serializes and parses
//!   back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nextgen_events::payloads::{Charge, Customer, Dispute, Invoice, Refund};
use nextgen_events::{EnvelopeError, Event, RawEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What serde_json refuses in a `Value` but lets through in a `RawValue`.
const KNOWN_VALUE_ONLY_ERRORS: &[&str] = &[
    "recursion limit exceeded",
    "number out of range",
    "surrogate",
    "hex escape",
    "invalid unicode code point",
];

fuzz_target!(|body: &[u8]| {
    let raw = RawEvent::parse(body);
    let untyped = Event::<Value>::from_slice(body);

    let raw = match raw {
        Ok(raw) => raw,
        Err(error) => {
            check_error(&error);
            assert!(
                !matches!(error, EnvelopeError::PayloadMismatch { .. }),
                "the envelope alone cannot be a payload mismatch: {error}"
            );
            assert_eq!(untyped.as_ref().err(), Some(&error), "from_slice disagrees");
            return;
        }
    };

    // The envelope's object is a JSON object: an event is never read from a top-level array.
    assert!(
        !body.trim_ascii_start().starts_with(b"["),
        "an array was read as an event"
    );

    // `data.object` was valid JSON in a valid document: it parses, unless nested too deeply.
    let object = raw.payload::<Value>();
    match (&object, &untyped) {
        (Ok(object), Ok(event)) => {
            assert_eq!(&event.data.object, object);
            assert_eq!(event.id, raw.id);
            assert_eq!(event.event_type, raw.event_type);
            assert_eq!(event.created, raw.created);
            assert_eq!(event.livemode, raw.livemode);
            assert_eq!(event.api_version, raw.api_version);
            assert_eq!(event.pending_webhooks, raw.pending_webhooks);
            assert_eq!(event.request, raw.request);
            assert_eq!(event.data.previous_attributes, raw.data.previous_attributes);
        }
        (Err(error), Err(same)) => {
            assert_eq!(error, same, "from_slice disagrees");
            check_error(error);
            // Known finding (README.md): the envelope keeps `data.object` as a `RawValue`,
            // which serde_json checks less than a `Value`: numbers beyond f64 (`1e400`),
            // nesting past 128 levels and lone surrogate escapes pass the first and fail the
            // second. Only `strict` builds treat that as a failure.
            let message = error.to_string();
            let known = KNOWN_VALUE_ONLY_ERRORS
                .iter()
                .any(|known| message.contains(known));
            assert!(
                known && !cfg!(feature = "strict"),
                "data.object of a parsed envelope does not parse as JSON: {error}"
            );
        }
        (Ok(_), Err(error)) => panic!("from_slice failed where parse + payload did not: {error}"),
        (Err(error), Ok(_)) => panic!("from_slice succeeded where payload failed: {error}"),
    }

    typed::<Charge>(&raw);
    typed::<Customer>(&raw);
    typed::<Refund>(&raw);
    typed::<Dispute>(&raw);
    typed::<Invoice>(&raw);
});

/// Parses `data.object` as `T`; when it fits, the typed event round-trips through JSON.
fn typed<T>(raw: &RawEvent<'_>)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let by_payload = raw.payload::<T>();
    let by_into = raw.clone().into_typed::<T>();
    match (by_payload, by_into) {
        (Ok(object), Ok(event)) => {
            assert_eq!(event.data.object, object);
            // `previous_attributes` is free JSON, whose floats serde_json does not promise to
            // round-trip bit for bit; everything else must.
            let mut event = event;
            event.data.previous_attributes = None;
            let text = serde_json::to_vec(&event).expect("a typed event serializes");
            let again = Event::<T>::from_slice(&text).unwrap_or_else(|error| {
                panic!(
                    "a serialized typed event does not parse back: {error}\n{}",
                    String::from_utf8_lossy(&text)
                )
            });
            assert_eq!(again, event, "a typed event does not round-trip");
        }
        (Err(error), Err(same)) => {
            assert_eq!(error, same);
            check_error(&error);
            assert!(
                matches!(error, EnvelopeError::PayloadMismatch { .. }),
                "a payload error of another kind: {error:?}"
            );
        }
        (Ok(_), Err(error)) | (Err(error), Ok(_)) => {
            panic!("payload and into_typed disagree: {error}")
        }
    }
}

fn check_error(error: &EnvelopeError) {
    assert!(!error.to_string().is_empty());
    assert!(!error.code().is_empty());
    if let EnvelopeError::PayloadMismatch { path, .. } = error {
        assert!(
            path.starts_with("data.object"),
            "a payload error whose path is not under data.object: {path}"
        );
    }
}
