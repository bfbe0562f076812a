//! Delivery semantics over real HTTP: one handler at a time, leases renewed while a slow
//! handler runs, dispatch that survives a client hanging up, slow and oversized bodies, and a
//! full store.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nextgen_events::idempotency::MemoryStore;
use nextgen_events::prelude::*;
use nextgen_events::{Context, Endpoint, sign};
use nextgen_events::{WebhookConfig, WebhookError};
use support::{SECRET, TestServer, now, post, ran, raw, read_head, runs, status_of};
use tokio::sync::Notify;

/// The lease of the slow handler's test: the handler runs for three and a half of them.
const SLOW_LEASE: Duration = Duration::from_secs(1);

static SLOW_RUNNING: AtomicUsize = AtomicUsize::new(0);
static SLOW_MOST_AT_ONCE: AtomicUsize = AtomicUsize::new(0);
static SLOW_ENTERED: Notify = Notify::const_new();
static SLOW_RELEASED: Notify = Notify::const_new();

#[nextgen_event("charge.succeeded")]
async fn a_book_charge(event: Event<Charge>) {
    ran(&event.id, "a_book_charge");
}

#[nextgen_event("charge.succeeded")]
async fn b_slow_charge(event: Event<Charge>) {
    let running = SLOW_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    SLOW_MOST_AT_ONCE.fetch_max(running, Ordering::SeqCst);
    ran(&event.id, "b_slow_charge");
    // Runs until the test has seen what it looks for, not for a time a slow machine overruns.
    SLOW_ENTERED.notify_one();
    SLOW_RELEASED.notified().await;
    SLOW_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

#[nextgen_event("charge.failed")]
async fn a_first(event: Event<Charge>) {
    ran(&event.id, "a_first");
}

#[nextgen_event("charge.failed")]
async fn b_fails_once(event: Event<Charge>) -> Result<(), String> {
    let first = runs(&event.id, "b_fails_once") == 0;
    ran(&event.id, "b_fails_once");
    if first {
        Err("the ledger is down".to_owned())
    } else {
        Ok(())
    }
}

static HANGUP_ENTERED: Notify = Notify::const_new();
static HANGUP_FINISHED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[nextgen_event("charge.captured")]
async fn captured_slowly(event: Event<Charge>) {
    ran(&event.id, "captured_slowly");
    if event.id == "evt_hangup" {
        HANGUP_ENTERED.notify_one();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    HANGUP_FINISHED.lock().unwrap().push(event.id.clone());
}

/// A signed delivery of a charge event: `(body, NextGen-Signature)`.
fn charge_delivery(id: &str, event_type: &str) -> (Vec<u8>, String) {
    let body = serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": event_type,
        "data": { "object": { "id": "ch_1", "object": "charge", "amount": 2000,
            "amount_refunded": 0, "currency": "usd", "paid": true, "status": "succeeded" } }
    })
    .to_string()
    .into_bytes();
    let signature = sign(&body, SECRET, now());
    (body, signature)
}

fn spawn_post(
    url: &str,
    body: &[u8],
    signature: &str,
) -> actix_rt::task::JoinHandle<support::Answer> {
    let (url, body, signature) = (url.to_owned(), body.to_vec(), signature.to_owned());
    actix_rt::spawn(async move { post(&url, body, Some(&signature)).await })
}

#[actix_rt::test]
async fn a_handler_slower_than_its_lease_never_runs_twice_at_once() {
    // Two replicas sharing one store; the slow handler runs for several of its leases.
    let store = MemoryStore::default();
    let replica = || {
        WebhookConfig::new(SECRET)
            .with_idempotency_store(store.clone())
            .with_lease(SLOW_LEASE)
    };
    let a = TestServer::start(replica(), |_| {});
    let b = TestServer::start(replica(), |_| {});
    let id = "evt_slow_1";
    let (body, signature) = charge_delivery(id, "charge.succeeded");

    let first = spawn_post(&a.url("/webhook"), &body, &signature);
    SLOW_ENTERED.notified().await;
    // Past several leases, renewed: the other replica finds the slow handler held.
    tokio::time::sleep(SLOW_LEASE * 7 / 2).await;
    let other_replica = post(&b.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(
        (other_replica.status, other_replica.code()),
        (409, "event_in_progress"),
        "{:?}",
        other_replica.body
    );
    // The same replica waits for the running delivery, then finds everything done.
    let same_replica = spawn_post(&a.url("/webhook"), &body, &signature);
    tokio::time::sleep(Duration::from_millis(100)).await;
    SLOW_RELEASED.notify_one();
    let same_replica = same_replica.await.unwrap();
    assert_eq!(same_replica.status, 200, "{:?}", same_replica.body);
    assert_eq!(first.await.unwrap().status, 200);

    assert_eq!(runs(id, "a_book_charge"), 1, "the fast handler ran again");
    assert_eq!(runs(id, "b_slow_charge"), 1, "the slow handler ran again");
    assert_eq!(SLOW_MOST_AT_ONCE.load(Ordering::SeqCst), 1);
    // Long after, on either replica: acknowledged, nothing runs.
    let later = post(&b.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    assert_eq!(runs(id, "b_slow_charge"), 1);
    assert_eq!(store.stats().live_claims, 0);
}

#[actix_rt::test]
async fn a_later_failure_never_runs_an_earlier_success_again() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let id = "evt_later_failure";
    let (body, signature) = charge_delivery(id, "charge.failed");
    let first = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!((first.status, first.code()), (500, "handler_failed"));
    let second = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(runs(id, "a_first"), 1);
    assert_eq!(runs(id, "b_fails_once"), 2);

    // The report says which handler was skipped and which ran.
    let config = WebhookConfig::new(SECRET);
    let id = "evt_later_failure_report";
    let (body, signature) = charge_delivery(id, "charge.failed");
    let failed = Endpoint::new(config.clone())
        .unwrap()
        .receive(&body, Some(&signature), &Context::new())
        .await;
    let Err(WebhookError::HandlersFailed(report)) = failed else {
        panic!("{failed:?}")
    };
    let outcome = |report: &nextgen_events::DispatchReport, suffix: &str| {
        report
            .outcomes
            .iter()
            .find(|outcome| outcome.handler.ends_with(suffix))
            .cloned()
            .unwrap()
    };
    assert!(outcome(&report, "::a_first").result.is_ok());
    assert!(!outcome(&report, "::a_first").skipped);
    assert!(outcome(&report, "::b_fails_once").result.is_err());
    let report = Endpoint::new(config.clone())
        .unwrap()
        .receive(&body, Some(&signature), &Context::new())
        .await
        .unwrap()
        .into_report()
        .unwrap();
    assert!(outcome(&report, "::a_first").skipped, "{report:?}");
    assert!(!outcome(&report, "::b_fails_once").skipped, "{report:?}");
    assert_eq!(runs(id, "a_first"), 1);
    assert_eq!(runs(id, "b_fails_once"), 2);
}

#[actix_rt::test]
async fn a_client_hanging_up_does_not_stop_the_dispatch() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let id = "evt_hangup";
    let (body, signature) = charge_delivery(id, "charge.captured");
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nNextGen-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        body.len()
    );
    let stream = raw(server.addr, &head, &body);
    HANGUP_ENTERED.notified().await;
    // The sender gives up mid-handler.
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    // Its retry comes at once: answered 200 when the first dispatch is done, not after a lease.
    let started = Instant::now();
    let retry = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        HANGUP_FINISHED
            .lock()
            .unwrap()
            .iter()
            .any(|finished| finished == id),
        "the handler was cut off"
    );
    assert_eq!(runs(id, "captured_slowly"), 1);
}

#[actix_rt::test]
async fn a_body_of_exactly_the_limit_is_read_whether_declared_or_chunked() {
    // The limit is the largest body accepted, not the first one refused.
    for (id, chunked) in [
        ("evt_at_limit_declared", false),
        ("evt_at_limit_chunked", true),
    ] {
        let (body, signature) = charge_delivery(id, "charge.captured");
        let server = TestServer::start(
            WebhookConfig::new(SECRET).with_body_limit(body.len()),
            |_| {},
        );
        let (framing, payload) = if chunked {
            let (first, second) = body.split_at(body.len() / 2);
            let mut payload = Vec::new();
            for chunk in [first, second] {
                payload.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                payload.extend_from_slice(chunk);
                payload.extend_from_slice(b"\r\n");
            }
            payload.extend_from_slice(b"0\r\n\r\n");
            ("Transfer-Encoding: chunked".to_owned(), payload)
        } else {
            (format!("Content-Length: {}", body.len()), body.clone())
        };
        let head = format!(
            "POST /webhook HTTP/1.1\r\nHost: {}\r\nNextGen-Signature: {signature}\r\n{framing}\r\n\r\n",
            server.addr
        );
        let addr = server.addr;
        let answer =
            tokio::task::spawn_blocking(move || read_head(&mut raw(addr, &head, &payload)))
                .await
                .unwrap();
        assert_eq!(status_of(&answer), 200, "{id}: {answer}");
        assert_eq!(runs(id, "captured_slowly"), 1, "{id}");
    }
}

#[actix_rt::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let server = TestServer::start(WebhookConfig::new(SECRET).with_body_limit(1024), |_| {});
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: {}\r\nNextGen-Signature: t={},v1={}\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.addr,
        now(),
        "0".repeat(64)
    );
    let chunk = format!("200\r\n{}\r\n", "x".repeat(512));
    let addr = server.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = raw(addr, &head, chunk.as_bytes());
        for _ in 0..3 {
            // The server may already have answered and closed: later chunks may not go out.
            let _ = stream.write_all(chunk.as_bytes());
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        read_head(&mut stream)
    })
    .await
    .unwrap();
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
}

#[actix_rt::test]
async fn a_dropped_request_future_does_not_stop_the_dispatch() {
    let endpoint = Endpoint::new(WebhookConfig::new(SECRET)).unwrap();
    let id = "evt_dropped_future";
    let (body, signature) = charge_delivery(id, "charge.captured");
    // The caller gives up mid-handler: its future is dropped.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        endpoint.receive(&body, Some(&signature), &Context::new()),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the handler takes longer than the caller waits"
    );
    // A redelivery to the same endpoint waits for the detached dispatch and finds it done.
    let report = endpoint
        .receive(&body, Some(&signature), &Context::new())
        .await
        .unwrap()
        .into_report()
        .unwrap();
    assert!(
        report.outcomes.iter().all(|outcome| outcome.skipped),
        "{report:?}"
    );
    assert!(
        HANGUP_FINISHED
            .lock()
            .unwrap()
            .iter()
            .any(|finished| finished == id)
    );
    assert_eq!(runs(id, "captured_slowly"), 1);
}
