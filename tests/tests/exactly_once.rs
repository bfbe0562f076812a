//! Exactly once on PostgreSQL: a handler that takes the app's transaction (`&mut PgConnection`)
//! has its writes and its done marker committed together, or neither. Against a real server,
//! over real HTTP, inline and in inbox mode: a handler that writes and then fails leaves no
//! row and runs again; a panic rolls back and the worker goes on; of two deliveries that both
//! run the handler after a claim lapsed, exactly one commits; a plain handler beside it keeps
//! today's semantics; a store that cannot hold the marker in the transaction is refused at
//! mount.
//!
//! Needs `--features postgres` and `NEXTGEN_TEST_POSTGRES_URL`, like `tests/postgres.rs`.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use nextgen_events::inbox::{InboxOperator, InboxState, RetryPolicy};
use nextgen_events::postgres::{PgConnection, PgInbox, PgPool, PgStore};
use nextgen_events::prelude::*;
use nextgen_events::{ConfigError, Endpoint, WebhookConfig};
use nextgen_tests::services::{postgres_url, unique_schema};
use support::{SECRET, TestServer, delivery, post, ran, runs};

/// What the ledger handler does after its insert, per event id.
#[derive(Clone)]
enum Then {
    Fail,
    Panic,
    /// Says it entered, then waits to be let go.
    Wait(Arc<Notify>, Arc<Notify>),
}

static SCRIPT: Mutex<Option<HashMap<String, Vec<Then>>>> = Mutex::new(None);

/// Makes the next runs of the ledger handler for `id` do `then`, one each, in order.
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

/// Books a row per event in the app's table, in the transaction its done marker commits in.
#[nextgen_event("refund.created")]
async fn book_refund(event: Event<Refund>, tx: &mut PgConnection) -> Result<(), String> {
    sqlx::query("INSERT INTO exactly_once_ledger (event_id) VALUES ($1)")
        .bind(&event.id)
        .execute(&mut *tx)
        .await
        .map_err(|error| error.to_string())?;
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

/// A handler without a transaction beside it: effectively once, as before.
#[nextgen_event("refund.created")]
async fn notify_refund(event: Event<Refund>) {
    ran(&event.id, "notify_refund");
}

/// The app's table (no unique constraint: a second commit would be a second row), made once
/// per server whatever the tests running at once.
async fn ledger(pool: &PgPool) {
    let mut transaction = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(4242)")
        .execute(&mut *transaction)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS exactly_once_ledger (event_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *transaction)
    .await
    .unwrap();
    transaction.commit().await.unwrap();
}

async fn rows(pool: &PgPool, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM exactly_once_ledger WHERE event_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn event_id(test: &str) -> String {
    format!("evt_once_{test}_{}", std::process::id())
}

#[actix_rt::test]
async fn inline_a_write_then_a_failure_leaves_no_row_and_the_retry_leaves_one() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let store = PgStore::connect(&url, &unique_schema("once_inline"))
        .await
        .unwrap();
    ledger(store.pool()).await;
    let server = TestServer::start(
        WebhookConfig::new(SECRET).with_idempotency_store(store.clone()),
        |_| {},
    );
    let id = event_id("inline");
    script(&id, vec![Then::Fail]);
    let (body, signature) = delivery(&id, "refund.created");
    let first = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(
        rows(store.pool(), &id).await,
        0,
        "the failed run's row was kept"
    );
    assert_eq!(runs(&id, "book_refund"), 1);
    // The plain handler beside it succeeded, and stays done.
    assert_eq!(runs(&id, "notify_refund"), 1);

    let again = post(&server.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 2);
    assert_eq!(runs(&id, "notify_refund"), 1);
    // Done for good: a third delivery writes nothing.
    let third = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(third.status, 200, "{:?}", third.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 2);
}

/// An inbox on a clock the test moves, with retries a second apart.
async fn inbox(url: &str, label: &str) -> (PgInbox, Arc<AtomicU64>, TestServer) {
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let reader = Arc::clone(&clock);
    let inbox = PgInbox::connect(url, &unique_schema(label))
        .await
        .unwrap()
        .with_clock(move || reader.load(Ordering::SeqCst));
    ledger(inbox.pool()).await;
    let server = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_inbox(inbox.clone())
            .with_inbox_poll(Duration::from_millis(10))
            .with_retry_policy(RetryPolicy::default().with_first(Duration::from_secs(1))),
        |_| {},
    );
    (inbox, clock, server)
}

async fn until_state(inbox: &PgInbox, id: &str, state: InboxState, attempts: u32) {
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
async fn inbox_a_failure_then_a_panic_roll_back_and_the_retry_commits_one_row() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let (inbox, clock, server) = inbox(&url, "once_inbox").await;
    let id = event_id("inbox");
    script(&id, vec![Then::Fail, Then::Panic]);
    let (body, signature) = delivery(&id, "refund.created");
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    until_state(&inbox, &id, InboxState::Retrying, 1).await;
    assert_eq!(rows(inbox.pool(), &id).await, 0);
    let record = inbox.show(&id, false).await.unwrap().unwrap();
    assert!(
        record.last_errors[0].error.contains("the ledger refused"),
        "{:?}",
        record.last_errors
    );
    // The second attempt panics after its insert: rolled back, and the worker goes on.
    clock.fetch_add(2_000, Ordering::SeqCst);
    until_state(&inbox, &id, InboxState::Retrying, 2).await;
    assert_eq!(rows(inbox.pool(), &id).await, 0);
    let record = inbox.show(&id, false).await.unwrap().unwrap();
    assert!(
        record.last_errors[0].error.contains("panicked"),
        "{:?}",
        record.last_errors
    );
    clock.fetch_add(10_000, Ordering::SeqCst);
    until_state(&inbox, &id, InboxState::Handled, 3).await;
    assert_eq!(rows(inbox.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 3);
    assert_eq!(runs(&id, "notify_refund"), 1);

    // The same worker goes on with the next delivery.
    let next_id = event_id("inbox_next");
    let (body, signature) = delivery(&next_id, "refund.created");
    let answer = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    until_state(&inbox, &next_id, InboxState::Handled, 1).await;
    assert_eq!(rows(inbox.pool(), &next_id).await, 1);
}

#[actix_rt::test]
async fn of_two_deliveries_running_the_handler_after_a_lapsed_claim_exactly_one_commits() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    // Two endpoints (two replicas) on one store and one clock, with a short lease.
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let reader = Arc::clone(&clock);
    let store = PgStore::connect(&url, &unique_schema("once_lapse"))
        .await
        .unwrap()
        .with_clock(move || reader.load(Ordering::SeqCst));
    ledger(store.pool()).await;
    let lease = Duration::from_secs(30);
    let replica = || {
        TestServer::start(
            WebhookConfig::new(SECRET)
                .with_idempotency_store(store.clone())
                .with_lease(lease),
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
    // A runs the handler and waits in it, its row written but not committed.
    let first = {
        let (url, body, signature) = (a.url("/webhook"), body.clone(), signature.clone());
        tokio::spawn(async move { post(&url, body, Some(&signature)).await })
    };
    entered.notified().await;
    // A's claim lapses (the store's clock passes its lease); B takes it over, runs the handler
    // and commits its row.
    clock.fetch_add(31_000, Ordering::SeqCst);
    let second = post(&b.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    // A goes on: its marker finds the claim taken over, so its transaction rolls back, and
    // its delivery is answered as failed, never counted a success.
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 2);
}

#[actix_rt::test]
async fn a_renewal_that_fails_while_the_handler_runs_rolls_it_back() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let reader = Arc::clone(&clock);
    let store = PgStore::connect(&url, &unique_schema("once_renewal"))
        .await
        .unwrap()
        .with_clock(move || reader.load(Ordering::SeqCst));
    ledger(store.pool()).await;
    // Renewed every 100 ms of real time.
    let server = TestServer::start(
        WebhookConfig::new(SECRET)
            .with_idempotency_store(store.clone())
            .with_lease(Duration::from_millis(300)),
        |_| {},
    );
    let id = event_id("renewal");
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    script(
        &id,
        vec![Then::Wait(Arc::clone(&entered), Arc::clone(&release))],
    );
    let (body, signature) = delivery(&id, "refund.created");
    let first = {
        let (url, body, signature) = (server.url("/webhook"), body.clone(), signature.clone());
        tokio::spawn(async move { post(&url, body, Some(&signature)).await })
    };
    entered.notified().await;
    // The store's clock passes the lease: the next renewal finds the claim lapsed. Nobody
    // took it over, but the handler cannot be sure of it any more.
    clock.fetch_add(10_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(250)).await;
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(rows(store.pool(), &id).await, 0);
    let again = post(&server.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
}

#[actix_rt::test]
async fn a_store_that_cannot_hold_the_marker_in_the_transaction_is_refused_at_mount() {
    // The default store, in memory.
    let refused = Endpoint::new(WebhookConfig::new(SECRET)).unwrap_err();
    let ConfigError::TransactionNeedsPostgres { handler } = &refused else {
        panic!("{refused}");
    };
    assert!(handler.ends_with("book_refund"), "{handler}");
    let message = refused.to_string();
    assert!(message.contains("`PgStore`"), "{message}");
    assert!(message.contains("`PgInbox`"), "{message}");
}
