//! At-least-once delivery: redeliveries, concurrent duplicates, leases and the store's bounds.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nextgen_events::WebhookConfig;
use nextgen_events::idempotency::{
    Claim, IdempotencyStore, MemoryStore, ObjectClaim, ObjectClaims, OwnerToken, StoreError,
    StoreFuture, Watermark,
};
use nextgen_events::prelude::*;
use nextgen_tests::contract::StoreUnderTest;
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

/// Entered by the first delivery of `evt_idem_race`; held until the test lets it go.
static RACE_ENTERED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static RACE_RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[nextgen_event("customer.updated")]
async fn slow(event: Event<Customer>) {
    ran(&event.id, "slow");
    if event.id == "evt_idem_race" {
        RACE_ENTERED.notify_one();
        RACE_RELEASE.notified().await;
    }
}

/// Entered by each delivery of `evt_idem_turns` that runs it, held until the test lets it go;
/// fails the first time.
static TURN_ENTERED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static TURN_RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[nextgen_event("customer.deleted")]
async fn held_turn(event: Event<Customer>) -> Result<(), String> {
    let first = runs(&event.id, "held_turn") == 0;
    ran(&event.id, "held_turn");
    TURN_ENTERED.notify_one();
    TURN_RELEASE.notified().await;
    if first {
        Err("first attempt fails".to_owned())
    } else {
        Ok(())
    }
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
    let first = actix_rt::spawn({
        let (url, body, signature) = (url.clone(), body.clone(), signature.clone());
        async move { post(&url, body, Some(&signature)).await }
    });
    // The first delivery is inside the handler: the duplicate certainly overlaps it.
    RACE_ENTERED.notified().await;
    let second = actix_rt::spawn({
        let (url, body, signature) = (url.clone(), body.clone(), signature.clone());
        async move { post(&url, body, Some(&signature)).await }
    });
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !second.is_finished(),
        "the duplicate waits for the running delivery"
    );
    RACE_RELEASE.notify_one();
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    // In one process the duplicate waits its turn, then finds the handler done.
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "{:?} {:?}",
        a.body,
        b.body
    );
    assert_eq!(runs("evt_idem_race", "slow"), 1);
    let again = post(&url, body, Some(&signature)).await;
    assert_eq!(again.status, 200);
    assert_eq!(runs("evt_idem_race", "slow"), 1);
}

#[actix_rt::test]
async fn duplicates_keep_taking_turns_after_the_first_delivery_hands_over() {
    // A fails and hands the event over to B, which was waiting and now runs the handler again;
    // C, arriving while B runs, waits for B too (and then finds the handler done) instead of
    // finding B's claim and being refused.
    let server = TestServer::start(WebhookConfig::new(SECRET), |_| {});
    let (body, signature) = delivery("evt_idem_turns", "customer.deleted");
    let url = server.url("/webhook");
    let send = || {
        let (url, body, signature) = (url.clone(), body.clone(), signature.clone());
        actix_rt::spawn(async move { post(&url, body, Some(&signature)).await })
    };
    let a = send();
    TURN_ENTERED.notified().await;
    let b = send();
    // B is waiting for A's turn when A ends.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_finished(), "B waits for A");
    TURN_RELEASE.notify_one();
    TURN_ENTERED.notified().await;
    let c = send();
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert!(!c.is_finished(), "C waits for B");
    TURN_RELEASE.notify_one();
    let (a, b, c) = (a.await.unwrap(), b.await.unwrap(), c.await.unwrap());
    assert_eq!(
        (a.status, b.status, c.status),
        (500, 200, 200),
        "{:?} {:?} {:?}",
        a.body,
        b.body,
        c.body
    );
    assert_eq!(runs("evt_idem_turns", "held_turn"), 2);
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

fn refused<'a, T: Send + 'a>() -> StoreFuture<'a, T> {
    Box::pin(async { Err(StoreError::Unavailable("connection refused".to_owned())) })
}

impl IdempotencyStore for Unreachable {
    fn claim<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> StoreFuture<'a, Claim> {
        refused()
    }
    fn renew<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: OwnerToken,
        _: Duration,
    ) -> StoreFuture<'a, bool> {
        refused()
    }
    fn complete<'a>(&'a self, _: &'a str, _: &'a str, _: OwnerToken) -> StoreFuture<'a, bool> {
        refused()
    }
    fn release<'a>(&'a self, _: &'a str, _: &'a str, _: OwnerToken) -> StoreFuture<'a, bool> {
        refused()
    }
}

#[actix_rt::test]
async fn an_unreachable_store_is_a_500_and_no_handler_runs() {
    let server = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(Unreachable),
        |_| {},
    );
    let (body, signature) = delivery("evt_idem_store_down", "refund.updated");
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.code(), "idempotency_store_failed");
    assert_eq!(runs("evt_idem_store_down", "count_refund"), 0);
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct ManualClock {
    start: Instant,
    offset_ms: Arc<AtomicU64>,
}

impl ManualClock {
    fn new() -> Self {
        ManualClock {
            start: Instant::now(),
            offset_ms: Arc::default(),
        }
    }

    /// How far the clock has been moved.
    fn elapsed(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }

    fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap();
        self.offset_ms.fetch_add(millis, Ordering::SeqCst);
    }

    fn reader(&self) -> impl Fn() -> Instant + Send + Sync + 'static {
        let clock = self.clone();
        move || clock.start + Duration::from_millis(clock.offset_ms.load(Ordering::SeqCst))
    }

    fn store(&self, retention: Duration, capacity: usize) -> MemoryStore {
        MemoryStore::new(retention, capacity).with_clock(self.reader())
    }
}

/// The memory store under the shared contract, on a moved clock.
struct MemoryHarness {
    clock: ManualClock,
    store: MemoryStore,
}

impl MemoryHarness {
    fn new() -> Self {
        let clock = ManualClock::new();
        let store = clock.store(Duration::from_secs(3600), 10_000);
        MemoryHarness { clock, store }
    }
}

impl StoreUnderTest for MemoryHarness {
    type Store = MemoryStore;
    fn store(&self) -> MemoryStore {
        self.store.clone()
    }
    fn lease(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn retention(&self) -> Duration {
        Duration::from_secs(3600)
    }
    async fn pass(&self, duration: Duration) {
        self.clock.advance(duration);
    }
}

nextgen_tests::store_contract_tests!(MemoryHarness::new());

#[tokio::test]
async fn the_memory_stores_immediate_claims_agree_with_its_futures() {
    nextgen_tests::contract::immediate_claims_agree(&MemoryHarness::new()).await;
}

async fn token(store: &MemoryStore, id: &str, lease: Duration) -> OwnerToken {
    match store.claim(id, "h", lease).await.unwrap() {
        Claim::Claimed(token) => token,
        other => panic!("{id}: {other:?}"),
    }
}

#[actix_rt::test]
async fn by_default_a_done_marker_is_kept_for_the_72_hours_nextgen_retries() {
    let three_days = Duration::from_secs(72 * 60 * 60);
    let clock = ManualClock::new();
    let store = MemoryStore::default().with_clock(clock.reader());
    let lease = Duration::from_secs(60);
    let owner = token(&store, "evt_default_retention", lease).await;
    assert!(
        store
            .complete("evt_default_retention", "h", owner)
            .await
            .unwrap()
    );

    // A redelivery a second before the three days are over is still skipped...
    clock.advance(three_days - Duration::from_secs(1));
    assert_eq!(
        store
            .claim("evt_default_retention", "h", lease)
            .await
            .unwrap(),
        Claim::AlreadyDone
    );
    // ...and once they are over, the marker is gone.
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        store
            .claim("evt_default_retention", "h", lease)
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
}

#[test]
fn owner_tokens_are_unique_and_read_back_from_their_number_or_text() {
    // A store of its own keeps a claim's owner as a number (`as_u128`) or as text (`Display`),
    // and must get the very token back from it.
    let tokens: Vec<OwnerToken> = (0..100).map(|_| OwnerToken::new()).collect();
    let numbers: std::collections::HashSet<u128> =
        tokens.iter().map(|token| token.as_u128()).collect();
    assert_eq!(numbers.len(), tokens.len(), "two tokens share a number");
    for token in tokens {
        assert_eq!(OwnerToken::from_u128(token.as_u128()), token);
        let text = token.to_string();
        assert_eq!(text.len(), 32, "{text}");
        assert_eq!(u128::from_str_radix(&text, 16).unwrap(), token.as_u128());
        // Debug output (a `Claim` in a log line) shows the same text.
        assert_eq!(format!("{token:?}"), format!("OwnerToken({text})"));
    }
}

#[actix_rt::test]
async fn when_full_the_oldest_done_markers_go_first_and_live_claims_never() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 4);
    let lease = Duration::from_secs(60);
    for id in ["evt_a", "evt_b", "evt_c"] {
        let token = token(&store, id, lease).await;
        assert!(store.complete(id, "h", token).await.unwrap());
        clock.advance(Duration::from_secs(1));
    }
    let live = token(&store, "evt_live", lease).await;
    // Full: a fifth entry evicts the oldest done marker, `evt_a`, and nothing else.
    token(&store, "evt_d", lease).await;
    let stats = store.stats();
    assert_eq!(stats.entries, 4);
    assert_eq!(stats.evicted_done_markers, 1);
    for id in ["evt_b", "evt_c"] {
        assert_eq!(
            store.claim(id, "h", lease).await.unwrap(),
            Claim::AlreadyDone,
            "{id}"
        );
    }
    for id in ["evt_live", "evt_d"] {
        assert_eq!(
            store.claim(id, "h", lease).await.unwrap(),
            Claim::InProgress,
            "{id}"
        );
    }
    assert!(store.renew("evt_live", "h", live, lease).await.unwrap());
    // `evt_a` was the one forgotten: it can be claimed again (evicting `evt_b`).
    token(&store, "evt_a", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 2);
}

#[actix_rt::test]
async fn a_full_store_answers_503_with_retry_after_in_whole_seconds_rounded_up() {
    // Another delivery holds the only room for 30 s; a retry sooner than `Retry-After` would
    // be refused again, so a fraction of a second counts as a whole one.
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 1);
    token(&store, "evt_elsewhere", Duration::from_secs(30)).await;
    let server = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store),
        |_| {},
    );
    let (body, signature) = delivery("evt_idem_retry_after", "refund.updated");
    for (waited, retry_after) in [(0, "30"), (500, "30"), (1000, "29"), (29_999, "1")] {
        clock.advance(Duration::from_millis(waited) - clock.elapsed());
        let response = reqwest::Client::new()
            .post(server.url("/webhook"))
            .header("NextGen-Signature", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 503, "after {waited} ms");
        assert_eq!(
            response.headers()["retry-after"],
            retry_after,
            "after {waited} ms"
        );
    }
    assert_eq!(runs("evt_idem_retry_after", "count_refund"), 0);
}

#[actix_rt::test]
async fn stats_count_what_is_live_and_entries_until_they_are_swept() {
    // What an operator sizes the store with: live claims and done markers, expired entries
    // left out of both but still held (and counted in `len`) until a full store sweeps them.
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 10);
    let lease = Duration::from_secs(60);
    assert!(store.is_empty());
    assert_eq!(store.len(), 0);

    token(&store, "evt_claimed", lease).await;
    let done = token(&store, "evt_done", lease).await;
    assert!(store.complete("evt_done", "h", done).await.unwrap());
    let count = |stats: nextgen_events::idempotency::MemoryStoreStats| {
        (stats.entries, stats.live_claims, stats.done_markers)
    };
    assert_eq!(count(store.stats()), (2, 1, 1));
    assert_eq!((store.len(), store.is_empty()), (2, false));

    // A second before its lease ends the claim is live; at the end it is not (a redelivery
    // may take it over then), though still held.
    clock.advance(lease - Duration::from_secs(1));
    assert_eq!(count(store.stats()), (2, 1, 1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(count(store.stats()), (2, 0, 1));
    // The same for the marker at the end of its retention.
    clock.advance(Duration::from_secs(3600) - lease);
    assert_eq!(count(store.stats()), (2, 0, 0));
    assert_eq!(store.len(), 2);

    let debug = format!("{store:?}");
    for shown in [
        "MemoryStore",
        "entries: 2",
        "retention: 3600s",
        "capacity: 10",
    ] {
        assert!(debug.contains(shown), "{shown:?} missing from {debug}");
    }
}

#[actix_rt::test]
async fn a_full_store_evicts_its_oldest_done_markers_a_batch_at_a_time() {
    // A thirty-second of the capacity goes at once, so a full store does not sweep on every
    // claim; `stats` counts each eviction.
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 64);
    let lease = Duration::from_secs(60);
    for n in 0..64 {
        let id = format!("evt_batch_{n}");
        let token = token(&store, &id, lease).await;
        assert!(store.complete(&id, "h", token).await.unwrap());
        clock.advance(Duration::from_secs(1));
    }
    token(&store, "evt_batch_new", lease).await;
    let stats = store.stats();
    assert_eq!((stats.entries, stats.evicted_done_markers), (63, 2));
    assert_eq!(
        store.claim("evt_batch_2", "h", lease).await.unwrap(),
        Claim::AlreadyDone
    );
    // The next claim finds room without evicting anything.
    token(&store, "evt_batch_0", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 2);
}

#[actix_rt::test]
async fn a_store_full_of_live_claims_refuses_with_when_to_retry() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 2);
    let lease = Duration::from_secs(60);
    token(&store, "evt_1", lease).await;
    clock.advance(Duration::from_secs(20));
    token(&store, "evt_2", lease).await;
    match store.claim("evt_3", "h", lease).await {
        Err(StoreError::Full {
            capacity,
            retry_after,
        }) => {
            assert_eq!(capacity, 2);
            // `evt_1`'s lease ends first, 40 s from now.
            assert_eq!(retry_after, Duration::from_secs(40));
        }
        other => panic!("a full store answered {other:?}"),
    }
    // Once a lease lapses its entry makes room: a retry after exactly the `retry_after` given
    // gets in.
    clock.advance(Duration::from_secs(40));
    token(&store, "evt_3", lease).await;
}

#[actix_rt::test]
async fn bookkeeping_stays_within_capacity_over_long_claim_release_cycles() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 64);
    let lease = Duration::from_secs(60);
    // One key, claimed and released many times.
    for _ in 0..20_000 {
        let token = token(&store, "evt_cycle", lease).await;
        assert!(store.release("evt_cycle", "h", token).await.unwrap());
    }
    let stats = store.stats();
    assert_eq!(stats.entries, 0);
    assert!(
        stats.table_capacity <= 16,
        "one key's cycles grew the table to {}",
        stats.table_capacity
    );
    // Many keys: claimed, released or completed, with time moving on.
    for round in 0..2_000_u32 {
        let id = format!("evt_{round}");
        let token = token(&store, &id, lease).await;
        if round % 2 == 0 {
            assert!(store.release(&id, "h", token).await.unwrap());
        } else {
            assert!(store.complete(&id, "h", token).await.unwrap());
        }
        clock.advance(Duration::from_secs(1));
        let stats = store.stats();
        assert!(stats.entries <= 64, "round {round}: {stats:?}");
        // The table may keep room for deleted slots, but never grows past a fixed multiple.
        assert!(stats.table_capacity <= 4 * 64, "round {round}: {stats:?}");
    }
    assert!(store.stats().evicted_done_markers > 0);
}

#[actix_rt::test]
async fn markers_are_per_handler_and_per_event() {
    let store = MemoryStore::default();
    let lease = Duration::from_secs(60);
    let token = token(&store, "evt_1", lease).await;
    assert!(store.complete("evt_1", "h", token).await.unwrap());
    let mut claims = HashMap::new();
    for (id, handler) in [("evt_1", "h"), ("evt_1", "b"), ("evt_2", "h")] {
        claims.insert(
            (id, handler),
            store.claim(id, handler, lease).await.unwrap(),
        );
    }
    assert_eq!(claims[&("evt_1", "h")], Claim::AlreadyDone);
    assert!(matches!(claims[&("evt_1", "b")], Claim::Claimed(_)));
    assert!(matches!(claims[&("evt_2", "h")], Claim::Claimed(_)));
}

async fn object_token(store: &MemoryStore, object: &str, lease: Duration) -> OwnerToken {
    match store.claim_object(object, "h", lease).await.unwrap() {
        ObjectClaim::Claimed { token, .. } => token,
        other => panic!("{object}: {other:?}"),
    }
}

#[actix_rt::test]
async fn when_full_the_oldest_watermarks_go_like_done_markers_and_live_object_claims_never() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 4);
    let lease = Duration::from_secs(60);
    // Two watermarks, the first older; two live object claims.
    for (n, object) in ["cus_a", "cus_b"].into_iter().enumerate() {
        let token = object_token(&store, object, lease).await;
        let handled = Watermark::new(100, format!("evt_{n}"));
        assert!(
            store
                .advance_object(object, "h", token, &handled)
                .await
                .unwrap()
        );
        clock.advance(Duration::from_secs(1));
    }
    let held_c = object_token(&store, "cus_c", lease).await;
    let held_d = object_token(&store, "cus_d", lease).await;
    let stats = store.stats();
    assert_eq!((stats.live_claims, stats.watermarks), (2, 2), "{stats:?}");
    // Full: the oldest watermark goes first.
    object_token(&store, "cus_e", lease).await;
    let stats = store.stats();
    assert_eq!(stats.evicted_done_markers, 1, "{stats:?}");
    assert_eq!(stats.watermarks, 1, "{stats:?}");
    let kept = object_token(&store, "cus_b", lease).await;
    assert_eq!(store.release_object("cus_b", "h", kept).await, Ok(true));
    // The live object claims were kept.
    assert_eq!(
        store.claim_object("cus_c", "h", lease).await,
        Ok(ObjectClaim::InProgress)
    );
    assert!(
        store
            .renew_object("cus_d", "h", held_d, lease)
            .await
            .unwrap()
    );
    // Full of live claims: refused, nothing evicted.
    object_token(&store, "cus_b", lease).await;
    let full = store.claim_object("cus_f", "h", lease).await;
    assert!(matches!(full, Err(StoreError::Full { .. })), "{full:?}");
    assert!(store.release_object("cus_c", "h", held_c).await.unwrap());
}

#[actix_rt::test]
async fn a_lapsed_object_claim_keeps_its_watermark_through_a_sweep() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 3);
    let lease = Duration::from_secs(60);
    let owner = object_token(&store, "cus_a", lease).await;
    let handled = Watermark::new(100, "evt_a");
    assert!(
        store
            .advance_object("cus_a", "h", owner, &handled)
            .await
            .unwrap()
    );
    // Claimed again, with an event claim, then the process dies: both leases lapse.
    object_token(&store, "cus_a", lease).await;
    token(&store, "evt_lapsed", lease).await;
    clock.advance(lease * 2);
    object_token(&store, "cus_b", lease).await;
    // Full: the sweep drops the lapsed event claim and keeps the lapsed object claim's
    // watermark, evicting nothing.
    object_token(&store, "cus_c", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 0);
    match store.claim_object("cus_a", "h", lease).await {
        Ok(ObjectClaim::Claimed { newest, .. }) => assert_eq!(newest, Some(handled)),
        other => panic!("{other:?}"),
    }
}

/// A done marker for `(id, "h")`: claimed and completed.
async fn done(store: &MemoryStore, id: &str) {
    let owner = token(store, id, Duration::from_secs(60)).await;
    assert!(store.complete(id, "h", owner).await.unwrap(), "{id}");
}

/// `handled` made the newest watermark of `(object, "h")`: claimed and advanced.
async fn advanced(store: &MemoryStore, object: &str, handled: &Watermark) {
    let owner = object_token(store, object, Duration::from_secs(60)).await;
    assert!(
        store
            .advance_object(object, "h", owner, handled)
            .await
            .unwrap(),
        "{object}"
    );
}

/// The watermark a new claim of `(object, "h")` is answered with.
async fn newest_kept(store: &MemoryStore, object: &str) -> Option<Watermark> {
    match store
        .claim_object(object, "h", Duration::from_secs(60))
        .await
    {
        Ok(ObjectClaim::Claimed { newest, .. }) => newest,
        other => panic!("{object}: {other:?}"),
    }
}

#[actix_rt::test]
async fn a_lease_or_retention_too_long_for_the_clock_lasts_about_a_century() {
    // `Duration::MAX` does not fit an `Instant`: saturated, it still means "for good" (a
    // century), not a panic inside the dispatch task and not a claim that lapses at once.
    let clock = ManualClock::new();
    let store = clock.store(Duration::MAX, 10);
    let lease = Duration::from_secs(60);
    token(&store, "evt_claimed", Duration::MAX).await;
    done(&store, "evt_done").await;

    clock.advance(Duration::from_secs(99 * 365 * 24 * 60 * 60));
    assert_eq!(
        store.claim("evt_claimed", "h", lease).await,
        Ok(Claim::InProgress)
    );
    assert_eq!(
        store.claim("evt_done", "h", lease).await,
        Ok(Claim::AlreadyDone)
    );
}

#[actix_rt::test]
async fn a_watermark_advanced_again_is_kept_for_the_retention_from_its_last_advance() {
    let clock = ManualClock::new();
    let retention = Duration::from_secs(3600);
    let store = clock.store(retention, 100);
    advanced(&store, "cus_a", &Watermark::new(100, "evt_first")).await;
    clock.advance(retention / 2);
    let second = Watermark::new(200, "evt_second");
    advanced(&store, "cus_a", &second).await;

    // Past the end of the first advance's retention, within the second's; a marker written
    // now makes the store drop what has expired.
    clock.advance(retention / 2 + Duration::from_secs(1));
    done(&store, "evt_other").await;
    assert_eq!(store.stats().watermarks, 1, "{:?}", store.stats());
    assert_eq!(newest_kept(&store, "cus_a").await, Some(second));
}

#[actix_rt::test]
async fn a_watermark_stops_counting_at_the_end_of_its_retention() {
    let clock = ManualClock::new();
    let retention = Duration::from_secs(3600);
    let store = clock.store(retention, 10);
    advanced(&store, "cus_a", &Watermark::new(100, "evt_1")).await;
    clock.advance(retention - Duration::from_secs(1));
    assert_eq!(store.stats().watermarks, 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.stats().watermarks, 0);
}

#[actix_rt::test]
async fn a_full_store_sweeps_lapsed_claims_before_it_evicts_a_done_marker() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 4);
    let lease = Duration::from_secs(60);
    for id in ["evt_done_1", "evt_done_2"] {
        done(&store, id).await;
    }
    // Two claims whose process died: their leases lapse, and the store is full.
    token(&store, "evt_lapsed_1", lease).await;
    token(&store, "evt_lapsed_2", lease).await;
    clock.advance(lease * 2);
    token(&store, "evt_new", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 0, "{:?}", store.stats());
    for id in ["evt_done_1", "evt_done_2"] {
        assert_eq!(store.claim(id, "h", lease).await, Ok(Claim::AlreadyDone));
    }
}

#[actix_rt::test]
async fn at_the_end_of_its_lease_a_claim_is_no_longer_its_owners() {
    // The instant a redelivery may take a claim over, its first owner can no longer renew or
    // complete it: never two owners at once.
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 10);
    let lease = Duration::from_secs(60);
    let first = token(&store, "evt_1", lease).await;
    clock.advance(lease);
    assert_eq!(store.renew("evt_1", "h", first, lease).await, Ok(false));
    assert_eq!(store.complete("evt_1", "h", first).await, Ok(false));
    let second = token(&store, "evt_1", lease).await;
    assert_eq!(store.release("evt_1", "h", first).await, Ok(false));
    assert!(store.complete("evt_1", "h", second).await.unwrap());
}

#[actix_rt::test]
async fn a_full_store_sweeps_lapsed_object_claims_before_it_evicts_a_done_marker() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 4);
    let lease = Duration::from_secs(60);
    done(&store, "evt_done").await;
    // Three object claims whose process died, never advanced: nothing to keep once lapsed.
    for object in ["cus_lapsed_1", "cus_lapsed_2", "cus_lapsed_3"] {
        object_token(&store, object, lease).await;
    }
    clock.advance(lease * 2);
    object_token(&store, "cus_new", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 0, "{:?}", store.stats());
    assert_eq!(
        store.claim("evt_done", "h", lease).await,
        Ok(Claim::AlreadyDone)
    );
}

#[actix_rt::test]
async fn a_watermark_at_the_end_of_its_retention_is_not_answered_to_a_new_claim() {
    let clock = ManualClock::new();
    let retention = Duration::from_secs(3600);
    let lease = Duration::from_secs(60);
    let store = clock.store(retention, 10);
    advanced(&store, "cus_a", &Watermark::new(100, "evt_1")).await;
    // Claimed again by a process that dies: its lease ends with the watermark's retention.
    clock.advance(retention - lease);
    object_token(&store, "cus_a", lease).await;
    clock.advance(lease);
    assert_eq!(newest_kept(&store, "cus_a").await, None);
}

#[actix_rt::test]
async fn expired_done_markers_leave_as_new_ones_come_in() {
    let clock = ManualClock::new();
    let retention = Duration::from_secs(3600);
    let store = clock.store(retention, 10);
    done(&store, "evt_old").await;
    clock.advance(retention);
    // No sweep runs (the store is far from full): writing a marker drops the expired ones.
    done(&store, "evt_new").await;
    assert_eq!(store.len(), 1, "{:?}", store.stats());
}

#[actix_rt::test]
async fn a_watermark_whose_retention_ended_gives_way_to_an_older_event_handled_after_it() {
    // The store keeps the newer of the two, but only while the newer is still kept.
    let clock = ManualClock::new();
    let retention = Duration::from_secs(3600);
    let lease = Duration::from_secs(60);
    let store = clock.store(retention, 10);
    advanced(&store, "cus_a", &Watermark::new(200, "evt_newer")).await;
    clock.advance(retention - lease / 2);
    let owner = object_token(&store, "cus_a", lease).await;
    clock.advance(lease / 2);
    let older = Watermark::new(100, "evt_older");
    assert!(
        store
            .advance_object("cus_a", "h", owner, &older)
            .await
            .unwrap()
    );
    assert_eq!(newest_kept(&store, "cus_a").await, Some(older));
}

#[actix_rt::test]
async fn a_watermark_whose_object_claim_lapsed_is_evicted_in_its_turn() {
    let clock = ManualClock::new();
    let store = clock.store(Duration::from_secs(3600), 2);
    let lease = Duration::from_secs(60);
    advanced(&store, "cus_a", &Watermark::new(100, "evt_a")).await;
    // Claimed again by a process that dies. Meanwhile the full store evicts a done marker,
    // passing over the claimed object.
    object_token(&store, "cus_a", lease).await;
    done(&store, "evt_1").await;
    token(&store, "evt_2", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 1);
    // Both leases lapse; the next claim's sweep turns the object claim back into its
    // watermark, and drops the claim of evt_2.
    clock.advance(lease * 2);
    done(&store, "evt_3").await;
    assert_eq!(store.stats().watermarks, 1);
    // Full again: the watermark is older than evt_3's marker, so it goes first.
    token(&store, "evt_4", lease).await;
    assert_eq!(store.stats().evicted_done_markers, 2);
    assert_eq!(
        store.claim("evt_3", "h", lease).await,
        Ok(Claim::AlreadyDone)
    );
    assert_eq!(newest_kept(&store, "cus_a").await, None);
}

#[test]
fn the_memory_store_offers_object_claims_and_immediate_answers() {
    // What endpoints check at build: `latest_only` handlers need object claims.
    let store = MemoryStore::default();
    assert!(store.object_claims().is_some());
    assert!(store.immediate().is_some());
}
