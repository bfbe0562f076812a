//! At-least-once delivery: redeliveries, concurrent duplicates, leases and the store's bounds.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nextgen_events::idempotency::{Claim, IdempotencyStore, MemoryStore, StoreError, StoreFuture};
use nextgen_events::prelude::*;
use support::{SECRET, TestServer, delivery, post, ran, runs};

#[nextgen_event("refund.updated")]
async fn count_refund(event: Event<Refund>) {
    ran(&event.id, "count_refund");
}

#[nextgen_event("refund.failed")]
async fn steady(event: Event<Refund>) {
    ran(&event.id, "steady");
}

/// Fails the first time it sees an event id, succeeds after.
#[nextgen_event("refund.failed")]
async fn flaky_once(event: Event<Refund>) -> Result<(), String> {
    let first = runs(&event.id, "flaky_once") == 0;
    ran(&event.id, "flaky_once");
    if first {
        Err("first attempt fails".to_owned())
    } else {
        Ok(())
    }
}

#[nextgen_event("customer.updated")]
async fn slow(event: Event<Customer>) {
    ran(&event.id, "slow");
    actix_rt::time::sleep(Duration::from_millis(300)).await;
}

#[actix_rt::test]
async fn a_redelivered_event_is_acknowledged_without_running_its_handlers_again() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let (body, signature) = delivery("evt_idem_twice", "refund.updated");
    for _ in 0..3 {
        let answer = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(runs("evt_idem_twice", "count_refund"), 1);
}

#[actix_rt::test]
async fn only_the_failed_handlers_run_again_on_redelivery() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let (body, signature) = delivery("evt_idem_flaky", "refund.failed");
    let first = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(first.status, 500);
    assert_eq!(first.code(), "handler_failed");
    let second = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(runs("evt_idem_flaky", "steady"), 1);
    assert_eq!(runs("evt_idem_flaky", "flaky_once"), 2);
}

#[actix_rt::test]
async fn concurrent_duplicates_run_the_handler_once() {
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let (body, signature) = delivery("evt_idem_race", "customer.updated");
    let url = server.url("/webhook");
    let (a, b) = tokio::join!(
        post(&url, body.clone(), Some(&signature)),
        post(&url, body.clone(), Some(&signature))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", a.body, b.body);
    let busy = if a.status == 409 { a } else { b };
    assert_eq!(busy.code(), "event_in_progress");
    assert_eq!(runs("evt_idem_race", "slow"), 1);
    // Once the first delivery finished, a redelivery is acknowledged without running it.
    let again = post(&url, body, Some(&signature)).await;
    assert_eq!(again.status, 200);
    assert_eq!(runs("evt_idem_race", "slow"), 1);
}

#[actix_rt::test]
async fn idempotency_can_be_turned_off() {
    let server = TestServer::start(WebhookConfig::new(SECRET).without_idempotency(), |_| {});
    let (body, signature) = delivery("evt_idem_off", "refund.updated");
    for _ in 0..2 {
        let answer = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(runs("evt_idem_off", "count_refund"), 2);
}

/// A store whose backend is down.
struct Unreachable;

impl IdempotencyStore for Unreachable {
    fn claim<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> StoreFuture<'a, Claim> {
        Box::pin(async { Err(StoreError("connection refused".to_owned())) })
    }
    fn complete<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async { Err(StoreError("connection refused".to_owned())) })
    }
    fn release<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async { Err(StoreError("connection refused".to_owned())) })
    }
}

#[actix_rt::test]
async fn an_unreachable_store_is_a_500_and_no_handler_runs() {
    let server = TestServer::start(
        WebhookConfig::new(SECRET).idempotency_store(Unreachable),
        |_| {},
    );
    let (body, signature) = delivery("evt_idem_store_down", "refund.updated");
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), "idempotency_store_failed");
    assert_eq!(runs("evt_idem_store_down", "count_refund"), 0);
}

/// A clock the test moves by hand.
fn manual_clock() -> (Arc<AtomicU64>, impl Fn() -> Instant + Send + Sync + 'static) {
    let start = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let reader = offset.clone();
    (offset, move || {
        start + Duration::from_secs(reader.load(Ordering::SeqCst))
    })
}

#[actix_rt::test]
async fn a_lease_expires_so_a_crashed_run_is_retried() {
    let (clock, now) = manual_clock();
    let store = MemoryStore::new(Duration::from_secs(3600), 100).with_clock(now);
    let lease = Duration::from_secs(60);
    assert_eq!(
        store.claim("evt_1", "h", lease).await.unwrap(),
        Claim::Claimed
    );
    clock.store(59, Ordering::SeqCst);
    assert_eq!(
        store.claim("evt_1", "h", lease).await.unwrap(),
        Claim::InProgress
    );
    // The process died: no complete, no release. After the lease, it may run again.
    clock.store(61, Ordering::SeqCst);
    assert_eq!(
        store.claim("evt_1", "h", lease).await.unwrap(),
        Claim::Claimed
    );
    store.release("evt_1", "h").await.unwrap();
    assert_eq!(
        store.claim("evt_1", "h", lease).await.unwrap(),
        Claim::Claimed
    );
}

#[actix_rt::test]
async fn done_markers_expire_after_the_retention_and_the_oldest_go_first_when_full() {
    let (clock, now) = manual_clock();
    let store = MemoryStore::new(Duration::from_secs(3600), 3).with_clock(now);
    let lease = Duration::from_secs(60);
    for id in ["evt_a", "evt_b", "evt_c"] {
        assert_eq!(store.claim(id, "h", lease).await.unwrap(), Claim::Claimed);
        store.complete(id, "h").await.unwrap();
    }
    assert_eq!(
        store.claim("evt_c", "h", lease).await.unwrap(),
        Claim::AlreadyDone
    );
    // A fourth event evicts the oldest, `evt_a`, and nothing else.
    assert_eq!(
        store.claim("evt_d", "h", lease).await.unwrap(),
        Claim::Claimed
    );
    assert!(store.len() <= 3);
    assert_eq!(
        store.claim("evt_b", "h", lease).await.unwrap(),
        Claim::AlreadyDone
    );
    assert_eq!(
        store.claim("evt_a", "h", lease).await.unwrap(),
        Claim::Claimed
    );

    let (clock2, now2) = manual_clock();
    let store = MemoryStore::new(Duration::from_secs(3600), 100).with_clock(now2);
    store.complete("evt_x", "h").await.unwrap();
    clock2.store(3599, Ordering::SeqCst);
    assert_eq!(
        store.claim("evt_x", "h", lease).await.unwrap(),
        Claim::AlreadyDone
    );
    clock2.store(3601, Ordering::SeqCst);
    assert_eq!(
        store.claim("evt_x", "h", lease).await.unwrap(),
        Claim::Claimed
    );
    drop(clock);
}

#[actix_rt::test]
async fn markers_are_per_handler_and_per_event() {
    let store = MemoryStore::default();
    let lease = Duration::from_secs(60);
    store.complete("evt_1", "a").await.unwrap();
    let mut claims = HashMap::new();
    for (id, handler) in [("evt_1", "a"), ("evt_1", "b"), ("evt_2", "a")] {
        claims.insert(
            (id, handler),
            store.claim(id, handler, lease).await.unwrap(),
        );
    }
    assert_eq!(claims[&("evt_1", "a")], Claim::AlreadyDone);
    assert_eq!(claims[&("evt_1", "b")], Claim::Claimed);
    assert_eq!(claims[&("evt_2", "a")], Claim::Claimed);
}
