//! Hostile and broken requests against the real server: each gets its expected status and
//! error code, none a 5xx, and the server keeps serving.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nextgen_events::WebhookConfig;
use nextgen_events::prelude::*;
use nextgen_events::sign;
use serde_json::json;
use support::{SECRET, TestServer, post};

#[nextgen_event("charge.succeeded")]
async fn on_charge(_charge: Charge) {}

const T: u64 = 1_713_745_200;

fn event_body() -> Vec<u8> {
    json!({ "id": "evt_hostile", "object": "event", "created": T, "livemode": false,
            "type": "charge.succeeded",
            "data": { "object": { "id": "ch_1", "object": "charge", "amount": 2000,
                                  "amount_refunded": 0, "currency": "usd", "paid": true,
                                  "status": "succeeded" } } })
    .to_string()
    .into_bytes()
}

/// One hostile request: body, `NextGen-Signature` (None: absent), and what must come back.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    signature: Option<String>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    body: Vec<u8>,
    signature: Option<String>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        body,
        signature,
        status,
        code,
    }
}

fn signed(name: &'static str, body: &[u8], status: u16, code: &'static str) -> Case {
    case(
        name,
        body.to_vec(),
        Some(sign(body, SECRET, T)),
        status,
        code,
    )
}

fn cases() -> Vec<Case> {
    let body = event_body();
    let good = sign(&body, SECRET, T);
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    let malformed = "signature_malformed";
    let mut pretty =
        serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&body).unwrap())
            .unwrap();
    pretty.push(b'\n');
    vec![
        case("no signature header", body.clone(), None, 400, "signature_missing"),
        case("empty body", Vec::new(), Some(sign(b"", SECRET, T)), 400, "invalid_json"),
        case("header with only t", body.clone(), Some(format!("t={T}")), 400, "signature_no_v1"),
        case("t and another scheme only", body.clone(), Some(format!("t={T},v0={v1}")), 400, "signature_no_v1"),
        case("t not a number", body.clone(), Some(format!("t=soon,v1={v1}")), 400, malformed),
        case("t with a plus sign", body.clone(), Some(format!("t=+{T},v1={v1}")), 400, malformed),
        case("t negative", body.clone(), Some(format!("t=-{T},v1={v1}")), 400, malformed),
        case("t overflowing 64 bits", body.clone(), Some(format!("t=99999999999999999999999,v1={v1}")), 400, malformed),
        case("two timestamps", body.clone(), Some(format!("t={T},t={T},v1={v1}")), 400, malformed),
        case("v1 not hex", body.clone(), Some(format!("t={T},v1={}", "zz".repeat(32))), 400, malformed),
        case("v1 of the wrong length", body.clone(), Some(format!("t={T},v1={}", &v1[..62])), 400, malformed),
        case("element without =", body.clone(), Some(format!("t={T},v1,{v1}")), 400, malformed),
        case("17 v1 entries", body.clone(), Some(format!("t={T}{}", format!(",v1={v1}").repeat(17))), 400, malformed),
        case("1,000 v1 entries", body.clone(), Some(format!("t={T}{}", ",v1=00".repeat(1000))), 400, malformed),
        case("a 100 KiB header", body.clone(), Some(format!("t={T},v1={v1},x={}", "a".repeat(100 * 1024))), 400, malformed),
        case("signed with another secret", body.clone(), Some(sign(&body, "whsec_attacker", T)), 400, "signature_mismatch"),
        case("signature over a re-serialized body", pretty, Some(good.clone()), 400, "signature_mismatch"),
        case("timestamp 301 s old", body.clone(), Some(sign(&body, SECRET, T - 301)), 400, "timestamp_outside_tolerance"),
        case("timestamp 301 s ahead", body.clone(), Some(sign(&body, SECRET, T + 301)), 400, "timestamp_outside_tolerance"),
        signed("a JSON array", b"[{\"id\":\"evt_1\"}]", 400, "invalid_event"),
        signed("a JSON string", b"\"charge.succeeded\"", 400, "invalid_event"),
        signed("an event without data", br#"{"id":"evt_1","object":"event","type":"charge.succeeded","created":1,"livemode":false}"#, 400, "invalid_event"),
        signed("an id that is a number", br#"{"id":1,"type":"charge.succeeded","created":1,"livemode":false,"data":{"object":{}}}"#, 400, "invalid_event"),
        signed("a truncated body", &body[..body.len() / 2], 400, "invalid_json"),
        signed("invalid UTF-8", b"{\"id\":\"evt_\xff\xfe\",\"type\":\"x\"}", 400, "invalid_json"),
        signed("invalid UTF-8 in a member nobody reads", b"{\"id\":\"evt_1\",\"object\":\"ev\xffent\",\"type\":\"x.y\",\"created\":1,\"livemode\":false,\"data\":{\"object\":{}}}", 400, "invalid_json"),
        signed("trailing garbage", &[&body[..], b"}}"].concat(), 400, "invalid_json"),
        signed("10 MiB body", &vec![b' '; 10 * 1024 * 1024], 413, "body_too_large"),
    ]
}

#[actix_rt::test]
async fn every_hostile_request_gets_its_own_answer_and_the_server_keeps_serving() {
    let clock = Arc::new(AtomicU64::new(T));
    let reader = clock.clone();
    let config = WebhookConfig::new(SECRET).with_clock(move || reader.load(Ordering::SeqCst));
    let server = TestServer::start(config, |_| {});
    let url = server.url("/webhook");

    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in &cases {
        let answer = post(&url, case.body.clone(), case.signature.as_deref()).await;
        if answer.status != case.status || answer.code() != case.code {
            failures.push(format!(
                "{}: expected {} {}, got {} {:?}",
                case.name, case.status, case.code, answer.status, answer.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A valid delivery is accepted; replayed after the window, the same bytes are not.
    let body = event_body();
    let signature = sign(&body, SECRET, T);
    let answer = post(&url, body.clone(), Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    clock.store(T + 301, Ordering::SeqCst);
    let replay = post(&url, body.clone(), Some(&signature)).await;
    assert_eq!(
        (replay.status, replay.code()),
        (400, "timestamp_outside_tolerance")
    );

    // Content-Type is not part of what is signed: a genuine delivery is accepted whatever it says.
    let signature = sign(&body, SECRET, T + 301);
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "text/plain")
        .header("NextGen-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // Wrong methods.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = reqwest::Client::new()
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        let answer = support::answer(response).await;
        assert_eq!(
            (answer.status, answer.code()),
            (405, "method_not_allowed"),
            "{method}"
        );
    }
}
