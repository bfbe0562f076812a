//! Exactly once on SQLite, for apps whose tables live in the store's file: a handler that takes
//! `&mut SqliteTx` has its writes applied with its done marker in one transaction, or not at
//! all. Over real HTTP on a real file, inline and in inbox mode: a handler that queues a write
//! and then fails leaves no row and runs again; a panic drops its writes and the worker goes
//! on; a claim that lapsed and was taken over by another delivery keeps the late run's writes
//! out; a plain handler beside it keeps today's semantics; a store that cannot hold the writes
//! with the marker is refused at mount.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use nextgen_events::inbox::{InboxOperator, InboxState, RetryPolicy};
use nextgen_events::prelude::*;
use nextgen_events::sqlite::{SqliteInbox, SqliteStore, SqliteTx};
use nextgen_events::{ConfigError, Endpoint, WebhookConfig};
use nextgen_tests::services::TempFile;
use support::{SECRET, TestServer, delivery, post, ran, runs};

/// What the ledger handler does after queueing its insert, per event id.
#[derive(Clone)]
enum Then {
    Fail,
    Panic,
    /// Says it entered, then waits to be let go.
    Wait(Arc<Notify>, Arc<Notify>),
}

static SCRIPT: Mutex<Option<HashMap<String, Vec<Then>>>> = Mutex::new(None);

fn script(id: &str, then: Vec<Then>) {
    SCRIPT
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(id.to_owned(), then);
}

fn next(id: &str) -> Option<Then> {
    let mut script = SCRIPT.lock().unwrap();
    let steps = script.get_or_insert_with(HashMap::new).get_mut(id)?;
    (!steps.is_empty()).then(|| steps.remove(0))
}

/// Books a row per event in the app's table, in the store's file.
#[nextgen_event("refund.created")]
async fn book_refund(event: Event<Refund>, tx: &mut SqliteTx) -> Result<(), String> {
    let id = event.id.clone();
    tx.write(move |db| {
        db.execute("INSERT INTO ledger (event_id) VALUES (?1)", [&id])?;
        Ok(())
    });
    ran(&event.id, "book_refund");
    match next(&event.id) {
        Some(Then::Fail) => Err("the ledger refused the refund".to_owned()),
        Some(Then::Panic) => panic!("the ledger handler panicked"),
        Some(Then::Wait(entered, release)) => {
            entered.notify_one();
            release.notified().await;
            Ok(())
        }
        None => Ok(()),
    }
}

/// A handler without writes of its own beside it: effectively once, as before.
#[nextgen_event("refund.created")]
async fn notify_refund(event: Event<Refund>) {
    ran(&event.id, "notify_refund");
}

/// The app's table in the store's file (no unique constraint: a second apply would be a second
/// row).
fn ledger(file: &Path) {
    let db = rusqlite::Connection::open(file).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch("CREATE TABLE IF NOT EXISTS ledger (event_id TEXT NOT NULL)")
        .unwrap();
}

fn rows(file: &Path, id: &str) -> i64 {
    let db = rusqlite::Connection::open(file).unwrap();
    db.query_row(
        "SELECT count(*) FROM ledger WHERE event_id = ?1",
        [id],
        |row| row.get(0),
    )
    .unwrap()
}

fn event_id(test: &str) -> String {
    format!("evt_once_sqlite_{test}_{}", std::process::id())
}

#[actix_rt::test]
async fn inline_a_write_then_a_failure_leaves_no_row_and_the_retry_leaves_one() {
    let file = TempFile::new("once_inline");
    let store = SqliteStore::open(&file.0).unwrap();
    ledger(&file.0);
    let server = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store),
        |_| {},
    );
    let id = event_id("inline");
    script(&id, vec![Then::Fail]);
    let (body, signature) = delivery(&id, "refund.created");
    let first = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(rows(&file.0, &id), 0, "the failed run's write was applied");
    assert_eq!(runs(&id, "notify_refund"), 1);
    let again = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(rows(&file.0, &id), 1);
    let third = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(third.status, 200, "{:?}", third.body);
    assert_eq!(rows(&file.0, &id), 1);
    assert_eq!(runs(&id, "book_refund"), 2);
    assert_eq!(runs(&id, "notify_refund"), 1);
}

async fn until_state(inbox: &SqliteInbox, id: &str, state: InboxState, attempts: u32) {
    let started = std::time::Instant::now();
    loop {
        let record = inbox.show(id, false).await.unwrap();
        if record
            .as_ref()
            .is_some_and(|record| record.state == state && record.attempts == attempts)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{id}: {record:?}, waiting for {state:?} after {attempts}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn inbox_a_failure_then_a_panic_drop_the_writes_and_the_retry_applies_them_once() {
    let file = TempFile::new("once_inbox");
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let reader = Arc::clone(&clock);
    let inbox =
        SqliteInbox::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst)).unwrap();
    ledger(&file.0);
    let server = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_poll(Duration::from_millis(10))
            .with_retry_policy(RetryPolicy::default().with_first(Duration::from_secs(1))),
        |_| {},
    );
    let id = event_id("inbox");
    script(&id, vec![Then::Fail, Then::Panic]);
    let (body, signature) = delivery(&id, "refund.created");
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    until_state(&inbox, &id, InboxState::Retrying, 1).await;
    assert_eq!(rows(&file.0, &id), 0);
    clock.fetch_add(2_000, Ordering::SeqCst);
    until_state(&inbox, &id, InboxState::Retrying, 2).await;
    assert_eq!(rows(&file.0, &id), 0);
    let record = inbox.show(&id, false).await.unwrap().unwrap();
    assert!(
        record.last_errors[0].error.contains("panicked"),
        "{:?}",
        record.last_errors
    );
    clock.fetch_add(10_000, Ordering::SeqCst);
    until_state(&inbox, &id, InboxState::Handled, 3).await;
    assert_eq!(rows(&file.0, &id), 1);
    assert_eq!(runs(&id, "book_refund"), 3);
    assert_eq!(runs(&id, "notify_refund"), 1);
    // The worker goes on with the next delivery.
    let next_id = event_id("inbox_next");
    let (body, signature) = delivery(&next_id, "refund.created");
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    until_state(&inbox, &next_id, InboxState::Handled, 1).await;
    assert_eq!(rows(&file.0, &next_id), 1);
}

#[actix_rt::test]
async fn a_late_run_whose_claim_was_taken_over_writes_nothing() {
    let file = TempFile::new("once_lapse");
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let store = {
        let reader = Arc::clone(&clock);
        SqliteStore::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst)).unwrap()
    };
    ledger(&file.0);
    // Two endpoints on one file and one clock, as two deliveries in flight at once.
    let replica = || {
        TestServer::start(
            WebhookConfig::new(SECRET)
                .with_idempotency_store(store.clone())
                .with_lease(Duration::from_secs(30)),
            |_| {},
        )
    };
    let (a, b) = (replica(), replica());
    let id = event_id("lapse");
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    script(
        &id,
        vec![Then::Wait(Arc::clone(&entered), Arc::clone(&release))],
    );
    let (body, signature) = delivery(&id, "refund.created");
    let first = {
        let (url, body, signature) = (a.url("/webhook"), body.clone(), signature.clone());
        tokio::spawn(async move { post(&url, body, Some(&signature)).await })
    };
    entered.notified().await;
    // A's claim lapses on the store's clock; B takes it over and applies its write.
    clock.fetch_add(31_000, Ordering::SeqCst);
    let second = post(&b.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(rows(&file.0, &id), 1);
    // A finishes late: its claim is B's now, so its write is dropped and its run reported failed.
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(rows(&file.0, &id), 1);
    assert_eq!(runs(&id, "book_refund"), 2);
}

#[actix_rt::test]
async fn a_store_that_cannot_hold_the_writes_with_the_marker_is_refused_at_mount() {
    let refused = Endpoint::new(WebhookConfig::new(SECRET)).unwrap_err();
    let ConfigError::TransactionNeedsSqlite { handler } = &refused else {
        panic!("{refused}");
    };
    assert!(
        handler.ends_with("book_refund") || handler.ends_with("slow_booking"),
        "{handler}"
    );
    assert!(refused.to_string().contains("`SqliteStore`"), "{refused}");
}

/// A slow transactional handler for the intake measurement: it queues a write, then awaits
/// (another service, say) before it returns.
#[nextgen_event("charge.succeeded")]
async fn slow_booking(event: Event<Charge>, tx: &mut SqliteTx) {
    let id = event.id.clone();
    tx.write(move |db| {
        db.execute("INSERT INTO ledger (event_id) VALUES (?1)", [&id])?;
        Ok(())
    });
    actix_rt::time::sleep(Duration::from_millis(20)).await;
}

/// docs/performance.md's "Exactly once on SQLite": deliveries appended per second while the
/// inbox's 4 workers run transactional handlers that await 20 ms each, against the same with
/// the workers off. The writer is held for the handlers' writes only, not their awaits.
///
/// ```text
/// cargo test --release -p nextgen-tests --test exactly_once_sqlite -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_intake_while_transactional_handlers_run() {
    for workers in [0, 4] {
        let file = TempFile::new("once_intake");
        let inbox = SqliteInbox::open(&file.0).unwrap();
        ledger(&file.0);
        // Handlers waiting: appended before the clock starts, so that they run throughout.
        for n in 0..2_000 {
            let id = format!("evt_backlog_{n}");
            let (body, signature) = delivery(&id, "charge.succeeded");
            let entry = nextgen_events::inbox::InboxEntry {
                event_id: id,
                event_type: "charge.succeeded".to_owned(),
                body,
                signed_at: support::now(),
                received_at_ms: 0,
                signature: Some(signature),
            };
            nextgen_events::inbox::Inbox::append(&inbox, entry)
                .await
                .unwrap();
        }
        let endpoint = Endpoint::new(
            WebhookConfig::new(SECRET)
                .with_inbox(inbox.clone())
                .with_inbox_workers(workers)
                .with_inbox_poll(Duration::from_millis(10)),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let appended = Arc::new(AtomicU64::new(0));
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let producers = (0..64).map(|producer| {
            let (inbox, appended) = (inbox.clone(), Arc::clone(&appended));
            async move {
                let mut n = 0;
                while std::time::Instant::now() < deadline {
                    let entry = nextgen_events::inbox::InboxEntry {
                        event_id: format!("evt_intake_{producer}_{n}"),
                        event_type: "refund.created".to_owned(),
                        body: b"{}".to_vec(),
                        signed_at: 0,
                        received_at_ms: u64::MAX / 2,
                        signature: None,
                    };
                    nextgen_events::inbox::Inbox::append(&inbox, entry)
                        .await
                        .unwrap();
                    appended.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }
        });
        futures_util::future::join_all(producers).await;
        let handled = inbox.stats().await.unwrap().handled;
        println!(
            "{workers} workers running 20 ms transactional handlers: {} appends/s, {handled} handled meanwhile",
            appended.load(Ordering::Relaxed) / 3
        );
        endpoint.shutdown(Duration::from_secs(5)).await;
    }
}
