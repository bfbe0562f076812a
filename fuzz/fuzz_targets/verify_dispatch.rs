//! The whole path of one delivery, without HTTP: `nextgen_events::receive` (verify, parse,
//! dispatch to the `#[nextgen_event]` handlers below), with a fixed secret and a fixed clock.
//!
//! Input layout (so that seeds can be written by hand):
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | signature mode, `% 6`: 0 genuine; 1 no header; 2 signed with another secret; 3 genuine but signed `(byte2 - 128) * 5` s away from now; 4 genuine among other entries, with two configured secrets (rotation); 5 the header is the input's text up to its first `\n` |
//! | 1 | body mode, `% 4`: 0 the rest is the body; 1 an envelope whose `data.object` is the rest, raw; 2 the reference charge envelope with the rest as its `id`; 3 the same with the rest as its `type` |
//! | 1, bit 7 | the context carries the app data the `refund.created` handler needs |
//! | 2 | a parameter: the event type for body mode 1, the clock skew for mode 3, the order of the entries for mode 4 |
//! | 3.. | the rest |
//!
//! Never panics, and:
//! - a genuine signature (within the tolerance) over any body is never rejected with a
//!   signature error; over a valid envelope the delivery is dispatched, and every matching
//!   handler runs and is reported;
//! - a missing header, another secret or a stale timestamp give their own signature errors;
//! - `VerifiedDelivery::verify` agrees with `receive`, and a verified delivery survives its
//!   own serialization;
//! - redelivering the event (through `receive`, then `VerifiedDelivery::dispatch`) skips the
//!   handlers that succeeded and runs the failed ones again (the idempotency store).

#![no_main]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use nextgen_events::RawEvent;
use nextgen_events::prelude::*;
use nextgen_events::{Context, SignatureError, WebhookConfig, WebhookError};
use nextgen_events::{
    DispatchReport, Endpoint, EnvelopeError, Received, Registry, VerifiedDelivery,
};
use nextgen_events::{SignatureHeader, Verifier, sign};
use serde_json::Value;

const DEFAULT_TOLERANCE: std::time::Duration = Verifier::DEFAULT_TOLERANCE;

const SECRET: &str = "whsec_fuzz_secret";
const OLD_SECRET: &str = "whsec_fuzz_previous";
const OTHER_SECRET: &str = "whsec_someone_else";
const NOW: u64 = 1_713_745_200;

const NEGATIVE_AMOUNT: &str = "fuzz: negative amount";
const EMPTY_ID: &str = "fuzz: empty event id";

// ---- the handlers, registered through inventory like in any app ----------------------------

#[nextgen_event("charge.succeeded")]
async fn on_charge(charge: Charge) -> Result<(), String> {
    if charge.amount < 0 {
        return Err(NEGATIVE_AMOUNT.to_owned());
    }
    Ok(())
}

#[nextgen_event("charge.succeeded")]
async fn on_charge_event(event: Event<Charge>) {
    let _ = (event.id.len(), event.data.object.currency.len());
}

struct Seen(AtomicUsize);

#[nextgen_event("refund.created")]
async fn on_refund(refund: Refund, seen: web::Data<Seen>) {
    seen.0
        .fetch_add(usize::from(refund.amount > 0), Ordering::Relaxed);
}

#[nextgen_event("*")]
async fn audit(event: Event<Value>) -> Result<(), &'static str> {
    if event.id.is_empty() {
        return Err(EMPTY_ID);
    }
    Ok(())
}

// ---- a minimal executor: the handlers above never wait on anything ------------------------

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = TaskContext::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
    panic!("Endpoint::receive did not complete although no handler ever waits");
}

// ---- building a delivery from the input -----------------------------------------------------

const REFERENCE_CHARGE: &str = r#"{"id":"ch_1J2k3L4m5N6o","object":"charge","amount":2000,"amount_refunded":0,"currency":"usd","description":"My First Test Charge","paid":true,"status":"succeeded"}"#;

const EVENT_TYPES: &[&str] = &[
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "charge.dispute.created",
    "customer.created",
    "customer.deleted",
    "refund.created",
    "invoice.paid",
    "something.new",
    "",
];

fn envelope(id: &str, event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut body = format!(
        r#"{{"id":{id},"object":"event","api_version":"2026-04-17","created":1713745200,"livemode":false,"type":{event_type},"pending_webhooks":1,"data":{{"object":"#
    )
    .into_bytes();
    body.extend_from_slice(object);
    body.extend_from_slice(b"}}");
    body
}

fn json_string(bytes: &[u8]) -> String {
    Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()
}

fn body_from(mode: u8, param: u8, rest: &[u8]) -> Vec<u8> {
    match mode % 4 {
        0 => rest.to_vec(),
        1 => {
            let event_type = EVENT_TYPES[usize::from(param) % EVENT_TYPES.len()];
            envelope(r#""evt_fuzz""#, &json_string(event_type.as_bytes()), rest)
        }
        2 => envelope(
            &json_string(rest),
            r#""charge.succeeded""#,
            REFERENCE_CHARGE.as_bytes(),
        ),
        _ => envelope(
            r#""evt_fuzz""#,
            &json_string(rest),
            REFERENCE_CHARGE.as_bytes(),
        ),
    }
}

fn tag_of(header: &str) -> &str {
    header.split_once(",v1=").map_or("", |(_, tag)| tag)
}

enum Expect {
    /// A genuine signature within the tolerance: anything but a signature error.
    Genuine {
        timestamp: u64,
    },
    Missing,
    NoMatch,
    Stale {
        skew: i64,
    },
    /// A header from the input: no expectation beyond not panicking and not being fooled.
    Anything,
}

fuzz_target!(|data: &[u8]| {
    let [sig_mode, body_mode, param, rest @ ..] = data else {
        return;
    };
    let with_app_data = body_mode & 0x80 != 0;

    let mut config = WebhookConfig::new(SECRET).with_clock(|| NOW);
    let (body, header, expect) = match sig_mode % 6 {
        0 => {
            let body = body_from(*body_mode, *param, rest);
            let header = sign(&body, SECRET, NOW);
            (body, Some(header), Expect::Genuine { timestamp: NOW })
        }
        1 => (body_from(*body_mode, *param, rest), None, Expect::Missing),
        2 => {
            let body = body_from(*body_mode, *param, rest);
            let header = sign(&body, OTHER_SECRET, NOW);
            (body, Some(header), Expect::NoMatch)
        }
        3 => {
            let body = body_from(*body_mode, *param, rest);
            let offset = (i64::from(*param) - 128) * 5;
            let timestamp = NOW.saturating_add_signed(offset);
            let header = sign(&body, SECRET, timestamp);
            let skew = i64::try_from(NOW).unwrap_or(i64::MAX)
                - i64::try_from(timestamp).unwrap_or(i64::MAX);
            let expect = if skew.unsigned_abs() > DEFAULT_TOLERANCE.as_secs() {
                Expect::Stale { skew }
            } else {
                Expect::Genuine { timestamp }
            };
            (body, Some(header), expect)
        }
        4 => {
            config = WebhookConfig::new(OLD_SECRET)
                .with_secret(SECRET)
                .with_clock(|| NOW);
            let body = body_from(*body_mode, *param, rest);
            let genuine = sign(&body, SECRET, NOW);
            let stale = sign(&body, OLD_SECRET, NOW - 1);
            let entries = [
                "v0=deadbeef".to_owned(),
                format!("v1={}", tag_of(&stale)),
                format!("v1={}", tag_of(&genuine)),
                format!("t={NOW}"),
                "scheme=unknown".to_owned(),
            ];
            let mut order: Vec<&String> = entries.iter().collect();
            order.rotate_left(usize::from(*param) % entries.len());
            if param & 0x80 != 0 {
                order.reverse();
            }
            let separator = if param & 0x40 != 0 { " , " } else { "," };
            let header = order
                .iter()
                .map(|entry| entry.as_str())
                .collect::<Vec<_>>()
                .join(separator);
            (body, Some(header), Expect::Genuine { timestamp: NOW })
        }
        _ => {
            let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let header = String::from_utf8_lossy(&rest[..split]).into_owned();
            let body = body_from(*body_mode, *param, rest.get(split + 1..).unwrap_or(&[]));
            (body, Some(header), Expect::Anything)
        }
    };

    let context = if with_app_data {
        Context::new().with_data(web::Data::new(Seen(AtomicUsize::new(0))))
    } else {
        Context::new()
    };
    let endpoint = Endpoint::new(config).expect("the fuzz configurations are valid");
    let result = block_on(endpoint.receive(&body, header.as_deref(), &context)).map(handled);

    // The error renders, with a status and a code; it never holds a secret.
    if let Err(error) = &result {
        let message = error.to_string();
        assert!(!error.code().is_empty());
        assert!(matches!(error.status(), 400 | 413 | 500));
        for secret in [SECRET, OLD_SECRET, OTHER_SECRET] {
            assert!(!message.contains(secret), "an error message holds a secret");
        }
    }

    // The queueing path verifies the same way.
    let delivery = endpoint.verify(body.clone(), header.as_deref());
    match (&result, &delivery) {
        (Err(WebhookError::Signature(a)), Err(WebhookError::Signature(b))) => assert_eq!(a, b),
        (Err(WebhookError::Signature(error)), Ok(_)) => {
            panic!("receive rejected a signature that VerifiedDelivery accepted: {error}")
        }
        (_, Err(WebhookError::Signature(error))) => {
            panic!("VerifiedDelivery rejected a signature that receive accepted: {error}")
        }
        _ => {}
    }

    match expect {
        Expect::Missing => assert_eq!(
            result.as_ref().err(),
            Some(&WebhookError::Signature(SignatureError::MissingHeader))
        ),
        Expect::NoMatch => assert!(
            matches!(
                result,
                Err(WebhookError::Signature(SignatureError::NoMatch { .. }))
            ),
            "a delivery signed with another secret: {result:?}"
        ),
        Expect::Stale { skew } => match &result {
            Err(WebhookError::Signature(SignatureError::TimestampOutsideTolerance {
                skew: reported,
                ..
            })) => assert_eq!(*reported, skew),
            other => panic!("a delivery signed {skew} s away from now: {other:?}"),
        },
        Expect::Anything => {
            if !matches!(result, Err(WebhookError::Signature(_))) {
                // Verified: only with a header that parses, within the tolerance.
                let header = header.as_deref().unwrap_or_default();
                let parsed = SignatureHeader::parse(header)
                    .unwrap_or_else(|error| panic!("verified with a bad header: {error}"));
                assert!(parsed.timestamp().abs_diff(NOW) <= DEFAULT_TOLERANCE.as_secs());
            }
        }
        Expect::Genuine { timestamp } => {
            check_genuine(&body, &result, with_app_data);
            // At-least-once delivery: the same event again, through both paths.
            let again = block_on(endpoint.receive(&body, header.as_deref(), &context)).map(handled);
            check_redelivery(&result, &again);
            if let Ok(delivery) = &delivery {
                let queued = block_on(endpoint.handle(delivery, &context)).map(handled);
                check_redelivery(&again, &queued);
            }
            match delivery {
                Ok(delivery) => check_delivery(&delivery, &body, timestamp),
                // Only the envelope can fail here, exactly as in receive (a body that is not
                // UTF-8 throughout included: both refuse it).
                Err(WebhookError::Envelope(error)) => {
                    assert_eq!(result.as_ref().err(), Some(&WebhookError::Envelope(error)))
                }
                Err(error) => panic!("VerifiedDelivery: {error:?}, receive: {result:?}"),
            }
        }
    }
});

/// The report of a delivery taken inline (these endpoints have no inbox).
fn handled(taken: Received) -> DispatchReport {
    taken
        .into_report()
        .expect("an endpoint without an inbox runs the handlers now")
}

/// What a genuine delivery must come to: never a signature error; an envelope error exactly
/// when the body is not an event; otherwise a report naming every matching handler.
fn check_genuine(body: &[u8], result: &Result<DispatchReport, WebhookError>, with_app_data: bool) {
    if let Err(WebhookError::Signature(error)) = result {
        panic!("a genuine signature was rejected: {error}");
    }
    let raw = match RawEvent::parse(body) {
        Ok(raw) => raw,
        Err(error) => {
            assert_eq!(result.as_ref().err(), Some(&WebhookError::Envelope(error)));
            return;
        }
    };
    let report = match result {
        Ok(report) => report,
        Err(WebhookError::HandlersFailed(report)) => report,
        Err(WebhookError::Envelope(error @ EnvelopeError::PayloadMismatch { .. })) => {
            assert_eq!(error.code(), "payload_mismatch");
            return;
        }
        Err(other) => panic!("a genuine delivery of a valid envelope failed: {other:?}"),
    };
    assert_eq!(report.event_id, raw.id);
    assert_eq!(report.event_type, raw.event_type);
    let registry = Registry::global();
    // `*` handlers see every event as JSON; an event outside the catalog that JSON values
    // cannot hold (1e400, a lone surrogate) is acknowledged without them.
    let as_json = raw.payload::<serde_json::Value>().is_ok()
        || nextgen_events::catalog::lookup(&raw.event_type).is_some();
    let expected = registry.handlers_for(&raw.event_type).len()
        + if as_json {
            registry.wildcard_handlers().len()
        } else {
            0
        };
    assert_eq!(
        report.outcomes.len(),
        expected,
        "not every matching handler ran for {:?}",
        raw.event_type
    );
    assert_eq!(result.is_ok(), report.is_success());
    for outcome in report.failures() {
        match &outcome.result {
            Err(HandlerError::Failed(message))
                if message == NEGATIVE_AMOUNT || message == EMPTY_ID => {}
            Err(HandlerError::MissingAppData { .. }) if !with_app_data => {}
            other => panic!("{} failed unexpectedly: {other:?}", outcome.handler),
        }
    }
}

/// A delivery of an event whose previous delivery gave `first`: handlers that succeeded are
/// skipped (and count as successes), the others run again and fail the same way; an event
/// whose payload did not fit fails the same way again (its claims were given back).
fn check_redelivery(
    first: &Result<DispatchReport, WebhookError>,
    again: &Result<DispatchReport, WebhookError>,
) {
    let report = |result: &Result<DispatchReport, WebhookError>| match result {
        Ok(report) | Err(WebhookError::HandlersFailed(report)) => Some(report.clone()),
        _ => None,
    };
    let (Some(first_report), Some(again_report)) = (report(first), report(again)) else {
        assert_eq!(first, again, "a redelivery ended differently");
        return;
    };
    assert_eq!(again_report.event_id, first_report.event_id);
    assert_eq!(
        again_report.outcomes.len(),
        first_report.outcomes.len(),
        "a redelivery reported another set of handlers"
    );
    for before in &first_report.outcomes {
        let after = again_report
            .outcomes
            .iter()
            .find(|outcome| outcome.handler == before.handler)
            .unwrap_or_else(|| panic!("{} missing from the redelivery", before.handler));
        match &before.result {
            Ok(()) => assert!(
                after.skipped && after.result.is_ok(),
                "{} succeeded, yet ran again on redelivery: {after:?}",
                before.handler
            ),
            Err(error) => {
                assert!(!after.skipped, "{} failed, yet was skipped", before.handler);
                assert_eq!(
                    after.result.as_ref().err(),
                    Some(error),
                    "{}",
                    before.handler
                );
            }
        }
    }
    assert_eq!(again.is_ok(), first.is_ok());
    if let Err(error) = again {
        assert_ne!(error.status(), 409, "a sequential redelivery answered 409");
    }
}

fn check_delivery(delivery: &VerifiedDelivery, body: &[u8], timestamp: u64) {
    assert_eq!(delivery.body(), body);
    assert_eq!(delivery.timestamp, timestamp);
    // A verified delivery is meant to be queued: it serializes and comes back unchanged.
    let queued = serde_json::to_string(delivery)
        .unwrap_or_else(|error| panic!("a verified delivery does not serialize: {error}"));
    let back: VerifiedDelivery =
        serde_json::from_str(&queued).expect("a queued delivery reads back");
    assert_eq!(&back, delivery);
}
