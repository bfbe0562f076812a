//! The Redis Streams inbox against a real `redis-server`: inbox mode over real HTTP (200 after
//! the write, one entry per event id, retries on an injected clock, dead letters, replay),
//! replicas sharing one inbox, and a delivery held by a consumer that died taken over by
//! another replica after the lease.
//!
//! Needs `--features redis` and `NEXTGEN_TEST_REDIS_URL`, like `tests/redis.rs`: without the
//! variable the tests fail, unless `NEXTGEN_SKIP_REDIS_TESTS=1` asks to skip them.
//!
//! ```text
//! NEXTGEN_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test -p nextgen-tests --features redis --test redis_inbox
//! ```

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nextgen_events::idempotency::Claim;
use nextgen_events::inbox::{
    Finish, HandlerFailure, Inbox, InboxEntry, InboxRecord, InboxState, InboxStats, ListFilter,
};
use nextgen_events::prelude::*;
use nextgen_events::redis::RedisInbox;
use nextgen_events::sign;
use nextgen_tests::services::{redis_url, unique_prefix};
use support::{SECRET, TestServer, delivery, now, post, ran, runs};

/// A fresh event id, like NextGen's.
fn event_id(test: &str, n: usize) -> String {
    format!("evt_{test}_{}_{n}", std::process::id())
}

/// How many more times `b_flaky` fails, per event id.
static FAILURES_LEFT: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

fn fail_times(id: &str, times: u32) {
    FAILURES_LEFT
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(id.to_owned(), times);
}

#[nextgen_event("charge.succeeded")]
async fn a_steady(event: Event<Charge>) {
    ran(&event.id, "a_steady");
}

#[nextgen_event("charge.succeeded")]
async fn b_flaky(event: Event<Charge>) -> Result<(), String> {
    ran(&event.id, "b_flaky");
    let mut failures = FAILURES_LEFT.lock().unwrap();
    match failures.get_or_insert_with(HashMap::new).get_mut(&event.id) {
        Some(left) if *left > 0 => {
            *left -= 1;
            Err("the ledger is down".to_owned())
        }
        _ => Ok(()),
    }
}

/// Which replica a handler ran on, given to each replica's workers as app data.
struct Replica(&'static str);

#[nextgen_event("refund.created")]
async fn book_refund(event: Event<Refund>, replica: web::Data<Replica>) {
    ran(&event.id, "book_refund");
    ran(&event.id, replica.0);
    // Long enough for the other replica's workers to take deliveries meanwhile.
    actix_rt::time::sleep(Duration::from_millis(2)).await;
}

#[nextgen_event("refund.created")]
async fn notify_refund(event: Event<Refund>) {
    ran(&event.id, "notify_refund");
}

/// A signed `charge.succeeded` with id `id` and this amount (a string is API drift).
fn charge(id: &str, amount: serde_json::Value) -> (String, String) {
    let body = serde_json::json!({
        "id": id, "object": "event", "created": 1_713_745_200, "livemode": false,
        "type": "charge.succeeded",
        "data": { "object": { "id": "ch_1", "amount": amount, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded" } }
    })
    .to_string();
    let signature = sign(body.as_bytes(), SECRET, now());
    (body, signature)
}

/// Waits (up to `patience` of real time) until `id`'s record satisfies `done`.
async fn until(
    inbox: &RedisInbox,
    id: &str,
    patience: Duration,
    done: impl Fn(&InboxRecord) -> bool,
) -> InboxRecord {
    let started = Instant::now();
    loop {
        let record = inbox.show(id, false).await.unwrap();
        if let Some(record) = record.as_ref().filter(|record| done(record)) {
            return record.clone();
        }
        assert!(started.elapsed() < patience, "{id} stuck at {record:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A Redis inbox on a moved clock, and a server in inbox mode on it.
struct Setup {
    url: String,
    prefix: String,
    clock: Arc<AtomicU64>,
    inbox: RedisInbox,
    server: TestServer,
}

impl Setup {
    async fn new(label: &str) -> Option<Setup> {
        let url = redis_url("the Redis inbox")?;
        let prefix = unique_prefix(label);
        let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
        let reader = Arc::clone(&clock);
        let inbox = RedisInbox::connect(&url, prefix.clone())
            .await
            .unwrap()
            .with_clock(move || reader.load(Ordering::SeqCst));
        let config = WebhookConfig::new(SECRET)
            .inbox(inbox.clone())
            .inbox_poll(Duration::from_millis(10));
        let server = TestServer::start(config, |_| {});
        Some(Setup {
            url,
            prefix,
            clock,
            inbox,
            server,
        })
    }

    fn advance(&self, by: Duration) {
        self.clock
            .fetch_add(u64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }

    async fn deliver(&self, id: &str, amount: serde_json::Value) -> support::Answer {
        let (body, signature) = charge(id, amount);
        post(&self.server.url("/webhook"), body, Some(&signature)).await
    }

    async fn until(&self, id: &str, done: impl Fn(&InboxRecord) -> bool) -> InboxRecord {
        until(&self.inbox, id, Duration::from_secs(10), done).await
    }
}

#[actix_rt::test]
async fn a_200_means_the_delivery_is_in_redis_and_a_redelivery_adds_nothing() {
    let Some(setup) = Setup::new("durable").await else {
        return;
    };
    let id = "evt_redis_inbox_durable";
    let answer = setup.deliver(id, 2000.into()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // Another connection, as another replica would open it, finds it there, byte for byte.
    let other = RedisInbox::connect(&setup.url, setup.prefix.clone())
        .await
        .unwrap();
    let record = other
        .show(id, true)
        .await
        .unwrap()
        .expect("the acknowledged delivery");
    assert_eq!(record.body.unwrap(), charge(id, 2000.into()).0);
    setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    for _ in 0..2 {
        assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    }
    assert_eq!(
        other.stats().await.unwrap(),
        InboxStats {
            handled: 1,
            ..InboxStats::default()
        }
    );
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(runs(id, "b_flaky"), 1);
}

#[actix_rt::test]
async fn a_failure_is_retried_after_the_backoff_and_the_success_is_not_run_again() {
    let Some(setup) = Setup::new("retry").await else {
        return;
    };
    let id = "evt_redis_inbox_retry";
    fail_times(id, 1);
    assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    let failed = setup
        .until(id, |record| record.state == InboxState::Retrying)
        .await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_errors.len(), 1, "{failed:?}");
    assert!(failed.last_errors[0].handler.ends_with("b_flaky"));
    assert!(failed.last_errors[0].error.contains("the ledger is down"));
    assert_eq!(failed.first_failed_at_ms, Some(1_800_000_000_000));
    // Not before its time: 30 s, plus up to 20% jitter.
    let due = failed.due_at_ms.unwrap();
    assert!(
        (30_000..=36_000).contains(&(due - 1_800_000_000_000)),
        "due at {due}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs(id, "b_flaky"), 1, "retried before it was due");
    setup.advance(Duration::from_secs(37));
    let handled = setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    assert_eq!(handled.attempts, 2);
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(runs(id, "b_flaky"), 2);
}

#[actix_rt::test]
async fn after_three_days_of_failures_a_dead_letter_is_kept_and_a_replay_runs_only_the_failed() {
    let Some(setup) = Setup::new("dead").await else {
        return;
    };
    let id = "evt_redis_inbox_dead";
    fail_times(id, u32::MAX);
    assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    let mut record = setup
        .until(id, |record| {
            record.attempts == 1 && record.state != InboxState::Running
        })
        .await;
    let started = Instant::now();
    while record.state != InboxState::Dead {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never given up: {record:?}"
        );
        // Past the longest wait (1 h plus jitter): the next attempt is due.
        setup.advance(Duration::from_secs(75 * 60));
        let attempts = record.attempts;
        record = setup
            .until(id, |record| {
                record.attempts > attempts && record.state != InboxState::Running
            })
            .await;
    }
    assert!(record.attempts > 50, "{record:?}");
    assert_eq!(record.last_errors.len(), 1);
    assert!(record.last_errors[0].error.contains("the ledger is down"));
    let failing_for = record.finished_at_ms.unwrap() - record.first_failed_at_ms.unwrap();
    assert!(failing_for >= 3 * 24 * 3600 * 1000, "{record:?}");
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(setup.inbox.stats().await.unwrap().dead, 1);

    // The fix ships; the dead letter is replayed: only the failed handler runs.
    fail_times(id, 0);
    let flaky_runs = runs(id, "b_flaky");
    assert_eq!(setup.inbox.replay_dead(None).await.unwrap(), [id]);
    let handled = setup
        .until(id, |record| record.state == InboxState::Handled)
        .await;
    assert_eq!(handled.attempts, 1);
    assert_eq!(runs(id, "a_steady"), 1);
    assert_eq!(runs(id, "b_flaky"), flaky_runs + 1);
    assert_eq!(
        setup.inbox.replay_dead(None).await.unwrap(),
        [] as [&str; 0]
    );
}

#[actix_rt::test]
async fn a_payload_that_does_not_fit_is_kept_with_the_reason_not_lost() {
    let Some(setup) = Setup::new("drift").await else {
        return;
    };
    let id = "evt_redis_inbox_drift";
    // API drift: the amount is a string. The envelope is fine, so the delivery is kept.
    assert_eq!(setup.deliver(id, "2000".into()).await.status, 200);
    let record = setup
        .until(id, |record| record.state == InboxState::Retrying)
        .await;
    assert_eq!(record.last_errors[0].handler, "(payload)");
    assert!(
        record.last_errors[0].error.contains("data.object.amount"),
        "{record:?}"
    );
    assert_eq!(runs(id, "a_steady"), 0);
    // Not an event at all: refused, nothing kept.
    let answer = post(
        &setup.server.url("/webhook"),
        "[]",
        Some(&sign(b"[]", SECRET, now())),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "invalid_event"));
    let stats = setup.inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.retrying), (0, 1), "{stats:?}");
}

#[actix_rt::test]
async fn list_show_stats_and_replay_by_id() {
    let Some(setup) = Setup::new("list").await else {
        return;
    };
    for n in 0..3 {
        let id = format!("evt_redis_inbox_list_{n}");
        assert_eq!(setup.deliver(&id, 2000.into()).await.status, 200);
        setup
            .until(&id, |record| record.state == InboxState::Handled)
            .await;
        setup.advance(Duration::from_secs(1));
    }
    let drift = "evt_redis_inbox_list_drift";
    assert_eq!(setup.deliver(drift, "2000".into()).await.status, 200);
    setup
        .until(drift, |record| record.state == InboxState::Retrying)
        .await;
    let ids = |records: Vec<InboxRecord>| -> Vec<String> {
        records.into_iter().map(|record| record.event_id).collect()
    };
    let list = |state: Option<InboxState>, event_type: Option<&str>, limit: usize| {
        setup.inbox.list(ListFilter {
            state,
            event_type: event_type.map(str::to_owned),
            limit,
        })
    };
    assert_eq!(
        ids(list(Some(InboxState::Handled), None, 2).await.unwrap()),
        ["evt_redis_inbox_list_2", "evt_redis_inbox_list_1"]
    );
    assert_eq!(
        ids(list(None, None, 0).await.unwrap()),
        [
            drift,
            "evt_redis_inbox_list_2",
            "evt_redis_inbox_list_1",
            "evt_redis_inbox_list_0"
        ]
    );
    assert_eq!(
        ids(
            list(Some(InboxState::Retrying), Some("charge.succeeded"), 10)
                .await
                .unwrap()
        ),
        [drift]
    );
    assert!(
        list(None, Some("refund.created"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        setup.inbox.stats().await.unwrap(),
        InboxStats {
            retrying: 1,
            handled: 3,
            ..InboxStats::default()
        }
    );
    let shown = setup
        .inbox
        .show("evt_redis_inbox_list_1", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.received_at_ms, 1_800_000_001_000);
    assert_eq!(shown.event_type, "charge.succeeded");
    assert_eq!(shown.attempts, 1);
    assert_eq!(shown.due_at_ms, None);
    assert!(shown.finished_at_ms.is_some());
    assert_eq!(shown.body, None);
    assert!(
        setup
            .inbox
            .show("evt_unknown", true)
            .await
            .unwrap()
            .is_none()
    );

    let replayed = setup
        .inbox
        .replay(&[
            "evt_redis_inbox_list_0".to_owned(),
            "evt_unknown".to_owned(),
        ])
        .await
        .unwrap();
    assert_eq!(replayed, ["evt_redis_inbox_list_0"]);
    // Replayed, but every handler had succeeded: nothing runs again.
    let record = setup
        .until("evt_redis_inbox_list_0", |record| {
            record.state == InboxState::Handled
        })
        .await;
    assert_eq!(record.attempts, 1);
    assert_eq!(runs("evt_redis_inbox_list_0", "a_steady"), 1);
    assert_eq!(setup.inbox.stats().await.unwrap().handled, 3);
}

#[actix_rt::test]
async fn handled_entries_past_the_retention_are_pruned_and_dead_letters_kept() {
    let Some(setup) = Setup::new("prune").await else {
        return;
    };
    let (kept, dead) = ("evt_redis_inbox_prune_kept", "evt_redis_inbox_prune_dead");
    fail_times(dead, u32::MAX);
    for id in [kept, dead] {
        assert_eq!(setup.deliver(id, 2000.into()).await.status, 200);
    }
    setup
        .until(kept, |record| record.state == InboxState::Handled)
        .await;
    setup
        .until(dead, |record| record.state == InboxState::Retrying)
        .await;
    // The dead letter: given up after three days (moved on by hand, one attempt each hour).
    while setup.inbox.show(dead, false).await.unwrap().unwrap().state != InboxState::Dead {
        setup.advance(Duration::from_secs(75 * 60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = setup.inbox.now_ms();
    assert_eq!(
        setup
            .inbox
            .prune(now - 31 * 24 * 3600 * 1000)
            .await
            .unwrap(),
        0
    );
    setup.advance(Duration::from_secs(31 * 24 * 3600));
    assert_eq!(setup.inbox.retention(), Duration::from_secs(30 * 24 * 3600));
    let retention = u64::try_from(setup.inbox.retention().as_millis()).unwrap();
    let pruned = setup
        .inbox
        .prune(setup.inbox.now_ms() - retention)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(setup.inbox.show(kept, false).await.unwrap().is_none());
    assert_eq!(
        setup.inbox.show(dead, false).await.unwrap().unwrap().state,
        InboxState::Dead
    );
    assert_eq!(
        setup.inbox.stats().await.unwrap(),
        InboxStats {
            dead: 1,
            ..InboxStats::default()
        }
    );
    let all = setup.inbox.list(ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
}

/// A replica: a server in inbox mode on the shared prefix, its workers polling often.
async fn replica(url: &str, prefix: &str, name: &'static str) -> TestServer {
    let inbox = RedisInbox::connect(url, prefix).await.unwrap();
    let config = WebhookConfig::new(SECRET)
        .inbox(inbox)
        .inbox_poll(Duration::from_millis(10))
        .app_data(web::Data::new(Replica(name)));
    TestServer::start(config, |_| {})
}

#[actix_rt::test]
async fn two_replicas_share_one_inbox_and_run_each_handler_once_per_event() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("replicas");
    let a = replica(&url, &prefix, "on a").await;
    let b = replica(&url, &prefix, "on b").await;
    let (url_a, url_b) = (a.url("/webhook"), b.url("/webhook"));
    let ids: Vec<String> = (0..200).map(|n| event_id("replicas", n)).collect();
    // Each event delivered to both replicas at once, 20 events at a time.
    for chunk in ids.chunks(20) {
        let posts = chunk.iter().map(|id| {
            let (body, signature) = delivery(id, "refund.created");
            let (url_a, url_b) = (url_a.clone(), url_b.clone());
            async move {
                let (first, second) = tokio::join!(
                    post(&url_a, body.clone(), Some(&signature)),
                    post(&url_b, body, Some(&signature))
                );
                for answer in [first, second] {
                    assert_eq!(answer.status, 200, "{id}: {:?}", answer.body);
                }
            }
        });
        futures_util::future::join_all(posts).await;
    }
    let observer = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let started = Instant::now();
    loop {
        let stats = observer.stats().await.unwrap();
        if stats.handled == 200 {
            assert_eq!(
                stats,
                InboxStats {
                    handled: 200,
                    ..InboxStats::default()
                }
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not all handled: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut on_a, mut on_b) = (0, 0);
    for id in &ids {
        assert_eq!(runs(id, "book_refund"), 1, "{id}");
        assert_eq!(runs(id, "notify_refund"), 1, "{id}");
        on_a += runs(id, "on a");
        on_b += runs(id, "on b");
        let record = observer.show(id, false).await.unwrap().unwrap();
        assert_eq!(
            (record.state, record.attempts),
            (InboxState::Handled, 1),
            "{id}"
        );
    }
    assert_eq!(on_a + on_b, 200);
    println!("handled on replica a: {on_a}, on replica b: {on_b}");
    assert!(
        on_a > 0 && on_b > 0,
        "one replica did everything: {on_a} / {on_b}"
    );
    let listed = observer
        .list(ListFilter {
            limit: 500,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 200);
}

#[actix_rt::test]
async fn a_delivery_held_by_a_consumer_that_died_is_taken_over_after_the_lease() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("takeover");
    let lease = Duration::from_millis(500);
    // Replica A only takes deliveries in.
    let a = TestServer::start(
        WebhookConfig::new(SECRET)
            .inbox(RedisInbox::connect(&url, prefix.clone()).await.unwrap())
            .inbox_workers(0),
        |_| {},
    );
    let id = event_id("takeover", 0);
    let (body, signature) = charge(&id, 2000.into());
    let answer = post(&a.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);

    // A worker takes it, runs its first handler to success, and dies mid-way through the
    // second: it never renews nor finishes.
    let dead = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let taken = dead.take(lease).await.unwrap().expect("the delivery");
    let taken_at = Instant::now();
    assert_eq!(
        (taken.entry.event_id.as_str(), taken.attempts),
        (id.as_str(), 1)
    );
    let markers = dead.idempotency_store();
    let first = format!("{}::a_steady", module_path!());
    let Claim::Claimed(claim) = markers.claim(&id, &first, lease).await.unwrap() else {
        panic!("a_steady was not free")
    };
    assert!(markers.complete(&id, &first, claim).await.unwrap());
    let second = format!("{}::b_flaky", module_path!());
    assert!(matches!(
        markers.claim(&id, &second, lease).await.unwrap(),
        Claim::Claimed(_)
    ));

    // Replica B, same lease: it finds the delivery held, then takes it over once idle for a
    // lease and a half, when the dead worker's claim on `b_flaky` has lapsed too.
    let b_inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let b = TestServer::start(
        WebhookConfig::new(SECRET)
            .inbox(b_inbox.clone())
            .lease(lease)
            .inbox_poll(Duration::from_millis(10)),
        |_| {},
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    if taken_at.elapsed() < lease {
        let record = b_inbox.show(&id, false).await.unwrap().unwrap();
        assert_eq!((record.state, record.attempts), (InboxState::Running, 1));
        assert_eq!(runs(&id, "b_flaky"), 0);
    }
    let record = until(&b_inbox, &id, Duration::from_secs(10), |record| {
        record.state == InboxState::Handled
    })
    .await;
    assert!(taken_at.elapsed() >= lease * 3 / 2);
    assert_eq!(record.attempts, 2);
    // The handler that had succeeded stayed skipped; the one the dead worker held ran once.
    assert_eq!(runs(&id, "a_steady"), 0);
    assert_eq!(runs(&id, "b_flaky"), 1);
    // The dead worker's token is worth nothing now.
    assert!(!dead.renew(&id, taken.token, lease).await.unwrap());
    assert!(
        !dead
            .finish(&id, taken.token, Finish::Handled)
            .await
            .unwrap()
    );
    assert_eq!(
        b_inbox.stats().await.unwrap(),
        InboxStats {
            handled: 1,
            ..InboxStats::default()
        }
    );
    drop(b);
}

fn entry(id: &str, received_at_ms: u64) -> InboxEntry {
    InboxEntry {
        event_id: id.to_owned(),
        event_type: "charge.succeeded".to_owned(),
        body: charge(id, 2000.into()).0.into_bytes(),
        signed_at: received_at_ms / 1000,
        received_at_ms,
    }
}

#[actix_rt::test]
async fn renewals_keep_a_delivery_and_only_its_owner_finishes_it() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("leases");
    let lease = Duration::from_millis(300);
    let (x, y) = (
        RedisInbox::connect(&url, prefix.clone()).await.unwrap(),
        RedisInbox::connect(&url, prefix.clone()).await.unwrap(),
    );
    assert_ne!(x.consumer(), y.consumer());
    let id = event_id("leases", 0);
    assert_eq!(
        x.append(entry(&id, 1_000)).await.unwrap(),
        nextgen_events::inbox::Appended::New
    );
    assert_eq!(
        y.append(entry(&id, 2_000)).await.unwrap(),
        nextgen_events::inbox::Appended::Duplicate
    );
    let taken = x.take(lease).await.unwrap().unwrap();
    // Renewed every 100 ms for three leases: never taken over.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(x.renew(&id, taken.token, lease).await.unwrap());
        assert!(y.take(lease).await.unwrap().is_none());
    }
    // Not renewed: taken over once idle for a lease and a half, by one of them.
    tokio::time::sleep(lease * 3 / 2 + Duration::from_millis(100)).await;
    let over = y.take(lease).await.unwrap().expect("taken over");
    assert_eq!(
        (over.entry.event_id.as_str(), over.attempts),
        (id.as_str(), 2)
    );
    assert!(x.take(lease).await.unwrap().is_none());
    assert!(!x.renew(&id, taken.token, lease).await.unwrap());
    let failure = vec![HandlerFailure {
        handler: "h".to_owned(),
        error: "late".to_owned(),
    }];
    assert!(
        !x.finish(
            &id,
            taken.token,
            Finish::Dead {
                errors: failure.clone()
            }
        )
        .await
        .unwrap()
    );
    assert!(y.renew(&id, over.token, lease).await.unwrap());
    // The owner fails it: due again in a minute on the inbox's clock, not before.
    assert!(
        y.finish(
            &id,
            over.token,
            Finish::Retry {
                at_ms: y.now_ms() + 60_000,
                errors: failure
            }
        )
        .await
        .unwrap()
    );
    assert!(!y.finish(&id, over.token, Finish::Handled).await.unwrap());
    assert!(x.take(lease).await.unwrap().is_none());
    let record = x.show(&id, false).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (InboxState::Retrying, 2));
    assert_eq!(record.last_errors[0].error, "late");
    // A running entry is not replayed; a retrying one is, due now.
    let again = x.replay(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(again, std::slice::from_ref(&id));
    let taken = x.take(lease).await.unwrap().unwrap();
    assert_eq!(taken.attempts, 1);
    assert_eq!(taken.first_failed_at_ms, None);
    assert!(
        x.replay(std::slice::from_ref(&id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(x.finish(&id, taken.token, Finish::Handled).await.unwrap());
}

#[actix_rt::test]
async fn a_stream_deleted_under_the_inbox_is_recreated_with_its_group() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("nogroup");
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let mut connection = inbox.connection().clone();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:inbox:stream"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(inbox.take(Duration::from_secs(5)).await.unwrap().is_none());
    let id = event_id("nogroup", 0);
    inbox.append(entry(&id, 1_000)).await.unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(format!("{prefix}:inbox:stream"))
        .arg(format!("{prefix}:inbox:workers"))
        .query_async(&mut connection)
        .await
        .unwrap();
    let taken = inbox.take(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(taken.entry.event_id, id);
}

#[actix_rt::test]
async fn connecting_to_an_existing_inbox_creates_nothing() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("existing");
    assert!(
        RedisInbox::connect_existing(&url, prefix.clone())
            .await
            .unwrap()
            .is_none()
    );
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let id = event_id("existing", 0);
    inbox.append(entry(&id, 1_000)).await.unwrap();
    let existing = RedisInbox::connect_existing(&url, prefix.clone())
        .await
        .unwrap()
        .expect("the inbox");
    assert_eq!(existing.prefix(), prefix);
    assert_eq!(existing.stats().await.unwrap().pending, 1);
    // Still nothing under another prefix: looking did not create it.
    let other = format!("{prefix}-other");
    for _ in 0..2 {
        assert!(
            RedisInbox::connect_existing(&url, other.clone())
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// The README's "how big it grows" for Redis: bytes of Redis memory per handled delivery of
/// the example's 1 KiB event, its two done markers included.
///
/// ```text
/// NEXTGEN_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test --release -p nextgen-tests --features redis --test redis_inbox -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_memory_per_delivery() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("size");
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let mut connection = inbox.connection().clone();
    let body = serde_json::json!({
        "id": "evt_0000000000000000000000", "object": "event", "created": 1_713_745_200,
        "livemode": false, "type": "charge.succeeded", "pending_webhooks": 1,
        "data": { "object": { "id": "ch_1J2k3L4m5N6o", "amount": 2000, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded",
            "description": "x".repeat(700) } }
    })
    .to_string();
    let used = |info: String| -> i64 {
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await
        .unwrap();
    let count = 10_000;
    let store = inbox.idempotency_store();
    for n in 0..count {
        let id = format!("evt_{n:022}");
        inbox
            .append(InboxEntry {
                event_id: id.clone(),
                event_type: "charge.succeeded".to_owned(),
                body: body.clone().into_bytes(),
                signed_at: 1_713_745_200,
                received_at_ms: 1_713_745_200_000 + n,
            })
            .await
            .unwrap();
        let taken = inbox.take(Duration::from_secs(60)).await.unwrap().unwrap();
        for handler in ["app::handlers::book_charge", "app::handlers::send_receipt"] {
            if let Claim::Claimed(token) = store
                .claim(&id, handler, Duration::from_secs(60))
                .await
                .unwrap()
            {
                store.complete(&id, handler, token).await.unwrap();
            }
        }
        assert!(
            inbox
                .finish(&id, taken.token, Finish::Handled)
                .await
                .unwrap()
        );
    }
    let after: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await
        .unwrap();
    let grown = used(after) - used(before);
    println!(
        "{count} handled deliveries of {} bytes: {grown} bytes of Redis memory, {} bytes per delivery",
        body.len(),
        grown / i64::try_from(count).unwrap()
    );
}
