//! Exactly once on PostgreSQL: a handler that takes the app's transaction (`&mut PgConnection`)
//! has its writes and its done marker committed together, or neither. Against a real server,
//! over real HTTP, inline and in inbox mode: a handler that writes and then fails leaves no
//! row and runs again; a panic rolls back and the worker goes on; a second delivery cannot take
//! the claim over while the first's transaction is open, and one that waits for it finds the
//! handler done; a connection lost mid-handler rolls everything back; a plain handler beside it
//! keeps today's semantics; a store that cannot hold the marker in the transaction is refused
//! at mount.
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

/// The server process of each waiting run's transaction, by event id.
static BACKENDS: Mutex<Vec<(String, i32)>> = Mutex::new(Vec::new());

fn backend_of(id: &str) -> i32 {
    BACKENDS
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(event, _)| event == id)
        .map(|(_, pid)| *pid)
        .unwrap()
}

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
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await
                .map_err(|error| error.to_string())?;
            BACKENDS.lock().unwrap().push((event.id.clone(), pid));
            entered.notify_one();
            release.notified().await;
            // A connection lost meanwhile shows here, or in the library's commit.
            sqlx::query("SELECT 1")
                .execute(&mut *tx)
                .await
                .map_err(|error| error.to_string())?;
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

/// Two replicas (two endpoints) on one store, with a lease of `lease`.
async fn replicas(url: &str, label: &str, lease: Duration) -> (PgStore, TestServer, TestServer) {
    let store = PgStore::connect(url, &unique_schema(label)).await.unwrap();
    ledger(store.pool()).await;
    let replica = || {
        TestServer::start(
            WebhookConfig::new(SECRET)
                .with_idempotency_store(store.clone())
                .with_lease(lease),
            |_| {},
        )
    };
    let (a, b) = (replica(), replica());
    (store, a, b)
}

/// Posts `id`'s delivery to `server` in a task of its own, the handler told to wait in it.
async fn waiting_delivery(
    server: &TestServer,
    id: &str,
) -> (tokio::task::JoinHandle<support::Answer>, Arc<Notify>) {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    script(
        id,
        vec![Then::Wait(Arc::clone(&entered), Arc::clone(&release))],
    );
    let (body, signature) = delivery(id, "refund.created");
    let url = server.url("/webhook");
    let answer = tokio::spawn(async move { post(&url, body, Some(&signature)).await });
    entered.notified().await;
    (answer, release)
}

#[actix_rt::test]
async fn a_second_delivery_cannot_take_the_claim_over_while_the_first_transaction_is_open() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let (store, a, b) = replicas(&url, "once_takeover", Duration::from_millis(500)).await;
    let id = event_id("takeover");
    // A runs the handler and waits in it, its row written but not committed, for longer than
    // the lease.
    let (first, release) = waiting_delivery(&a, &id).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // B finds the claim held by A's open transaction: it waits a lease for it, then says so
    // (NextGen delivers again); it never runs the handler meanwhile.
    let (body, signature) = delivery(&id, "refund.created");
    let second = post(&b.url("/webhook"), body.clone(), Some(&signature)).await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    assert_eq!(runs(&id, "book_refund"), 1);
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    // Redelivered: done, nothing written again.
    let third = post(&b.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(third.status, 200, "{:?}", third.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 1);
}

#[actix_rt::test]
async fn a_delivery_waiting_for_the_first_transaction_finds_the_handler_done() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let (store, a, b) = replicas(&url, "once_wait", Duration::from_secs(30)).await;
    let id = event_id("wait");
    let (first, release) = waiting_delivery(&a, &id).await;
    let (body, signature) = delivery(&id, "refund.created");
    let second = {
        let url = b.url("/webhook");
        tokio::spawn(async move { post(&url, body, Some(&signature)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.notify_one();
    let started = std::time::Instant::now();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    // B waited for A's transaction and found the handler done, without waiting out its lease.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // After it, one of the two may find the other's next handler still going (409, delivered
    // again), as any two replicas can.
    for answer in [&first, &second] {
        assert!(matches!(answer.status, 200 | 409), "{:?}", answer.body);
    }
    assert_eq!(rows(store.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 1);
}

#[actix_rt::test]
async fn a_connection_lost_mid_handler_rolls_everything_back_and_the_next_delivery_runs_it() {
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let (store, a, _b) = replicas(&url, "once_lost", Duration::from_secs(30)).await;
    let id = event_id("lost");
    let (first, release) = waiting_delivery(&a, &id).await;
    // What a replica killed mid-handler leaves: its connection gone (here the server ends it).
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(backend_of(&id))
        .execute(store.pool())
        .await
        .unwrap();
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert_eq!(rows(store.pool(), &id).await, 0);
    let (body, signature) = delivery(&id, "refund.created");
    let again = post(&a.url("/webhook"), body, Some(&signature)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(rows(store.pool(), &id).await, 1);
    assert_eq!(runs(&id, "book_refund"), 2);
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

/// The claim's prepared statement on the transaction's connection: `None` when it is not
/// prepared there, else how many times it was executed.
async fn claim_executions(connection: &mut PgConnection) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT generic_plans + custom_plans FROM pg_prepared_statements
         WHERE name LIKE 'nextgen_claim_in%'",
    )
    .fetch_optional(connection)
    .await
    .unwrap()
}

/// Whether the pool's next connection is outside any transaction that wrote (a claim left
/// open would have an id) and usable (one left failed would refuse the statement).
async fn nothing_left_open(pool: &PgPool) -> bool {
    sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned() IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A store on a pool of one connection, so that every call meets the same one; its schema.
async fn store_on_one_connection(url: &str, label: &str) -> (PgStore, PgPool, String) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let schema = unique_schema(label);
    let store = PgStore::new(pool.clone(), &schema).await.unwrap();
    (store, pool, schema)
}

/// Work for `run_claimed` that sends what `look` reads in the transaction, then asks for the
/// commit (or not).
fn reading<T: Send + 'static>(
    look: impl for<'t> FnOnce(&'t mut PgConnection) -> futures_util::future::BoxFuture<'t, T>
    + Send
    + 'static,
    commit: bool,
) -> (
    nextgen_events::idempotency::ClaimedWork,
    std::sync::mpsc::Receiver<T>,
) {
    let (sender, read) = std::sync::mpsc::sync_channel(1);
    let work: nextgen_events::idempotency::ClaimedWork = Box::new(move |connection| {
        Box::pin(async move {
            let _ = sender.send(look(connection).await);
            commit
        })
    });
    (work, read)
}

/// Work that reads how many times the claim was executed on its connection.
fn counting(
    commit: bool,
) -> (
    nextgen_events::idempotency::ClaimedWork,
    std::sync::mpsc::Receiver<Option<i64>>,
) {
    reading(|connection| Box::pin(claim_executions(connection)), commit)
}

#[actix_rt::test]
async fn the_claim_begins_the_transaction_in_one_round_trip_once_prepared_and_a_refusal_leaves_nothing_open()
 {
    use nextgen_events::idempotency::{Claim, ClaimedRun, IdempotencyStore};
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    let (store, pool, schema) = store_on_one_connection(&url, "once_prepared").await;
    let transactions = store.pg_transactions().unwrap();
    let wait = Duration::from_secs(5);

    // A new connection lacks the claim: it is prepared there, and the transaction begins in
    // two round trips.
    let (work, executions) = counting(true);
    let run = transactions
        .run_claimed("evt_p1", "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::Committed);
    assert_eq!(executions.try_recv().unwrap(), Some(0));
    // Then the claim and BEGIN go together, through the prepared claim, and the claim's row
    // is in the transaction the work sees.
    let (work, seen) = reading(
        move |connection| {
            Box::pin(async move {
                let rows: i64 = sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM \"{schema}\".nextgen_handlers WHERE event_id = 'evt_p2'"
                ))
                .fetch_one(&mut *connection)
                .await
                .unwrap();
                (rows, claim_executions(connection).await)
            })
        },
        true,
    );
    let run = transactions
        .run_claimed("evt_p2", "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::Committed);
    assert_eq!(seen.try_recv().unwrap(), (1, Some(1)));

    // Done: refused without running the work, with nothing left open on the connection.
    let (work, executions) = counting(true);
    let run = transactions
        .run_claimed("evt_p2", "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::NotClaimed(Claim::AlreadyDone));
    assert!(executions.try_recv().is_err(), "the work ran");
    assert!(nothing_left_open(&pool).await);
    // Held by a claim made outside a transaction, its lease live: in progress, nothing open.
    assert!(matches!(
        store
            .claim("evt_p3", "h", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    let (work, _) = counting(true);
    let run = transactions
        .run_claimed("evt_p3", "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::NotClaimed(Claim::InProgress));
    assert!(nothing_left_open(&pool).await);

    // An event id that ends a quoted string is a value, not SQL. Work that asks for the
    // rollback leaves the claim free; then it commits, once.
    let tricky = "evt_'); DROP TABLE x; --\\";
    let (work, executions) = counting(false);
    let run = transactions
        .run_claimed(tricky, "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::RolledBack);
    // Executed by the two refusals above too.
    assert_eq!(executions.try_recv().unwrap(), Some(4));
    let (work, _) = counting(true);
    let run = transactions
        .run_claimed(tricky, "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::Committed);
    let (work, _) = counting(true);
    let run = transactions
        .run_claimed(tricky, "h", wait, work)
        .await
        .unwrap();
    assert_eq!(run, ClaimedRun::NotClaimed(Claim::AlreadyDone));
}

#[actix_rt::test]
async fn connections_that_forget_the_prepared_claim_still_claim_and_the_store_stops_preparing_it() {
    use nextgen_events::idempotency::{ClaimedRun, IdempotencyStore};
    let Some(url) = postgres_url("exactly once") else {
        return;
    };
    // As a pooler in transaction mode does: every transaction on a connection that does not
    // have the claim prepared.
    let (store, _pool, _schema) = store_on_one_connection(&url, "once_forgets").await;
    let transactions = store.pg_transactions().unwrap();
    let mut last = None;
    for index in 0..70 {
        let (work, executions) = reading(
            |connection| {
                Box::pin(async move {
                    let executions = claim_executions(connection).await;
                    // Only the claim: sqlx's own statements must stay.
                    let name: Option<String> = sqlx::query_scalar(
                        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'nextgen_claim_in%'",
                    )
                    .fetch_optional(&mut *connection)
                    .await
                    .unwrap();
                    if let Some(name) = name {
                        sqlx::query(&format!("DEALLOCATE {name}"))
                            .execute(&mut *connection)
                            .await
                            .unwrap();
                    }
                    executions
                })
            },
            true,
        );
        let run = transactions
            .run_claimed(&format!("evt_f{index}"), "h", Duration::from_secs(5), work)
            .await
            .unwrap();
        assert_eq!(run, ClaimedRun::Committed);
        last = executions.try_recv().unwrap();
    }
    // Past the bound it is not prepared again: each transaction begins in two round trips.
    assert_eq!(last, None);
}
