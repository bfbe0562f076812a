//! The PostgreSQL inbox against a real server: the inbox checks every inbox passes, replicas
//! sharing one inbox, a delivery held by a worker that died taken over after its lease, idle
//! workers woken by another replica's commit through `LISTEN`, and the server restarted
//! (`pg_ctl restart -m immediate`) in the middle of a run of deliveries.
//!
//! Needs `--features postgres` and `NEXTGEN_TEST_POSTGRES_URL`, like `tests/postgres.rs`. The
//! restart test starts a cluster of its own (`scripts/postgres.sh`), so that its restart
//! disturbs no other test.
//!
//! ```text
//! NEXTGEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/nextgen_test cargo test -p nextgen-tests --features postgres --test postgres_inbox
//! ```

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod inbox_checks;
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inbox_checks::{Setup, charge, until};
use nextgen_events::WebhookConfig;
use nextgen_events::idempotency::Claim;
use nextgen_events::inbox::{
    Appended, Finish, HandlerFailure, Inbox, InboxEntry, InboxOperator, InboxState, InboxStats,
};
use nextgen_events::postgres::PgInbox;
use nextgen_events::prelude::*;
use nextgen_tests::hooked::HookedInbox;
use nextgen_tests::services::{PostgresCluster, postgres_url, unique_schema};
use support::{SECRET, TestServer, delivery, post, ran, runs};

/// A PostgreSQL inbox on a moved clock in a fresh schema, and a second connection to it.
async fn postgres(label: &str) -> Option<Setup<PgInbox>> {
    let url = postgres_url("the PostgreSQL inbox")?;
    let schema = unique_schema(label);
    let clock = Setup::<PgInbox>::clock();
    let reader = Arc::clone(&clock);
    let inbox = PgInbox::connect(&url, &schema)
        .await
        .unwrap()
        .with_clock(move || reader.load(Ordering::SeqCst));
    let other = PgInbox::connect(&url, &schema).await.unwrap();
    Some(Setup::new(inbox, other, clock, ()))
}

inbox_checks!(postgres("checks").await);

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

/// Waits until the inbox has handled `count` entries and holds nothing else.
async fn until_handled(inbox: &PgInbox, count: u64, patience: Duration) {
    let started = Instant::now();
    loop {
        let stats = inbox.stats().await.unwrap();
        if stats.handled == count {
            assert_eq!(
                stats,
                InboxStats {
                    handled: count,
                    ..InboxStats::default()
                }
            );
            return;
        }
        assert!(started.elapsed() < patience, "not all handled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn three_replicas_share_one_inbox_and_run_each_handler_once_per_event() {
    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("replicas");
    let mut replicas = Vec::new();
    for name in ["on a", "on b", "on c"] {
        let inbox = PgInbox::connect(&url, &schema).await.unwrap();
        let config = WebhookConfig::new(SECRET)
            .with_inbox(inbox)
            .with_inbox_poll(Duration::from_millis(50))
            .with_app_data(web::Data::new(Replica(name)));
        replicas.push(TestServer::start(config, |_| {}));
    }
    let urls: Vec<String> = replicas.iter().map(|r| r.url("/webhook")).collect();
    let ids: Vec<String> = (0..150).map(|n| event_id("pg_replicas", n)).collect();
    // Each event delivered to every replica at once, 25 events at a time.
    for chunk in ids.chunks(25) {
        let posts = chunk.iter().map(|id| {
            let (body, signature) = delivery(id, "refund.created");
            let urls = urls.clone();
            async move {
                let answers = futures_util::future::join_all(
                    urls.iter()
                        .map(|url| post(url, body.clone(), Some(&signature))),
                )
                .await;
                for answer in answers {
                    assert_eq!(answer.status, 200, "{id}: {:?}", answer.body);
                }
            }
        });
        futures_util::future::join_all(posts).await;
    }
    let observer = PgInbox::connect(&url, &schema).await.unwrap();
    until_handled(&observer, 150, Duration::from_secs(60)).await;
    let mut per_replica = [0; 3];
    for id in &ids {
        assert_eq!(runs(id, "book_refund"), 1, "{id}");
        assert_eq!(runs(id, "notify_refund"), 1, "{id}");
        for (count, name) in per_replica.iter_mut().zip(["on a", "on b", "on c"]) {
            *count += runs(id, name);
        }
        let record = observer.show(id, false).await.unwrap().unwrap();
        assert_eq!(
            (record.state, record.attempts),
            (InboxState::Handled, 1),
            "{id}"
        );
    }
    assert_eq!(per_replica.iter().sum::<usize>(), 150);
    println!("handled per replica: {per_replica:?}");
    assert!(
        per_replica.iter().filter(|&&count| count > 0).count() >= 2,
        "one replica did everything: {per_replica:?}"
    );
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
async fn a_delivery_held_by_a_worker_that_died_is_taken_over_after_the_lease() {
    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("takeover");
    let lease = Duration::from_millis(600);
    let id = event_id("pg_takeover", 0);
    let intake = PgInbox::connect(&url, &schema).await.unwrap();
    let (body, signature) = charge(&id, 2000.into());
    let a = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(intake.clone())
            .with_inbox_workers(0),
        |_| {},
    );
    let answer = post(&a.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);

    // A worker takes it, runs its first handler to success, and dies in the second: it never
    // renews nor finishes.
    let dead = PgInbox::connect(&url, &schema).await.unwrap();
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

    // Replica B finds it held, then takes it once idle for a lease and a half, when the dead
    // worker's claim on `b_flaky` has lapsed too.
    let b_inbox = PgInbox::connect(&url, &schema).await.unwrap();
    let b = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(b_inbox.clone())
            .with_lease(lease)
            .with_inbox_poll(Duration::from_millis(10)),
        |_| {},
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    drop((a, b));
}

#[actix_rt::test]
async fn leases_renewals_and_owners_on_one_clock() {
    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("leases");
    let clock = Setup::<PgInbox>::clock();
    let reader = Arc::clone(&clock);
    let x = PgInbox::connect(&url, &schema)
        .await
        .unwrap()
        .with_clock(move || reader.load(Ordering::SeqCst));
    let y = x.clone();
    let advance = |ms: u64| clock.fetch_add(ms, Ordering::SeqCst);
    let lease = Duration::from_secs(60);
    let id = event_id("pg_leases", 0);
    assert_eq!(x.append(entry(&id, 1_000)).await.unwrap(), Appended::New);
    assert_eq!(
        y.append(entry(&id, 2_000)).await.unwrap(),
        Appended::Duplicate
    );
    let taken = x.take(lease).await.unwrap().unwrap();
    // Renewed every 30 s for three leases: never taken over.
    for _ in 0..6 {
        advance(30_000);
        assert!(x.renew(&id, taken.token, lease).await.unwrap());
        assert!(y.take(lease).await.unwrap().is_none());
    }
    // Not renewed: taken over once idle for a lease and a half, by one of them.
    advance(60_000);
    assert!(y.take(lease).await.unwrap().is_none());
    advance(30_001);
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
    let late = Finish::Dead {
        errors: failure.clone(),
    };
    assert!(!x.finish(&id, taken.token, late).await.unwrap());
    // The owner fails it: due again in a minute, not before.
    let retry = Finish::Retry {
        at_ms: y.now_ms() + 60_000,
        errors: failure,
    };
    assert!(y.finish(&id, over.token, retry).await.unwrap());
    assert!(!y.finish(&id, over.token, Finish::Handled).await.unwrap());
    assert!(x.take(lease).await.unwrap().is_none());
    let record = x.show(&id, false).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (InboxState::Retrying, 2));
    assert_eq!(record.last_errors[0].error, "late");
    advance(60_000);
    let again = x.take(lease).await.unwrap().expect("due again");
    assert_eq!(
        (again.attempts, again.first_failed_at_ms.is_some()),
        (3, true)
    );
    assert_eq!(again.entry, entry(&id, 1_000));
}

#[actix_rt::test]
async fn an_entry_without_its_body_becomes_a_dead_letter_naming_why() {
    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("bodiless");
    let inbox = PgInbox::connect(&url, &schema).await.unwrap();
    let (broken, fine) = (event_id("pg_bodiless", 0), event_id("pg_bodiless", 1));
    inbox.append(entry(&broken, 1_000)).await.unwrap();
    inbox.append(entry(&fine, 2_000)).await.unwrap();
    // Someone deleted a body by hand.
    sqlx::query(&format!(
        "DELETE FROM {schema}.nextgen_inbox_bodies WHERE event_id = $1"
    ))
    .bind(&broken)
    .execute(inbox.pool())
    .await
    .unwrap();
    // The take skips past it (buried) to the next entry; the broken one never blocks the queue.
    let taken = inbox.take(Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(taken.entry.event_id, fine);
    let record = inbox.show(&broken, false).await.unwrap().unwrap();
    assert_eq!(record.state, InboxState::Dead);
    assert_eq!(record.last_errors[0].handler, "(inbox entry)");
    assert!(
        record.last_errors[0].error.contains("`body`"),
        "{:?}",
        record.last_errors
    );
}

/// A tool connected to the inbox of an app of an earlier version (its schema at migration 2,
/// without the `reruns` column), which it does not migrate: it reads the entries, recording no
/// reruns, and a rerun says what to do; once the app upgrades the schema, it reruns.
#[actix_rt::test]
async fn a_tool_reads_a_schema_from_before_reruns_and_a_rerun_asks_for_the_upgrade() {
    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("before_reruns");
    let inbox = PgInbox::connect(&url, &schema).await.unwrap();
    let id = event_id("pg_before_reruns", 0);
    inbox.append(entry(&id, 1_000)).await.unwrap();
    sqlx::raw_sql(&format!(
        "ALTER TABLE {schema}.nextgen_inbox DROP COLUMN reruns;
         DELETE FROM {schema}.nextgen_migrations WHERE version = 3;"
    ))
    .execute(inbox.pool())
    .await
    .unwrap();
    let tool = PgInbox::connect_existing(&url, &schema)
        .await
        .unwrap()
        .unwrap();
    let record = tool.show(&id, true).await.unwrap().unwrap();
    assert!(record.reruns.is_empty());
    assert!(record.body.is_some());
    assert_eq!(tool.list(Default::default()).await.unwrap().len(), 1);
    let refused = tool.rerun(&id, "h").await.unwrap_err().to_string();
    assert!(
        refused.contains("no `reruns` column yet (migration 3)")
            && refused.contains("start the app of this version once"),
        "{refused}"
    );
    // The app starts: the schema is upgraded, and the tool connected after it reruns.
    PgInbox::connect(&url, &schema).await.unwrap();
    let tool = PgInbox::connect_existing(&url, &schema)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tool.rerun(&id, "h").await.unwrap(),
        nextgen_events::inbox::Rerun::NotDone { done: Vec::new() }
    );
}

#[actix_rt::test]
async fn idle_workers_wake_on_another_replicas_commit_without_waiting_for_their_poll() {
    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let schema = unique_schema("listen");
    // Workers that poll only every 10 minutes: only a notification can wake them in time.
    let inbox = PgInbox::connect(&url, &schema).await.unwrap();
    let server = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_poll(Duration::from_secs(600)),
        |_| {},
    );
    // Another replica's intake (another connection, another pool) commits a delivery.
    let elsewhere = PgInbox::connect(&url, &schema).await.unwrap();
    // Give the listener a moment to connect and the workers to go idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = event_id("pg_listen", 0);
    let now = nextgen_events::inbox::Inbox::now_ms(&elsewhere);
    assert_eq!(
        elsewhere.append(entry(&id, now)).await.unwrap(),
        Appended::New
    );
    let record = until(&inbox, &id, Duration::from_secs(10), |record| {
        record.state == InboxState::Handled
    })
    .await;
    assert_eq!(record.attempts, 1);
    assert_eq!(runs(&id, "a_steady"), 1);

    // Without LISTEN (PgBouncer in transaction mode) the same delivery waits for the poll.
    let quiet_schema = unique_schema("quiet");
    let quiet = PgInbox::connect(&url, &quiet_schema)
        .await
        .unwrap()
        .with_listen(false);
    // The workers' first looks counted, so the delivery comes once each has gone idle.
    let looks = Arc::new(AtomicUsize::new(0));
    let looked = Arc::clone(&looks);
    let workers = 2;
    let _quiet_server = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(HookedInbox::new(quiet.clone()).before_take(move || {
                looked.fetch_add(1, Ordering::SeqCst);
            }))
            .with_inbox_workers(workers)
            .with_inbox_poll(Duration::from_secs(600)),
        |_| {},
    );
    let elsewhere = PgInbox::connect(&url, &quiet_schema).await.unwrap();
    let started = Instant::now();
    while looks.load(Ordering::SeqCst) < workers {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the workers never looked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The looks counted are about to ask; a moment for them to be answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = event_id("pg_listen", 1);
    elsewhere.append(entry(&id, now)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let record = quiet.show(&id, false).await.unwrap().unwrap();
    assert_eq!(record.state, InboxState::Pending, "{record:?}");
    drop(server);
}

#[actix_rt::test]
async fn a_server_restart_mid_run_loses_nothing_acknowledged_and_everyone_recovers() {
    if postgres_url("the PostgreSQL restart").is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cluster = PostgresCluster::start();
    let schema = unique_schema("restart");
    let inbox = PgInbox::connect(cluster.url(), &schema).await.unwrap();
    let server = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            // Polling rarely: after the restart only the listener's reconnection (which wakes
            // the workers) brings them back in time.
            .with_inbox_poll(Duration::from_secs(30))
            // A take whose answer the restart lost leaves its entry held until the lease
            // lapses: a short one, so that the test sees it taken again.
            .with_lease(Duration::from_secs(3))
            // A delivery whose claims failed in the outage is retried soon after.
            .with_retry_policy(
                nextgen_events::inbox::RetryPolicy::default()
                    .with_first(Duration::from_millis(500))
                    .with_max(Duration::from_secs(1)),
            )
            .with_app_data(web::Data::new(Replica("restarted"))),
        |_| {},
    );
    let webhook = server.url("/webhook");
    let acknowledged = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The server goes down and comes back on a thread of its own (the commands block), while
    // senders deliver distinct events, each once, until it is back and each sent 50.
    let cluster = Arc::new(cluster);
    let outage = {
        let cluster = Arc::clone(&cluster);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cluster.restart_immediate();
            std::thread::sleep(Duration::from_millis(300));
            // Down for longer than a delivery waits for a connection (2 s): deliveries in this
            // time are refused, never acknowledged.
            cluster.stop();
            std::thread::sleep(Duration::from_millis(3500));
            cluster.start_again();
        })
    };
    let senders = (0..4).map(|sender| {
        let (webhook, acknowledged, refused) = (
            webhook.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&refused),
        );
        let outage = &outage;
        async move {
            let mut n = 0;
            while n < 50 || !outage.is_finished() {
                let id = event_id(&format!("pg_restart_{sender}"), n);
                n += 1;
                let (body, signature) = delivery(&id, "refund.created");
                let answer = post(&webhook, body, Some(&signature)).await;
                match answer.status {
                    200 => {
                        acknowledged.lock().unwrap().insert(id);
                    }
                    status => {
                        assert!(status >= 500, "{id}: {status} {:?}", answer.body);
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    futures_util::future::join_all(senders).await;
    outage.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    println!(
        "acknowledged {}, refused {}",
        acknowledged.len(),
        refused.load(Ordering::SeqCst)
    );
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "the outage refused nothing"
    );
    assert!(acknowledged.len() > 100, "{}", acknowledged.len());
    // Every acknowledged delivery is in the inbox and gets handled, without a poll.
    let observer = PgInbox::connect(cluster.url(), &schema).await.unwrap();
    let started = Instant::now();
    for id in &acknowledged {
        loop {
            let record = observer.show(id, false).await.unwrap();
            assert!(
                record.is_some(),
                "{id} was acknowledged and is not in the inbox"
            );
            if record.is_some_and(|record| record.state == InboxState::Handled) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{id} not handled after the restart: {:?}",
                observer.show(id, false).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(runs(id, "book_refund"), 1, "{id}");
    }
    drop(server);
}

/// docs/performance.md's "What a delivery keeps": bytes per delivery of the example's 1 KiB
/// event in PostgreSQL, tables and indexes.
///
/// ```text
/// cargo test --release -p nextgen-tests --features postgres --test postgres_inbox -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_bytes_per_delivery() {
    let url = postgres_url("the PostgreSQL inbox").unwrap();
    let schema = unique_schema("size");
    let inbox = PgInbox::connect(&url, &schema).await.unwrap();
    let count = 10_000u32;
    let appends = (0..count).map(|n| {
        let inbox = inbox.clone();
        async move {
            let id = format!("evt_{n:022}");
            let body = serde_json::json!({
                "id": id, "object": "event", "created": 1_713_745_200,
                "livemode": false, "type": "charge.succeeded", "pending_webhooks": 1,
                "data": { "object": { "id": "ch_1J2k3L4m5N6o", "amount": 2000, "amount_refunded": 0,
                    "currency": "usd", "paid": true, "status": "succeeded",
                    "description": "x".repeat(700) } }
            })
            .to_string();
            let entry = InboxEntry {
                event_id: id,
                event_type: "charge.succeeded".to_owned(),
                signature: Some(nextgen_events::sign(body.as_bytes(), SECRET, 1_713_745_200)),
                body: body.into_bytes(),
                signed_at: 1_713_745_200,
                received_at_ms: 1_713_745_200_000,
            };
            let length = entry.body.len();
            let event_id = entry.event_id.clone();
            inbox.append(entry).await.unwrap();
            // Two handlers' done markers, as the example's charge handlers leave.
            let store = inbox.idempotency_store();
            for handler in [
                "my_service::handlers::on_charge",
                "my_service::handlers::audit",
            ] {
                let lease = Duration::from_secs(60);
                let Claim::Claimed(token) = store.claim(&event_id, handler, lease).await.unwrap()
                else {
                    panic!("{event_id} {handler} not free")
                };
                assert!(store.complete(&event_id, handler, token).await.unwrap());
            }
            length
        }
    });
    let lengths = futures_util::future::join_all(appends).await;
    println!(
        "a body of {} bytes, two done markers per delivery",
        lengths.iter().sum::<usize>() / lengths.len()
    );
    let mut total = 0;
    for table in ["nextgen_inbox", "nextgen_inbox_bodies", "nextgen_handlers"] {
        sqlx::query(&format!("VACUUM ANALYZE {schema}.{table}"))
            .execute(inbox.pool())
            .await
            .unwrap();
        let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
            .bind(format!("{schema}.{table}"))
            .fetch_one(inbox.pool())
            .await
            .unwrap();
        println!(
            "{table}: {} bytes per delivery (table, TOAST and indexes)",
            bytes / i64::from(count)
        );
        total += bytes;
    }
    println!("in all: {} bytes per delivery", total / i64::from(count));
}

/// The operator's reads on an inbox of a million entries (`NEXTGEN_MEASURE_ENTRIES` to change
/// it) of mixed states, written straight into the table and vacuumed: stats, the 24-hour
/// history, pages of dead letters and of everything, first and deep in the list; then the
/// statements before the operator's migration, on the indexes before it (in a transaction
/// rolled back).
///
/// ```text
/// NEXTGEN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/nextgen_test cargo test --release -p nextgen-tests --features postgres --test postgres_inbox measure_operator_reads -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_operator_reads_on_a_million_entries() {
    use nextgen_events::inbox::{InboxState, ListCursor, ListFilter};

    let Some(url) = postgres_url("the PostgreSQL inbox") else {
        return;
    };
    let count: i64 = std::env::var("NEXTGEN_MEASURE_ENTRIES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1_000_000);
    const HOUR: i64 = 3_600_000;
    let base: i64 = 1_800_000_000_000;
    // 30 days of entries, two at each receipt time.
    let step = 30 * 24 * HOUR / (count / 2);
    let now = base + (count / 2) * step + HOUR;
    let schema = unique_schema("million");
    let clock = u64::try_from(now).unwrap();
    let inbox = PgInbox::connect(&url, &schema)
        .await
        .unwrap()
        .with_clock(move || clock);
    let written = Instant::now();
    // Per thousand: 5 dead, 5 retrying, 4 pending, 1 running, 10 handled after a retry, the
    // rest handled at once.
    sqlx::query(&format!(
        "INSERT INTO {schema}.nextgen_inbox (event_id, event_type, received_at_ms, state, due_at_ms,
             attempts, first_failed_at_ms, finished_at_ms, last_errors)
         SELECT 'evt_' || lpad(n::text, 24, '0'),
                CASE WHEN n % 3 = 0 THEN 'refund.created' ELSE 'charge.succeeded' END,
                at, state, at, attempts,
                CASE WHEN failed THEN at + 1000 END,
                CASE WHEN state = 'dead' THEN least(at + 72 * $3, $4)
                     WHEN state = 'handled' AND failed THEN at + 40000
                     WHEN state = 'handled' THEN at + 300 END,
                CASE WHEN NOT failed THEN NULL
                     WHEN n % 2 = 0 THEN '[{{\"handler\":\"book_refund\",\"error\":\"the ledger is down\"}}]'
                     ELSE '[{{\"handler\":\"(payload)\",\"error\":\"data.object.amount: invalid type\"}}]' END
         FROM (SELECT n, $1 + (n / 2) * $2 AS at,
                      CASE WHEN n % 1000 < 5 THEN 'dead' WHEN n % 1000 < 14 THEN 'pending'
                           WHEN n % 1000 = 14 THEN 'running' ELSE 'handled' END AS state,
                      CASE WHEN n % 1000 < 5 THEN 60 WHEN n % 1000 < 10 THEN 3
                           WHEN n % 1000 < 14 THEN 0 WHEN n % 1000 < 25 AND n % 1000 > 14 THEN 2
                           ELSE 1 END AS attempts,
                      n % 1000 < 10 OR n % 1000 BETWEEN 15 AND 24 AS failed
               FROM generate_series(0::int8, $5 - 1) AS n) AS entries"
    ))
    .bind(base)
    .bind(step)
    .bind(HOUR)
    .bind(now)
    .bind(count)
    .execute(inbox.pool())
    .await
    .unwrap();
    sqlx::query(&format!("VACUUM ANALYZE {schema}.nextgen_inbox"))
        .execute(inbox.pool())
        .await
        .unwrap();
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
        .bind(format!("{schema}.nextgen_inbox"))
        .fetch_one(inbox.pool())
        .await
        .unwrap();
    println!(
        "{count} entries written and vacuumed in {:.1?}: {} MiB with their indexes (no bodies)",
        written.elapsed(),
        bytes >> 20
    );

    use support::fastest_of_five;
    let (took, stats) = fastest_of_five(|| inbox.stats()).await;
    println!("stats: {took:.2?} {:?}", stats.unwrap());
    let history = inbox.history().unwrap();
    let day_ago = clock - 24 * 3_600_000;
    let (took, hours) = fastest_of_five(|| history.hourly(day_ago, 24)).await;
    let received: u64 = hours.unwrap().iter().map(|hour| hour.received).sum();
    println!("history of 24 h: {took:.2?} ({received} received in them)");
    let page = |after: Option<ListCursor>, state: Option<InboxState>, handler: Option<&str>| {
        inbox.list(ListFilter {
            state,
            after,
            handler: handler.map(str::to_owned),
            limit: 50,
            ..ListFilter::default()
        })
    };
    let deep = ListCursor {
        received_at_ms: u64::try_from(base + (count / 2) * step / 5).unwrap(),
        event_id: "evt_".to_owned(),
    };
    let oldest = ListCursor {
        received_at_ms: u64::try_from(base).unwrap(),
        event_id: "evt_".to_owned(),
    };
    let reads = [
        (
            "first page of dead letters",
            None,
            Some(InboxState::Dead),
            None,
        ),
        (
            "a page of dead letters after a cursor 80% down",
            Some(deep.clone()),
            Some(InboxState::Dead),
            None,
        ),
        (
            "a page of everything after a cursor 80% down",
            Some(deep.clone()),
            None,
            None,
        ),
        (
            "the last (empty) page of dead letters",
            Some(oldest),
            Some(InboxState::Dead),
            None,
        ),
        (
            "first page of pending",
            None,
            Some(InboxState::Pending),
            None,
        ),
        (
            "a page of retrying after a cursor 80% down",
            Some(deep.clone()),
            Some(InboxState::Retrying),
            None,
        ),
        (
            "first page failed by a handler",
            None,
            None,
            Some("(payload)"),
        ),
        (
            "a page of dead letters failed by a handler, 80% down",
            Some(deep.clone()),
            Some(InboxState::Dead),
            Some("(payload)"),
        ),
    ];
    for (what, after, state, handler) in reads {
        let (took, listed) = fastest_of_five(|| page(after.clone(), state, handler)).await;
        println!("{what}: {took:.2?} ({} listed)", listed.unwrap().len());
    }

    // The statements before the migration, on the indexes before it, in a transaction rolled
    // back.
    let mut before = inbox.pool().begin().await.unwrap();
    sqlx::raw_sql(&format!(
        "DROP INDEX {schema}.nextgen_inbox_listed; DROP INDEX {schema}.nextgen_inbox_dead;
         DROP INDEX {schema}.nextgen_inbox_failed;
         CREATE INDEX nextgen_inbox_received ON {schema}.nextgen_inbox (received_at_ms);
         ANALYZE {schema}.nextgen_inbox;"
    ))
    .execute(&mut *before)
    .await
    .unwrap();
    let statements = [
        (
            "stats over the table",
            format!(
                "SELECT count(*) FILTER (WHERE state = 'pending' AND attempts = 0),
                     count(*) FILTER (WHERE state = 'pending' AND attempts > 0),
                     count(*) FILTER (WHERE state = 'running'),
                     count(*) FILTER (WHERE state = 'handled'),
                     count(*) FILTER (WHERE state = 'dead')
                 FROM {schema}.nextgen_inbox"
            ),
        ),
        (
            "first page of dead letters",
            format!(
                "SELECT event_id FROM {schema}.nextgen_inbox WHERE state = 'dead'
                 ORDER BY received_at_ms DESC, event_id DESC LIMIT 50"
            ),
        ),
        (
            "a page of dead letters received before a time 80% down",
            format!(
                "SELECT event_id FROM {schema}.nextgen_inbox
                 WHERE state = 'dead' AND received_at_ms < {}
                 ORDER BY received_at_ms DESC, event_id DESC LIMIT 50",
                deep.received_at_ms
            ),
        ),
    ];
    for (what, sql) in statements {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            sqlx::query(&sql).fetch_all(&mut *before).await.unwrap();
            best = best.min(started.elapsed());
        }
        println!("before: {what}: {best:.2?}");
    }
    before.rollback().await.unwrap();
    println!("schema {schema} kept for EXPLAIN");
}
