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

mod inbox_checks;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use inbox_checks::{Setup, charge, until};
use nextgen_events::WebhookConfig;
use nextgen_events::idempotency::Claim;
use nextgen_events::inbox::{
    Finish, HandlerFailure, Inbox, InboxEntry, InboxOperator, InboxState, InboxStats, ListFilter,
};
use nextgen_events::prelude::*;
use nextgen_events::redis::RedisInbox;
use nextgen_tests::services::{redis_url, unique_prefix};
use support::{SECRET, TestServer, delivery, post, ran, runs};

/// A fresh event id, like NextGen's.
/// A Redis inbox on a moved clock under a fresh prefix, and a second connection to it.
async fn redis(label: &str) -> Option<Setup<RedisInbox>> {
    let url = redis_url("the Redis inbox")?;
    let prefix = unique_prefix(label);
    let clock = Setup::<RedisInbox>::clock();
    let reader = Arc::clone(&clock);
    let inbox = RedisInbox::connect(&url, prefix.clone())
        .await
        .unwrap()
        .with_clock(move || reader.load(Ordering::SeqCst));
    let other = RedisInbox::connect(&url, prefix).await.unwrap();
    Some(Setup::new(inbox, other, clock, ()))
}

inbox_checks!(redis("checks").await);

fn event_id(test: &str, n: usize) -> String {
    format!("evt_{test}_{}_{n}", std::process::id())
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
/// A replica: a server in inbox mode on the shared prefix, its workers polling often.
async fn replica(url: &str, prefix: &str, name: &'static str) -> TestServer {
    let inbox = RedisInbox::connect(url, prefix).await.unwrap();
    let config = WebhookConfig::new(SECRET)
        .with_inbox(inbox)
        .with_inbox_poll(Duration::from_millis(10))
        .with_app_data(web::Data::new(Replica(name)));
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
            .with_inbox(RedisInbox::connect(&url, prefix.clone()).await.unwrap())
            .with_inbox_workers(0),
        |_| {},
    );
    let id = event_id("takeover", 0);
    let (body, signature) = charge(&id, 2000.into());
    let answer = post(&a.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);

    // A worker takes it, runs its first handler to success, and dies mid-way through the
    // second: it never renews nor finishes.
    let dead = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    // The store counts the lease from its clock read before the query, so the clock here is
    // read before the call too: read after it, a slow answer would make the takeover look early.
    let taken_at = Instant::now();
    let taken = dead.take(lease).await.unwrap().expect("the delivery");
    assert_eq!(
        (taken.entry.event_id.as_str(), taken.attempts),
        (id.as_str(), 1)
    );
    let markers = dead.idempotency_store();
    let first = format!("{}::inbox_checks::a_steady", module_path!());
    let Claim::Claimed(claim) = markers.claim(&id, &first, lease).await.unwrap() else {
        panic!("a_steady was not free")
    };
    assert!(markers.complete(&id, &first, claim).await.unwrap());
    let second = format!("{}::inbox_checks::b_flaky", module_path!());
    assert!(matches!(
        markers.claim(&id, &second, lease).await.unwrap(),
        Claim::Claimed(_)
    ));

    // Replica B, same lease: it finds the delivery held, then takes it over once idle for a
    // lease and a half, when the dead worker's claim on `b_flaky` has lapsed too.
    let b_inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let b = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(b_inbox.clone())
            .with_lease(lease)
            .with_inbox_poll(Duration::from_millis(10)),
        |_| {},
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Read first, judged after: only reads made before a lease and a half can say anything.
    let record = b_inbox.show(&id, false).await.unwrap().unwrap();
    let b_ran = runs(&id, "b_flaky");
    if taken_at.elapsed() + Duration::from_millis(2) < lease * 3 / 2 {
        assert_eq!((record.state, record.attempts), (InboxState::Running, 1));
        assert_eq!(b_ran, 0);
    }
    let record = until(&b_inbox, &id, Duration::from_secs(10), |record| {
        record.state == InboxState::Handled
    })
    .await;
    // Less the millisecond the store's clock truncates on each side.
    let idle = taken_at.elapsed();
    assert!(
        idle + Duration::from_millis(2) >= lease * 3 / 2,
        "taken over after {idle:?}, before a lease and a half"
    );
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
    let body = charge(id, 2000.into()).0;
    let signed_at = received_at_ms / 1000;
    InboxEntry {
        event_id: id.to_owned(),
        event_type: "charge.succeeded".to_owned(),
        signature: Some(nextgen_events::sign(body.as_bytes(), SECRET, signed_at)),
        body: body.into_bytes(),
        signed_at,
        received_at_ms,
    }
}

#[actix_rt::test]
async fn renewals_keep_a_delivery_and_only_its_owner_finishes_it() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("leases");
    // A second, not less: each step below must come within a fraction of the lease of the
    // step before, which a loaded machine does not promise in milliseconds.
    let lease = Duration::from_secs(1);
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
    // Renewed every quarter lease for three leases: never taken over.
    for _ in 0..12 {
        tokio::time::sleep(lease / 4).await;
        assert!(x.renew(&id, taken.token, lease).await.unwrap());
        assert!(y.take(lease).await.unwrap().is_none());
    }
    // Not renewed: taken over once idle for a lease and a half, by one of them.
    tokio::time::sleep(lease * 3 / 2 + lease / 10).await;
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

/// docs/performance.md's "What a delivery keeps" for Redis: bytes of Redis memory per handled delivery of
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
                signature: None,
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

#[actix_rt::test]
async fn replaying_dead_letters_ends_and_drops_ids_whose_entry_is_gone() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("dead-unknown");
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let id = event_id("dead_unknown", 0);
    inbox.append(entry(&id, 1_000)).await.unwrap();
    let taken = inbox.take(Duration::from_secs(5)).await.unwrap().unwrap();
    let errors = vec![HandlerFailure {
        handler: "h".to_owned(),
        error: "down".to_owned(),
    }];
    assert!(
        inbox
            .finish(&id, taken.token, Finish::Dead { errors })
            .await
            .unwrap()
    );
    // More ids than one batch of the script whose entries are gone (a partial restore, a
    // key deleted by hand).
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let dead_index = format!("{prefix}:inbox:state:dead");
    let gone: Vec<String> = (0..1200).map(|n| format!("evt_gone_{n}")).collect();
    let mut zadd = redis::cmd("ZADD");
    zadd.arg(&dead_index);
    for name in &gone {
        zadd.arg(500).arg(name);
    }
    let () = zadd.query_async(&mut connection).await.unwrap();

    let report = tokio::time::timeout(Duration::from_secs(20), inbox.replay_dead(None))
        .await
        .expect("the replay of the dead letters ends")
        .unwrap();
    assert_eq!(report.replayed, [id.as_str()]);
    assert_eq!(report.unknown.len(), gone.len());
    let left: usize = redis::cmd("ZCARD")
        .arg(&dead_index)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(left, 0, "the unknown ids left the dead index");
    assert_eq!(inbox.stats().await.unwrap().dead, 0);
    assert!(inbox.replay_dead(None).await.unwrap().replayed.is_empty());
}

/// The names in the inbox's consumer group.
async fn consumers(inbox: &RedisInbox) -> Vec<String> {
    let mut connection = inbox.connection().clone();
    let consumers: Vec<std::collections::HashMap<String, String>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{}:inbox:stream", inbox.prefix()))
        .arg(format!("{}:inbox:workers", inbox.prefix()))
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut names: Vec<String> = consumers
        .into_iter()
        .filter_map(|mut consumer| consumer.remove("name"))
        .collect();
    names.sort();
    names
}

/// The prune forgets the consumers of processes that stopped: silent for the expiry with
/// nothing pending. It keeps its own, one heard from within the expiry, and one that holds a
/// delivery (forgetting it would drop the delivery from the group, and so its takeover).
#[actix_rt::test]
async fn the_prune_forgets_consumers_silent_for_the_expiry_with_nothing_pending() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("consumers");
    // Seconds: `recent` must be heard from within the expiry before the prune, a few round
    // trips later, on a machine that may be slow.
    let expiry = Duration::from_secs(3);
    let lease = Duration::from_secs(60);
    let connect = || RedisInbox::connect(&url, prefix.clone());
    let pruner = connect().await.unwrap().with_consumer_expiry(expiry);
    let (stopped, holding, recent) = (
        connect().await.unwrap(),
        connect().await.unwrap(),
        connect().await.unwrap(),
    );
    // A consumer is in the group once it has read a delivery: each takes one; all but
    // `holding` finish theirs.
    let take_one = |inbox: &RedisInbox, n: usize, finish: bool| {
        let inbox = inbox.clone();
        async move {
            inbox
                .append(entry(&event_id("consumers", n), 1_000))
                .await
                .unwrap();
            let taken = inbox.take(lease).await.unwrap().expect("a delivery");
            if finish {
                let id = &taken.entry.event_id;
                assert!(
                    inbox
                        .finish(id, taken.token, Finish::Handled)
                        .await
                        .unwrap()
                );
            }
        }
    };
    take_one(&holding, 0, false).await;
    take_one(&stopped, 1, true).await;
    take_one(&pruner, 2, true).await;
    tokio::time::sleep(expiry + Duration::from_millis(500)).await;
    // Heard from after that silence, less than an expiry before the prune.
    take_one(&recent, 3, true).await;
    let mut all = vec![
        pruner.consumer().to_owned(),
        stopped.consumer().to_owned(),
        holding.consumer().to_owned(),
        recent.consumer().to_owned(),
    ];
    all.sort();
    assert_eq!(consumers(&pruner).await, all);

    pruner.prune(0).await.unwrap();
    all.retain(|name| name != stopped.consumer());
    assert_eq!(consumers(&pruner).await, all);
    // With the default expiry of a day, nobody here is that silent.
    holding.prune(0).await.unwrap();
    assert_eq!(consumers(&pruner).await, all);
}

/// Without `with_clock`, the inbox's times are the system's, and its `Debug` names what an
/// operator looks for (the prefix and the consumer).
#[actix_rt::test]
async fn an_inbox_keeps_system_time_and_shows_its_prefix_and_consumer() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("system-clock");
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let system_ms = || {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        u64::try_from(elapsed.as_millis()).unwrap()
    };
    let before = system_ms();
    let now = inbox.now_ms();
    assert!((before..=system_ms()).contains(&now), "{now} is not now");

    let shown = format!("{inbox:?}");
    assert!(shown.contains(&prefix), "{shown}");
    assert!(shown.contains(inbox.consumer()), "{shown}");
}

/// A key of another type where the inbox's stream belongs (another program's, or a mistyped
/// prefix) is refused when connecting, with Redis's reason, not taken for an inbox.
#[actix_rt::test]
async fn a_prefix_whose_stream_key_is_taken_is_refused_at_connect() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("taken");
    let holder = RedisInbox::connect(&url, format!("{prefix}-holder"))
        .await
        .unwrap();
    let mut connection = holder.connection().clone();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:inbox:stream"))
        .arg("not a stream")
        .query_async(&mut connection)
        .await
        .unwrap();
    let error = RedisInbox::connect(&url, prefix).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("consumer group") && message.contains("WRONGTYPE"),
        "{message}"
    );
}

/// A prune takes every handled entry it is asked to, more than one batch of its script, even
/// when the finished index lists an entry that was deleted by other means.
#[actix_rt::test]
async fn a_prune_takes_every_handled_entry_past_one_batch() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let prefix = unique_prefix("prune-batches");
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    let lease = Duration::from_secs(60);
    // One more than the script's batch of 500.
    let handled = 501;
    for n in 0..handled {
        inbox
            .append(entry(&event_id("prune_batches", n), 1_000))
            .await
            .unwrap();
        let taken = inbox.take(lease).await.unwrap().unwrap();
        let id = &taken.entry.event_id;
        assert!(
            inbox
                .finish(id, taken.token, Finish::Handled)
                .await
                .unwrap()
        );
    }
    let mut connection = inbox.connection().clone();
    let _: () = redis::cmd("ZADD")
        .arg(format!("{prefix}:inbox:finished"))
        .arg(0)
        .arg("evt_deleted_by_hand")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(inbox.stats().await.unwrap().handled, handled as u64);

    let pruned = inbox.prune(inbox.now_ms() + 1).await.unwrap();
    assert_eq!(pruned, handled as u64);
    assert_eq!(inbox.stats().await.unwrap().handled, 0);
}

/// A list by event type reads on past a first page that holds none of that type, and stops
/// at its limit with the newest.
#[actix_rt::test]
async fn a_list_by_type_reads_past_its_first_page_and_stops_at_its_limit() {
    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let inbox = RedisInbox::connect(&url, unique_prefix("list-pages"))
        .await
        .unwrap();
    for n in 0..3 {
        let charge = entry(&event_id("list_pages_charge", n), 1_000 + n as u64);
        inbox.append(charge).await.unwrap();
    }
    // Newer than the charges: a first page of 200 refunds.
    for n in 0..200 {
        let refund = InboxEntry {
            event_type: "refund.created".to_owned(),
            ..entry(&event_id("list_pages_refund", n), 2_000 + n as u64)
        };
        inbox.append(refund).await.unwrap();
    }
    let listed = inbox
        .list(ListFilter {
            event_type: Some("charge.succeeded".to_owned()),
            limit: 2,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .iter()
        .map(|record| record.event_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            event_id("list_pages_charge", 2),
            event_id("list_pages_charge", 1)
        ]
    );
}

/// Pages after a cursor among more entries of one receipt time than one read of the index
/// holds: every entry of the type once, in the list's order, whatever the page's size.
#[actix_rt::test]
async fn pages_after_a_cursor_cross_reads_of_entries_received_at_one_time() {
    use nextgen_events::inbox::ListCursor;

    let Some(url) = redis_url("the Redis inbox") else {
        return;
    };
    let inbox = RedisInbox::connect(&url, unique_prefix("list-one-time"))
        .await
        .unwrap();
    // 450 at one time (every seventh a refund), 50 a millisecond older.
    let mut refunds = Vec::new();
    for n in 0..500 {
        let id = event_id("list_one_time", n);
        let received_at_ms = if n < 450 { 5_000 } else { 4_999 };
        let event_type = if n % 7 == 0 {
            refunds.push((received_at_ms, id.clone()));
            "refund.created"
        } else {
            "charge.succeeded"
        };
        let kept = InboxEntry {
            event_type: event_type.to_owned(),
            ..entry(&id, received_at_ms)
        };
        inbox.append(kept).await.unwrap();
    }
    refunds.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = refunds.into_iter().map(|(_, id)| id).collect();
    for per_page in [1, 9, 50, 100] {
        let mut listed: Vec<String> = Vec::new();
        let mut after = None;
        loop {
            let page = inbox
                .list(ListFilter {
                    event_type: Some("refund.created".to_owned()),
                    after: after.clone(),
                    limit: per_page,
                    ..ListFilter::default()
                })
                .await
                .unwrap();
            after = page.last().map(ListCursor::after);
            listed.extend(page.iter().map(|record| record.event_id.clone()));
            if page.len() < per_page {
                break;
            }
        }
        assert_eq!(listed, expected, "{per_page} a page");
    }
    // Without a filter, in pages of 120: every entry once.
    let mut listed = std::collections::HashSet::new();
    let mut after = None;
    loop {
        let page = inbox
            .list(ListFilter {
                after: after.clone(),
                limit: 120,
                ..ListFilter::default()
            })
            .await
            .unwrap();
        after = page.last().map(ListCursor::after);
        for record in &page {
            assert!(
                listed.insert(record.event_id.clone()),
                "{} twice",
                record.event_id
            );
        }
        if page.len() < 120 {
            break;
        }
    }
    assert_eq!(listed.len(), 500);
}

/// A retention Redis cannot hold (`Duration::MAX` saturates to a `PX` Redis refuses, so no
/// done marker would ever be written) or a consumer expiry beyond 10 years is refused when
/// the workers start, naming the setter; the inbox's store names the inbox's setter too.
#[tokio::test]
async fn durations_redis_cannot_hold_are_refused_naming_the_setter() {
    use nextgen_events::idempotency::StoreError;
    use nextgen_events::{ConfigError, Endpoint};

    let Some(url) = redis_url("the Redis inbox's checks") else {
        return;
    };
    let prefix = unique_prefix("too-long");
    let inbox = RedisInbox::connect(&url, prefix.clone()).await.unwrap();
    assert_eq!(inbox.check_settings(), Ok(()));
    let expected = StoreError::SettingTooLong {
        setting: "RedisInbox::with_retention",
        seconds: u64::MAX,
    };
    let long = inbox.clone().with_retention(Duration::MAX);
    assert_eq!(long.check_settings(), Err(expected.clone()));
    assert_eq!(
        long.idempotency_store().check_settings(),
        Err(expected.clone())
    );
    let refused = Endpoint::new(WebhookConfig::new(SECRET).with_inbox(long)).unwrap_err();
    assert_eq!(refused, ConfigError::StoreSettings(expected));
    assert!(
        refused.to_string().contains("`RedisInbox::with_retention`"),
        "{refused}"
    );
    let expiry = inbox.with_consumer_expiry(Duration::MAX);
    let refused = Endpoint::new(WebhookConfig::new(SECRET).with_inbox(expiry)).unwrap_err();
    assert_eq!(
        refused,
        ConfigError::StoreSettings(StoreError::SettingTooLong {
            setting: "RedisInbox::with_consumer_expiry",
            seconds: u64::MAX
        })
    );
}
