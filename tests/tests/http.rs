//! End-to-end tests over real HTTP, one table for both integrations: each case runs against
//! a real actix-web server and (with the `axum` feature) a real axum server on a loopback port,
//! with a real client, so both answer every delivery alike.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use nextgen_events::WebhookConfig;
use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore};
use nextgen_events::prelude::*;
use nextgen_events::sign;
use serde_json::{Value, json};
use support::{Framework, SECRET, TestServer, now, post, raw, read_head, status_of};

/// What the handlers saw: `(event id, what happened)`.
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

#[nextgen_event("charge.succeeded")]
async fn on_charge(event: Event<Charge>) {
    let charge = event.data.object;
    record(
        &event.id,
        format!("charge {} {}", charge.amount, charge.currency),
    );
}

/// Fails or panics on request, through the charge's description.
#[nextgen_event("charge.failed")]
async fn flaky(event: Event<Charge>) -> Result<(), String> {
    match event.data.object.description.as_deref() {
        Some("fail") => Err("the ledger is unavailable".to_owned()),
        Some("panic") => panic!("handler blew up on purpose"),
        _ => {
            record(&event.id, "flaky ok".to_owned());
            Ok(())
        }
    }
}

struct Counter(AtomicUsize);

#[nextgen_event("invoice.paid")]
async fn count_invoices(invoice: Invoice, counter: web::Data<Counter>) {
    let total = counter.0.fetch_add(1, Ordering::SeqCst) + 1;
    record(&invoice.id, format!("invoice counted, total {total}"));
}

struct NeverRegistered;

#[nextgen_event("invoice.payment_failed")]
async fn needs_unregistered(_invoice: Invoice, _data: web::Data<NeverRegistered>) {}

#[nextgen_event("*")]
async fn audit(event: Event<Value>) {
    record(&event.id, format!("audit {}", event.event_type));
}

fn envelope(id: &str, event_type: &str, object: Value) -> Vec<u8> {
    json!({
        "id": id, "object": "event", "api_version": "2026-04-17", "created": 1_713_745_200,
        "livemode": false, "type": event_type, "pending_webhooks": 1,
        "data": { "object": object }
    })
    .to_string()
    .into_bytes()
}

/// The `data.object` of the shared sample of `event_type`.
fn sample_object(event_type: &str) -> Value {
    nextgen_events::testing::sample(event_type).expect("a catalog type")["data"]["object"].take()
}

/// The reference's charge (2000 usd) with `description`, which `flaky` obeys.
fn charge(description: &str) -> Value {
    let mut charge = sample_object("charge.succeeded");
    charge["description"] = json!(description);
    charge
}

fn invoice(id: &str) -> Value {
    let mut invoice = sample_object("invoice.paid");
    invoice["id"] = json!(id);
    invoice
}

/// The server's "now" in the tests that inject a clock, so no case depends on the wall clock.
const FIXED_NOW: u64 = 1_713_745_200;

async fn a_signed_charge_reaches_its_typed_handler(framework: Framework) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let body = envelope(
        &framework.id("evt_http_charge"),
        "charge.succeeded",
        charge("ok"),
    );
    let answer = post(
        &server.url("/webhook"),
        body.clone(),
        Some(&sign(&body, SECRET, now())),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({ "received": true }));
    assert_eq!(
        seen(&framework.id("evt_http_charge")),
        ["charge 2000 usd", "audit charge.succeeded"]
    );
}

async fn each_signature_failure_is_a_400_with_its_own_code(framework: Framework) {
    // The server reads a fixed clock: signed with the wall clock, the "+301 s" case became
    // exactly +300 s (accepted, 200) whenever the second ticked between signing and verifying.
    let now = FIXED_NOW;
    let server = framework.start(WebhookConfig::new(SECRET).with_clock(|| FIXED_NOW));
    let url = server.url("/webhook");
    let body = envelope(
        &framework.id("evt_http_forged"),
        "charge.succeeded",
        charge("ok"),
    );
    let good = sign(&body, SECRET, now);
    let v1 = good.split_once(",v1=").unwrap().1;
    let cases: [(Option<String>, &str); 7] = [
        (None, "signature_missing"),
        (Some(format!("t=abc,v1={v1}")), "signature_malformed"),
        (Some(format!("t={now},v1=zz")), "signature_malformed"),
        (Some(format!("t={now},v0={v1}")), "signature_no_v1"),
        (
            Some(sign(&body, SECRET, now - 301)),
            "timestamp_outside_tolerance",
        ),
        (
            Some(sign(&body, SECRET, now + 301)),
            "timestamp_outside_tolerance",
        ),
        (
            Some(sign(&body, "whsec_someone_else", now)),
            "signature_mismatch",
        ),
    ];
    for (signature, code) in cases {
        let answer = post(&url, body.clone(), signature.as_deref()).await;
        assert_eq!(answer.status, 400, "{signature:?}: {:?}", answer.body);
        assert_eq!(answer.code(), code, "{signature:?}");
        assert_eq!(answer.body["error"]["type"], "invalid_request_error");
        assert!(!answer.message().contains(SECRET));
        assert!(
            !answer.message().contains(v1),
            "the expected signature leaked"
        );
    }
    assert!(
        seen(&framework.id("evt_http_forged")).is_empty(),
        "a forged delivery reached a handler"
    );
}

async fn the_configured_tolerance_decides_over_http_in_both_directions(framework: Framework) {
    // Below and above the 300 s default: a tolerance setting that is ignored fails one of them.
    for n in [10_u64, 1000] {
        let config = WebhookConfig::new(SECRET)
            .with_tolerance(std::time::Duration::from_secs(n))
            .with_clock(|| FIXED_NOW);
        let server = framework.start(config);
        let url = server.url("/webhook");
        let cases = [
            (FIXED_NOW - n, "past", 200),
            (FIXED_NOW + n, "future", 200),
            (FIXED_NOW - n - 1, "past", 400),
            (FIXED_NOW + n + 1, "future", 400),
        ];
        for (timestamp, side, status) in cases {
            let id = framework.id(&format!("evt_http_tolerance_{n}_{side}_{status}"));
            let body = envelope(&id, "charge.succeeded", charge("ok"));
            let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, timestamp))).await;
            let what = format!("tolerance {n} s, signed {side} at {timestamp} (now {FIXED_NOW})");
            assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
            if status == 200 {
                assert_eq!(answer.body, json!({ "received": true }), "{what}");
                assert_eq!(
                    seen(&id),
                    ["charge 2000 usd", "audit charge.succeeded"],
                    "{what}"
                );
            } else {
                assert_eq!(answer.code(), "timestamp_outside_tolerance", "{what}");
                assert!(
                    answer
                        .message()
                        .contains(&format!("{} s in the {side}", n + 1)),
                    "{what}: {}",
                    answer.message()
                );
                assert!(
                    answer.message().contains(&format!("tolerance of {n} s")),
                    "{what}: {}",
                    answer.message()
                );
                assert!(
                    seen(&id).is_empty(),
                    "{what}: a rejected delivery ran handlers"
                );
            }
        }
    }
}

async fn a_body_over_the_limit_is_a_413(framework: Framework) {
    let server = framework.start(WebhookConfig::new(SECRET).with_body_limit(1024));
    let body = envelope(
        &framework.id("evt_http_big"),
        "charge.succeeded",
        charge(&"x".repeat(2048)),
    );
    let answer = post(
        &server.url("/webhook"),
        body.clone(),
        Some(&sign(&body, SECRET, now())),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.code(), "body_too_large");
    assert!(seen(&framework.id("evt_http_big")).is_empty());
}

async fn a_declared_oversized_body_is_refused_before_it_is_sent(framework: Framework) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let addr = server.addr;
    let signature = sign(b"{}", SECRET, now());
    // Only the head goes out: the answer must come without the 10 MiB ever being sent.
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nNextGen-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    let response = web::block(move || {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        stream.write_all(head.as_bytes())?;
        let mut response = vec![0; 4096];
        let read = stream.read(&mut response)?;
        response.truncate(read);
        std::io::Result::Ok(String::from_utf8_lossy(&response).into_owned())
    })
    .await
    .unwrap()
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("body_too_large"), "{response}");
}

async fn bodies_that_are_not_events_are_a_400(framework: Framework) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let url = server.url("/webhook");
    for (body, code) in [
        (&b"not json at all"[..], "invalid_json"),
        (b"[1, 2, 3]", "invalid_event"),
        (
            br#"{"id":"evt_x","type":"charge.succeeded","created":1,"livemode":false}"#,
            "invalid_event",
        ),
    ] {
        let answer = post(&url, body, Some(&sign(body, SECRET, now()))).await;
        assert_eq!(answer.status, 400, "{:?}", answer.body);
        assert_eq!(answer.code(), code);
    }
}

async fn a_payload_that_does_not_fit_is_a_500_naming_the_path_and_runs_nothing(
    framework: Framework,
) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let mut object = charge("ok");
    object["amount"] = json!("20");
    let body = envelope(&framework.id("evt_http_drift"), "charge.succeeded", object);
    let answer = post(
        &server.url("/webhook"),
        body.clone(),
        Some(&sign(&body, SECRET, now())),
    )
    .await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), "payload_mismatch");
    assert!(
        answer.message().contains("data.object.amount"),
        "{}",
        answer.message()
    );
    assert!(
        seen(&framework.id("evt_http_drift")).is_empty(),
        "a handler ran on a payload that did not fit"
    );
}

async fn an_unknown_event_type_is_acknowledged_and_reaches_only_wildcard_handlers(
    framework: Framework,
) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let body = envelope(
        &framework.id("evt_http_unknown"),
        "payout.teleported",
        json!({ "id": "po_1" }),
    );
    let answer = post(
        &server.url("/webhook"),
        body.clone(),
        Some(&sign(&body, SECRET, now())),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({ "received": true }));
    assert_eq!(
        seen(&framework.id("evt_http_unknown")),
        ["audit payout.teleported"]
    );
}

async fn a_failing_handler_is_a_500_and_a_panicking_one_does_not_take_the_server_down(
    framework: Framework,
) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let url = server.url("/webhook");

    let body = envelope(
        &framework.id("evt_http_fail"),
        "charge.failed",
        charge("fail"),
    );
    let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, now()))).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), "handler_failed");
    assert_eq!(answer.body["error"]["type"], "api_error");
    // The other handlers still ran.
    assert_eq!(
        seen(&framework.id("evt_http_fail")),
        ["audit charge.failed"]
    );

    let body = envelope(
        &framework.id("evt_http_panic"),
        "charge.failed",
        charge("panic"),
    );
    let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, now()))).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), "handler_failed");

    let body = envelope(
        &framework.id("evt_http_after_panic"),
        "charge.failed",
        charge("ok"),
    );
    let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, now()))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        seen(&framework.id("evt_http_after_panic")),
        ["flaky ok", "audit charge.failed"]
    );
}

async fn other_methods_are_a_405_and_secrets_never_reach_a_response(framework: Framework) {
    let server = framework.start(WebhookConfig::new(SECRET));
    let response = reqwest::get(server.url("/webhook")).await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let answer = support::answer(response).await;
    assert_eq!(answer.code(), "method_not_allowed");
    assert!(!answer.body.to_string().contains(SECRET));
}

async fn an_object_json_values_cannot_hold_is_drift_for_every_event_type(framework: Framework) {
    let server = framework.start(WebhookConfig::new(SECRET));
    // Valid JSON, but beyond what `serde_json::Value` holds: the `*` handler taking a `Value`
    // matches every event, so even a type outside the catalog is not acknowledged without it.
    let huge = framework.id("evt_http_huge");
    let body = format!(
        r#"{{"id":"{huge}","object":"event","type":"payout.teleported","created":1,"livemode":false,"data":{{"object":{{"amount":1e400}}}}}}"#
    );
    let body = body.as_bytes();
    for _ in 0..2 {
        // The second time too: nothing ran, nothing is remembered as done.
        let signature = sign(body, SECRET, now());
        let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
        assert_eq!(answer.status, 500, "{:?}", answer.body);
        assert_eq!(answer.code(), "payload_mismatch");
        assert!(
            answer.body.to_string().contains("data.object.amount"),
            "{:?}",
            answer.body
        );
    }
    assert!(seen(&huge).is_empty());

    // A catalog event that does not fit is API drift: 500, and the sender keeps it.
    let body = format!(
        r#"{{"id":"{huge}_2","object":"event","type":"charge.succeeded","created":1,"livemode":false,"data":{{"object":{{"amount":1e400}}}}}}"#
    );
    let body = body.as_bytes();
    let answer = post(
        &server.url("/webhook"),
        body,
        Some(&sign(body, SECRET, now())),
    )
    .await;
    assert_eq!(answer.status, 500, "{:?}", answer.body);
    assert_eq!(answer.code(), "payload_mismatch");

    // A catalog event whose typed payload fits, with a field beyond what the `*` handlers can be
    // given: not acknowledged either, and no handler runs, so the sender keeps it for all of them.
    let body = format!(
        r#"{{"id":"{huge}_3","object":"event","type":"charge.succeeded","created":1,"livemode":false,"data":{{"object":{{"id":"ch_1","object":"charge","amount":2000,"amount_refunded":0,"currency":"usd","paid":true,"status":"succeeded","risk_score":1e400}}}}}}"#
    );
    let body = body.as_bytes();
    let answer = post(
        &server.url("/webhook"),
        body,
        Some(&sign(body, SECRET, now())),
    )
    .await;
    assert_eq!(answer.status, 500, "{:?}", answer.body);
    assert_eq!(answer.code(), "payload_mismatch");
    assert!(
        seen(&format!("{huge}_3")).is_empty(),
        "{:?}",
        seen(&format!("{huge}_3"))
    );
}

async fn a_stalled_body_is_408_within_the_timeout_and_the_connection_closed(framework: Framework) {
    let timeout = Duration::from_millis(500);
    let server = framework.start(WebhookConfig::new(SECRET).with_body_timeout(timeout));
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {}\r\nNextGen-Signature: t={},v1={}\r\nContent-Length: 100000\r\n\r\n",
        server.addr,
        now(),
        "0".repeat(64)
    );
    let addr = server.addr;
    let (answer, waited, closed) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = raw(addr, &head, b"{\"id\":");
        let answer = read_head(&mut stream);
        let waited = started.elapsed();
        // Then the server closes the connection: reading ends.
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest).is_ok();
        (answer, waited, closed)
    })
    .await
    .unwrap();
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(waited >= timeout, "answered after {waited:?}");
    assert!(waited < timeout * 4, "answered after {waited:?}");
    assert!(closed, "the connection was left open");
}

async fn a_store_full_of_live_claims_is_503_with_retry_after(framework: Framework) {
    let store = MemoryStore::new(Duration::from_secs(3600), 1);
    let Claim::Claimed(_) = store
        .claim("evt_elsewhere", "h", Duration::from_secs(30))
        .await
        .unwrap()
    else {
        panic!("an empty store refused a claim")
    };
    let server = framework.start(WebhookConfig::new(SECRET).with_idempotency_store(store));
    let id = framework.id("evt_http_store_full");
    let body = envelope(&id, "charge.failed", charge("ok"));
    let response = reqwest::Client::new()
        .post(server.url("/webhook"))
        .header("NextGen-Signature", sign(&body, SECRET, now()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let answer = support::answer(response).await;
    assert_eq!(answer.code(), "idempotency_store_full");
    assert_eq!(answer.body["error"]["type"], "api_error");
    assert!(seen(&id).is_empty(), "a handler ran without its claim");
}

/// Runs each case of the table once per integration: `actix::case` and `axum::case`.
macro_rules! table {
    ($($case:ident),* $(,)?) => {
        mod actix {
            $(
                #[actix_rt::test]
                async fn $case() {
                    super::$case(super::Framework::Actix).await;
                }
            )*
        }

        #[cfg(feature = "axum")]
        mod axum {
            $(
                #[actix_rt::test]
                async fn $case() {
                    super::$case(super::Framework::Axum).await;
                }
            )*
        }
    };
}

table!(
    a_signed_charge_reaches_its_typed_handler,
    each_signature_failure_is_a_400_with_its_own_code,
    the_configured_tolerance_decides_over_http_in_both_directions,
    a_body_over_the_limit_is_a_413,
    a_declared_oversized_body_is_refused_before_it_is_sent,
    bodies_that_are_not_events_are_a_400,
    a_payload_that_does_not_fit_is_a_500_naming_the_path_and_runs_nothing,
    an_unknown_event_type_is_acknowledged_and_reaches_only_wildcard_handlers,
    a_failing_handler_is_a_500_and_a_panicking_one_does_not_take_the_server_down,
    other_methods_are_a_405_and_secrets_never_reach_a_response,
    an_object_json_values_cannot_hold_is_drift_for_every_event_type,
    a_stalled_body_is_408_within_the_timeout_and_the_connection_closed,
    a_store_full_of_live_claims_is_503_with_retry_after,
);

// actix-web only: `web::Data` handler arguments and the extractor (axum's are in `axum.rs`).

#[actix_rt::test]
async fn handlers_get_app_data_and_missing_app_data_is_a_500() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |app| {
        app.app_data(web::Data::new(Counter(AtomicUsize::new(0))));
    });
    let url = server.url("/webhook");
    for (event_id, invoice_id) in [("evt_http_inv_1", "in_1"), ("evt_http_inv_2", "in_2")] {
        let body = envelope(event_id, "invoice.paid", invoice(invoice_id));
        let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, now()))).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(seen("in_1"), ["invoice counted, total 1"]);
    assert_eq!(seen("in_2"), ["invoice counted, total 2"]);

    let body = envelope(
        "evt_http_missing",
        "invoice.payment_failed",
        invoice("in_3"),
    );
    let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, now()))).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), "handler_failed");
}

/// A route of one's own with the `VerifiedEvent` extractor, as the `actix` module shows it.
async fn own_route(
    event: nextgen_events::actix::VerifiedEvent,
    request: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, nextgen_events::WebhookError> {
    let taken = event.handle(&request).await?;
    let handlers = taken.report().map_or(0, |report| report.outcomes.len());
    record(&event.event_id, format!("own route: {handlers} handlers"));
    let delivery = event.into_delivery();
    record(
        &delivery.event_id,
        format!("queued {}", delivery.event_type),
    );
    Ok(nextgen_events::actix::received())
}

#[actix_rt::test]
async fn the_verified_event_extractor_verifies_dispatches_and_hands_over_the_delivery() {
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new()
            .app_data(web::Data::new(
                nextgen_events::Endpoint::new(WebhookConfig::new(SECRET)).unwrap(),
            ))
            .app_data(web::Data::new(Counter(AtomicUsize::new(0))))
            .route("/own", web::post().to(own_route))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}/own", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let body = envelope("evt_http_own", "charge.succeeded", charge("ok"));
    let answer = post(&url, body.clone(), Some(&sign(&body, SECRET, now()))).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body, json!({ "received": true }));
    assert_eq!(
        seen("evt_http_own"),
        [
            "charge 2000 usd",
            "audit charge.succeeded",
            "own route: 2 handlers",
            "queued charge.succeeded"
        ]
    );

    // A delivery that is not genuine never reaches the route.
    let body = envelope("evt_http_own_forged", "charge.succeeded", charge("ok"));
    let answer = post(
        &url,
        body.clone(),
        Some(&sign(&body, "whsec_forged", now())),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "signature_mismatch"));
    assert!(seen("evt_http_own_forged").is_empty());
    handle.stop(false).await;
}
