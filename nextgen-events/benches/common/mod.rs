//! What the webhook benchmarks share: the delivery, its handler and the floor.

#![allow(dead_code)]

use std::hint::black_box;

use futures_util::FutureExt;
use hmac::{Hmac, Mac};
use nextgen_events::prelude::*;
use nextgen_events::testing::{sample, sample_body};
use nextgen_events::{Context, Endpoint, Received, sign};
use serde_json::json;
use sha2::Sha256;

pub const SECRET: &str = "whsec_bench_secret";
pub const T: u64 = 1_713_745_200;
/// Deliveries made, then timed, at a time in `nextgen_dedup`: about 64 KiB of bodies.
pub const ROUND: u64 = 48;

#[nextgen_event("charge.succeeded")]
async fn noop(charge: Charge) {
    black_box(charge);
}

/// The shared `charge.succeeded` sample (`nextgen_events::testing::sample`) as a delivery of
/// about `size` bytes, serialized in NextGen's field order; the bulk, when there is one, is in
/// `metadata` and `description` as real integrations put it there.
pub fn charge_event(event_id: &str, size: usize) -> Vec<u8> {
    let mut event = sample("charge.succeeded").unwrap();
    event["id"] = json!(event_id);
    event["created"] = json!(T);
    event["request"] =
        json!({ "id": "req_8bN2mQ4x", "idempotency_key": "5d3c9a0e-0a8f-4c1e-9b6a-2f1e7d4c3b2a" });
    // Not read by our `Charge`; async-stripe's `Charge` requires it (the peer row).
    event["data"]["object"]["billing_details"] = json!({ "address": null,
        "email": "jane.doe@example.com", "name": "Jane Doe", "phone": null });
    if !event["data"]["object"]["metadata"].is_object() {
        event["data"]["object"]["metadata"] = json!({});
    }
    let object = &mut event["data"]["object"];
    let mut index = 0;
    while event_len(object) + 200 < size {
        object["metadata"][format!("line_item_{index:04}")] = json!(format!(
            "sku_{index:06} x{} @ {} usd",
            index % 7 + 1,
            100 + index * 13
        ));
        index += 1;
        if index % 50 == 0 {
            let description = object["description"].as_str().unwrap().to_owned();
            object["description"] = json!(format!(
                "{description}; bundle {index} of the spring catalogue"
            ));
        }
    }
    let body = sample_body(&event);
    assert!(body.len() <= size + 256, "{} for {size}", body.len());
    body
}

fn event_len(object: &serde_json::Value) -> usize {
    serde_json::to_vec(object).unwrap().len() + 400
}

/// The floor, written directly against `hmac`, `sha2`, `hex` and `serde_json`.
pub fn baseline(body: &[u8], header: &str) -> Event<Charge> {
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let mut expected = [0u8; 32];
    hex::decode_to_slice(v1, &mut expected).unwrap();
    mac.verify_slice(&expected).unwrap();
    serde_json::from_slice(body).unwrap()
}

/// One delivery taken by `endpoint` as the route takes it, in place (no runtime: the handler
/// finishes within its first poll).
pub fn take(endpoint: &Endpoint, body: &[u8], header: &str, context: &Context<'_>) -> Received {
    endpoint
        .receive(body, Some(header), context)
        .now_or_never()
        .unwrap()
        .unwrap()
}

/// A signed 1 KiB delivery of a new event: `evt_` and the next of `next_id`.
pub fn new_delivery(next_id: &mut u64) -> (Vec<u8>, String) {
    *next_id += 1;
    let body = charge_event(&format!("evt_{next_id:024}"), 1024);
    let header = sign(&body, SECRET, T);
    (body, header)
}
