//! Secret hygiene: everything the library logs, at every level, for passing and failing
//! deliveries, holds neither the secret, the expected signature nor the body.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use nextgen_events::WebhookConfig;
use nextgen_events::prelude::*;
use nextgen_events::{Context, sign};
use serde_json::json;
use support::{SECRET, TestServer, now, post};

/// Collects every formatted log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[nextgen_event("charge.captured")]
async fn capture(charge: Charge) -> Result<(), String> {
    if charge.description.as_deref() == Some("fail BODY-MARKER-7f3a") {
        Err("the ledger said no".to_owned())
    } else {
        Ok(())
    }
}

/// Fails with what the event said, as handlers' errors often quote their input.
#[nextgen_event("charge.refunded")]
async fn quote(charge: Charge) -> Result<(), String> {
    Err(format!(
        "refund refused: {}",
        charge.description.unwrap_or_default()
    ))
}

#[nextgen_event("*")]
async fn audit(event: Event<serde_json::Value>) {
    let _ = event;
}

/// Every line logged by any thread of this test binary, at every level; installed once, as
/// the global subscriber (the servers' worker threads log there), and shared by the tests.
fn captured() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init()
                .unwrap();
            captured
        })
        .clone()
}

#[actix_rt::test]
async fn logs_never_hold_the_secret_the_expected_signature_or_the_body() {
    let captured = captured();

    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let url = server.url("/webhook");
    let mut expected_signatures = Vec::new();
    for (id, description) in [
        ("evt_hyg_ok", "ok BODY-MARKER-7f3a"),
        ("evt_hyg_fail", "fail BODY-MARKER-7f3a"),
    ] {
        let body = json!({ "id": id, "object": "event", "created": 1, "livemode": false,
                           "type": "charge.captured",
                           "data": { "object": { "id": "ch_1", "amount": 2000, "amount_refunded": 0,
                                                 "currency": "usd", "paid": true, "status": "succeeded",
                                                 "description": description } } })
        .to_string();
        let signature = sign(body.as_bytes(), SECRET, now());
        expected_signatures.push(signature.split_once(",v1=").unwrap().1.to_owned());
        post(&url, body.clone(), Some(&signature)).await;
        // The same body signed with another secret: the expected signature is ours.
        post(&url, body, Some(&sign(b"x", "whsec_other", now()))).await;
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The logs are there, so their absence below means something.
    assert!(
        logs.contains("evt_hyg_ok") && logs.contains("evt_hyg_fail"),
        "{logs}"
    );
    assert!(logs.contains("signature_mismatch"), "{logs}");
    assert!(logs.contains("the ledger said no"), "{logs}");
    assert!(!logs.contains(SECRET), "the secret was logged");
    assert!(
        !logs.contains(&SECRET["whsec_".len()..]),
        "the secret was logged"
    );
    for signature in &expected_signatures {
        assert!(!logs.contains(signature.as_str()), "a signature was logged");
    }
    assert!(!logs.contains("BODY-MARKER-7f3a"), "the body was logged");
}

#[actix_rt::test]
async fn a_payload_mismatch_names_the_path_and_type_never_the_value() {
    let captured = captured();
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let body =
        json!({ "id": "evt_hyg_mismatch", "object": "event", "created": 1, "livemode": false,
                       "type": "charge.captured",
                       "data": { "object": { "id": "ch_1", "amount": "VALUE-MARKER-91c2",
                                             "amount_refunded": 0, "currency": "usd", "paid": true,
                                             "status": "succeeded" } } })
        .to_string();
    let answer = post(
        &server.url("/webhook"),
        body.clone(),
        Some(&sign(body.as_bytes(), SECRET, now())),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (500, "payload_mismatch"));
    assert!(
        answer.message().contains("data.object.amount"),
        "{}",
        answer.message()
    );
    assert!(
        answer.message().contains("expected i64"),
        "{}",
        answer.message()
    );
    assert!(
        !answer.message().contains("VALUE-MARKER"),
        "{}",
        answer.message()
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("data.object.amount"), "{logs}");
    assert!(
        !logs.contains("VALUE-MARKER"),
        "a value from the body was logged"
    );
    // The line an operator reads names the event NextGen will deliver again.
    assert!(
        logs.lines()
            .any(|line| line.contains("does not fit its type")
                && line.contains("evt_hyg_mismatch")
                && line.contains("data.object.amount")),
        "{logs}"
    );
}

#[actix_rt::test]
async fn a_signature_mismatch_answers_generically_and_logs_the_hints() {
    let captured = captured();
    // A secret pasted with a trailing newline: the hint belongs in the log, not the answer.
    let server = TestServer::start(WebhookConfig::new("whsec_hyg_pasted\n"), |_| {});
    let body = r#"{"id":"evt_hyg_hint","object":"event","type":"x.y","created":1,"livemode":false,"data":{"object":{}}}"#;
    let answer = post(
        &server.url("/webhook"),
        body,
        Some(&sign(body.as_bytes(), "whsec_hyg_pasted", now())),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "signature_mismatch"));
    assert!(
        !answer.message().contains("whitespace"),
        "{}",
        answer.message()
    );
    assert!(
        !answer.message().contains("re-serialized"),
        "{}",
        answer.message()
    );
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("leading or trailing whitespace"), "{logs}");
}

#[actix_rt::test]
async fn each_delivery_logs_its_outcome_at_its_level() {
    // Operators alert on the warning: a delivery whose handlers did not all succeed says so at
    // WARN, one that was fully handled at INFO.
    let captured = captured();
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    for (id, description) in [
        ("evt_hyg_outcome_ok", "fine"),
        ("evt_hyg_outcome_fail", "fail BODY-MARKER-7f3a"),
    ] {
        let body = json!({ "id": id, "object": "event", "created": 1, "livemode": false,
                           "type": "charge.captured",
                           "data": { "object": { "id": "ch_1", "amount": 2000, "amount_refunded": 0,
                                                 "currency": "usd", "paid": true, "status": "succeeded",
                                                 "description": description } } })
        .to_string();
        let signature = sign(body.as_bytes(), SECRET, now());
        post(&server.url("/webhook"), body, Some(&signature)).await;
    }
    // And a request that is refused.
    post(
        &server.url("/webhook"),
        "{}",
        Some(&sign(b"{}", "whsec_forged", now())),
    )
    .await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The answers: a failure of ours (5xx) at ERROR, a refused request (4xx) at WARN.
    let answered =
        |what: &str| -> Vec<&str> { logs.lines().filter(|line| line.contains(what)).collect() };
    let failed = answered("webhook failed");
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|line| line.contains(" ERROR ") && line.contains("status=500")),
        "{failed:#?}"
    );
    let rejected = answered("webhook rejected");
    assert!(
        !rejected.is_empty()
            && rejected
                .iter()
                .all(|line| line.contains(" WARN ") && line.contains("status=400")),
        "{rejected:#?}"
    );
    let outcome = |id: &str| -> Vec<String> {
        logs.lines()
            .filter(|line| line.contains(id) && line.contains("handled"))
            .map(str::to_owned)
            .collect()
    };
    let ok = outcome("evt_hyg_outcome_ok");
    assert!(
        matches!(ok.as_slice(), [line] if line.contains(" INFO ") && line.contains("event handled")),
        "{ok:#?}"
    );
    let failed = outcome("evt_hyg_outcome_fail");
    assert!(
        matches!(failed.as_slice(), [line] if line.contains(" WARN ")
            && line.contains("event not fully handled")
            && line.contains("failed=1")),
        "{failed:#?}"
    );
}

/// Outside text in log fields (the event's id and type in the delivery's span, a handler's
/// error quoting the event) is escaped: an ESC byte cannot drive the terminal that shows the
/// log, a line break cannot forge a log line, U+202E cannot reorder one.
#[actix_rt::test]
async fn outside_text_in_log_fields_is_escaped() {
    let captured = captured();
    let body = json!({ "id": "evt_hyg_\u{1b}[2J_\u{202e}_esc", "object": "event", "created": 1,
                       "livemode": false, "type": "charge.refunded",
                       "data": { "object": { "id": "ch_1", "amount": 2000, "amount_refunded": 2000,
                                             "currency": "usd", "paid": true, "status": "succeeded",
                                             "description": "x\u{1b}]0;owned\u{7}\nFAKE LINE" } } })
    .to_string();
    let report = nextgen_events::testing::run_handlers_unverified(body.as_bytes(), &Context::new())
        .await
        .unwrap();
    assert!(!report.is_success(), "{report:?}");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let ours: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("evt_hyg_"))
        .collect();
    let ours = ours.join("\n");
    assert!(ours.contains(r"evt_hyg_\u{1b}[2J_\u{202e}_esc"), "{ours}");
    assert!(
        ours.contains(r"x\u{1b}]0;owned\u{7}\u{a}FAKE LINE"),
        "{ours}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "an ESC byte reached the log: {logs:?}"
    );
    assert!(
        !logs.contains('\u{202e}'),
        "U+202E reached the log: {logs:?}"
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("FAKE LINE")),
        "a forged line: {logs}"
    );
}
