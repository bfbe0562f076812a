//! The in-process turns of `latest_only` handlers: this process's deliveries of one object wait
//! for each other (`latest_only` tests that), and only those: a delivery of another object
//! does not wait for one being handled. Its own binary: its handler is the only `latest_only`
//! one of `customer.deleted`, and the registry of `latest_only.rs` stays as its tests expect.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::LazyLock;
use std::time::Duration;

use nextgen_events::idempotency::MemoryStore;
use nextgen_events::prelude::*;
use nextgen_events::{Context, DispatchReport, Endpoint, WebhookConfig, WebhookError, sign};
use support::{SECRET, now};
use tokio::sync::Notify;

/// `hold_customer` for `cus_hold_first` is inside its run.
static FIRST_INSIDE: LazyLock<Notify> = LazyLock::new(Notify::new);
/// `hold_customer` ran for `cus_hold_second`.
static SECOND_RAN: LazyLock<Notify> = LazyLock::new(Notify::new);

/// For `cus_hold_first`, holds its object until `cus_hold_second` has been handled.
#[nextgen_event("customer.deleted", latest_only, name = "crm.hold_customer")]
async fn hold_customer(event: Event<Customer>) {
    if event.data.object.id == "cus_hold_first" {
        FIRST_INSIDE.notify_one();
        SECOND_RAN.notified().await;
    } else {
        SECOND_RAN.notify_one();
    }
}

/// Receives a signed `customer.deleted` of `customer` at `endpoint`.
async fn receive(
    endpoint: Endpoint,
    event_id: &'static str,
    customer: &'static str,
) -> Result<DispatchReport, WebhookError> {
    let body = serde_json::json!({
        "id": event_id, "object": "event", "created": 1_700_000_000, "livemode": false,
        "type": "customer.deleted",
        "data": { "object": { "id": customer, "object": "customer", "balance": 0,
            "created": 1_700_000_000 } }
    })
    .to_string()
    .into_bytes();
    let signature = sign(&body, SECRET, now());
    endpoint
        .receive(&body, Some(&signature), &Context::new())
        .await
        .map(|taken| taken.into_report().expect("inline mode: handled now"))
}

#[actix_rt::test]
async fn a_delivery_of_another_object_does_not_wait_for_one_being_handled() {
    let config = WebhookConfig::new(SECRET).with_idempotency_store(MemoryStore::default());
    let endpoint = Endpoint::new(config).unwrap();
    let first = actix_rt::spawn(receive(endpoint.clone(), "evt_hold_1", "cus_hold_first"));
    // The first holds its object (and this process's turn on it) until the second has run.
    tokio::time::timeout(Duration::from_secs(10), FIRST_INSIDE.notified())
        .await
        .expect("the first delivery's handler never ran");
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        receive(endpoint, "evt_hold_2", "cus_hold_second"),
    )
    .await
    .expect("the delivery of another object waited for the one being handled");
    assert!(second.unwrap().is_success());
    let first = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the first delivery never ended")
        .unwrap()
        .unwrap();
    assert!(first.is_success(), "{first:?}");
}
