//! Inbox mode over real HTTP with a real SQLite file: the inbox checks every inbox passes
//! (200 after a durable write, one entry per event id, retries on an injected clock, dead
//! letters, replay, pruning), and what the file costs.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod inbox_checks;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use inbox_checks::Setup;
use nextgen_events::inbox::Inbox;
use nextgen_events::sqlite::SqliteInbox;
use nextgen_tests::services::TempFile;

/// A SQLite inbox on a moved clock in a fresh file, and a second connection to the file.
fn sqlite() -> Option<Setup<SqliteInbox>> {
    let file = TempFile::new("inbox");
    let clock = Setup::<SqliteInbox>::clock();
    let reader = Arc::clone(&clock);
    let inbox =
        SqliteInbox::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst)).unwrap();
    let other = SqliteInbox::open(&file.0).unwrap();
    Some(Setup::new(inbox, other, clock, file))
}

inbox_checks!(sqlite());

/// docs/performance.md's "What a delivery keeps": bytes per delivery of the example's 1 KiB event.
///
/// ```text
/// cargo test --release -p nextgen-tests --test inbox -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_bytes_per_delivery() {
    let file = TempFile::new("size");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let body = serde_json::json!({
        "id": "evt_0000000000000000000000", "object": "event", "created": 1_713_745_200,
        "livemode": false, "type": "charge.succeeded", "pending_webhooks": 1,
        "data": { "object": { "id": "ch_1J2k3L4m5N6o", "amount": 2000, "amount_refunded": 0,
            "currency": "usd", "paid": true, "status": "succeeded",
            "description": "x".repeat(700) } }
    })
    .to_string();
    let count = 10_000;
    let mut appends = Vec::new();
    for n in 0..count {
        let entry = nextgen_events::inbox::InboxEntry {
            event_id: format!("evt_{n:022}"),
            event_type: "charge.succeeded".to_owned(),
            body: body.clone().into_bytes(),
            signed_at: 1_713_745_200,
            received_at_ms: 1_713_745_200_000 + n,
            signature: Some(nextgen_events::sign(
                body.as_bytes(),
                "whsec_size",
                1_713_745_200,
            )),
        };
        appends.push(inbox.append(entry));
    }
    futures_util::future::join_all(appends).await;
    drop(inbox);
    let size = std::fs::metadata(&file.0).unwrap().len()
        + std::fs::metadata(format!("{}-wal", file.0.display())).map_or(0, |m| m.len());
    println!(
        "{count} deliveries of {} bytes: {size} bytes on disk, {} bytes per delivery",
        body.len(),
        size / count
    );
}

/// An idle worker is woken by the route as a delivery is kept, not by its next poll: with an
/// hour between polls, deliveries are still handled at once.
#[actix_rt::test]
async fn a_new_delivery_wakes_an_idle_worker_whatever_the_poll_interval() {
    use inbox_checks::{charge, until};
    use nextgen_events::inbox::InboxState;
    use std::time::Duration;

    let file = TempFile::new("wake");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    let config = nextgen_events::WebhookConfig::new(support::SECRET)
        .with_inbox(inbox.clone())
        .with_inbox_poll(Duration::from_secs(3600));
    let server = support::TestServer::start(config, |_| {});
    // The first is handled (taken by the workers' first look or by a wake-up); after it the
    // workers have found the queue empty and sleep until the next poll, an hour away.
    for id in ["evt_wake_first", "evt_wake_second"] {
        let (body, signature) = charge(id, serde_json::json!(1200));
        let answer = support::post(&server.url("/webhook"), body, Some(&signature)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let handled =
            |record: &nextgen_events::inbox::InboxRecord| record.state == InboxState::Handled;
        until(&inbox, id, Duration::from_secs(20), handled).await;
    }
}

/// A file written before the `queued_due_ms` and `signature` columns gains them when it is
/// opened, and takes, keeps and gives back deliveries as a new one does.
#[actix_rt::test]
async fn an_inbox_file_from_an_earlier_version_is_brought_up_to_date_when_opened() {
    use nextgen_events::inbox::InboxOperator;

    let file = TempFile::new("older");
    drop(SqliteInbox::open(&file.0).unwrap());
    let older = rusqlite::Connection::open(&file.0).unwrap();
    older
        .execute_batch(
            "ALTER TABLE nextgen_inbox DROP COLUMN signature;
             ALTER TABLE nextgen_inbox DROP COLUMN queued_due_ms;
             DROP INDEX nextgen_inbox_listed;
             DROP INDEX nextgen_inbox_unhandled;
             DROP INDEX nextgen_inbox_handled;
             DROP INDEX nextgen_inbox_failed;
             CREATE INDEX nextgen_inbox_received ON nextgen_inbox (received_at_ms);",
        )
        .unwrap();
    drop(older);

    let inbox = SqliteInbox::open(&file.0).unwrap();
    // The operator's indexes are there, and the one they replace is gone.
    let indexes: Vec<String> = {
        let file = rusqlite::Connection::open(&file.0).unwrap();
        let mut names = file
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'nextgen_inbox' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        names
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(
        indexes,
        [
            "nextgen_inbox_due",
            "nextgen_inbox_failed",
            "nextgen_inbox_handled",
            "nextgen_inbox_listed",
            "nextgen_inbox_unhandled"
        ]
    );
    let entry = signed_entry("evt_older_1");
    inbox.append(entry.clone()).await.unwrap();
    let record = inbox.show("evt_older_1", true).await.unwrap().unwrap();
    assert_eq!(record.body.map(String::into_bytes), Some(entry.body));
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
}

/// The tool opens an inbox read-only, and refuses, with what it is, a file that is no inbox.
#[actix_rt::test]
async fn opening_read_only_takes_an_inbox_and_refuses_any_other_file() {
    use nextgen_events::inbox::InboxOperator;

    let file = TempFile::new("readonly");
    drop(SqliteInbox::open(&file.0).unwrap());
    let read_only = SqliteInbox::open_read_only(&file.0).unwrap();
    assert_eq!(read_only.stats().await.unwrap().pending, 0);

    let other = TempFile::new("not-an-inbox");
    let connection = rusqlite::Connection::open(&other.0).unwrap();
    connection
        .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")
        .unwrap();
    drop(connection);
    let refused = SqliteInbox::open_read_only(&other.0)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("is not a webhook inbox"), "{refused}");
    assert!(refused.contains("no `nextgen_inbox` table"), "{refused}");
}

/// What the operator sees of a delivery no worker has taken yet: pending, no attempt.
#[actix_rt::test]
async fn a_delivery_not_yet_taken_shows_as_pending() {
    use nextgen_events::inbox::{InboxOperator, InboxState};

    let file = TempFile::new("pending");
    let inbox = SqliteInbox::open(&file.0).unwrap();
    inbox.append(signed_entry("evt_pending_1")).await.unwrap();
    let record = inbox.show("evt_pending_1", false).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (InboxState::Pending, 0));
}

/// A signed `charge.succeeded` delivery of `event_id`, as the route keeps it.
fn signed_entry(event_id: &str) -> nextgen_events::inbox::InboxEntry {
    let (body, signature) = inbox_checks::charge(event_id, serde_json::json!(900));
    nextgen_events::inbox::InboxEntry {
        event_id: event_id.to_owned(),
        event_type: "charge.succeeded".to_owned(),
        body: body.into_bytes(),
        signed_at: support::now(),
        received_at_ms: 1_800_000_000_000,
        signature: Some(signature),
    }
}

/// A lease is its owner's alone: only the token that took a delivery renews or finishes it,
/// once, and a lease left to run out is no longer renewed but taken again.
#[actix_rt::test]
async fn only_the_lease_owner_renews_and_finishes_a_delivery() {
    use nextgen_events::idempotency::OwnerToken;
    use nextgen_events::inbox::{Finish, HandlerFailure, InboxOperator, InboxState};

    let file = TempFile::new("leases");
    let clock = Setup::<SqliteInbox>::clock();
    let reader = Arc::clone(&clock);
    let inbox =
        SqliteInbox::open_with_clock(&file.0, move || reader.load(Ordering::SeqCst)).unwrap();
    let state = |id: &'static str| {
        let inbox = inbox.clone();
        async move { inbox.show(id, false).await.unwrap().unwrap().state }
    };
    let lease = std::time::Duration::from_secs(60);
    inbox.append(signed_entry("evt_lease_1")).await.unwrap();
    let taken = inbox.take(lease).await.unwrap().unwrap();
    let stranger = OwnerToken::new();

    assert!(
        inbox
            .renew("evt_lease_1", taken.token, lease)
            .await
            .unwrap()
    );
    assert!(!inbox.renew("evt_lease_1", stranger, lease).await.unwrap());
    assert!(
        !inbox
            .finish("evt_lease_1", stranger, Finish::Handled)
            .await
            .unwrap()
    );
    assert_eq!(state("evt_lease_1").await, InboxState::Running);

    let errors = vec![HandlerFailure {
        handler: "h".to_owned(),
        error: "the ledger is down".to_owned(),
    }];
    let retry = Finish::Retry {
        at_ms: inbox.now_ms() + 1_000,
        errors,
    };
    assert!(
        inbox
            .finish("evt_lease_1", taken.token, retry)
            .await
            .unwrap()
    );
    assert_eq!(state("evt_lease_1").await, InboxState::Retrying);
    // The attempt is over: its token holds nothing any more.
    assert!(
        !inbox
            .renew("evt_lease_1", taken.token, lease)
            .await
            .unwrap()
    );
    assert!(
        !inbox
            .finish("evt_lease_1", taken.token, Finish::Handled)
            .await
            .unwrap()
    );

    // Due again: taken, then left to run out its lease, so it is taken over.
    clock.fetch_add(1_000, Ordering::SeqCst);
    let second = inbox.take(lease).await.unwrap().unwrap();
    assert_eq!(second.attempts, 2);
    clock.fetch_add(60_000, Ordering::SeqCst);
    assert!(
        !inbox
            .renew("evt_lease_1", second.token, lease)
            .await
            .unwrap()
    );
    let third = inbox.take(lease).await.unwrap().unwrap();
    assert_eq!(third.attempts, 3);
    assert!(
        !inbox
            .finish("evt_lease_1", second.token, Finish::Handled)
            .await
            .unwrap()
    );
    assert!(
        inbox
            .finish("evt_lease_1", third.token, Finish::Handled)
            .await
            .unwrap()
    );
    assert_eq!(state("evt_lease_1").await, InboxState::Handled);
}

/// One process's workers at a time on a file: a second set is refused with who holds it, and
/// the file is free again once the first lets go.
#[test]
fn a_second_set_of_workers_on_the_file_is_refused() {
    use nextgen_events::idempotency::StoreError;

    let file = TempFile::new("workers-lock");
    let first = SqliteInbox::open(&file.0).unwrap();
    let second = SqliteInbox::open(&file.0).unwrap();
    let held = first
        .lock_workers()
        .unwrap()
        .expect("the SQLite inbox locks");
    match second.lock_workers() {
        Err(StoreError::Locked { resource, .. }) => {
            assert!(resource.contains(&*file.0.to_string_lossy()), "{resource}")
        }
        other => panic!("a second set of workers was let in: {other:?}"),
    }
    drop(held);
    assert!(second.lock_workers().unwrap().is_some());
}

/// The operator's reads on an inbox of a million entries (`NEXTGEN_MEASURE_ENTRIES` to change
/// it) of mixed states, written straight into the file: stats, the 24-hour history, pages of
/// dead letters and of everything, first and deep in the list, and the same reads as the
/// statements before the operator's indexes made them.
///
/// ```text
/// cargo test --release -p nextgen-tests --test inbox measure_operator_reads -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_operator_reads_on_a_million_entries() {
    use nextgen_events::inbox::{InboxOperator, InboxState, ListCursor, ListFilter};
    use std::time::{Duration, Instant};

    let count: u64 = std::env::var("NEXTGEN_MEASURE_ENTRIES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1_000_000);
    const HOUR: u64 = 3_600_000;
    let base = 1_800_000_000_000;
    // 30 days of entries, two at each receipt time.
    let step = 30 * 24 * HOUR / (count / 2);
    let now = base + (count / 2) * step + HOUR;
    let file = TempFile::new("million");
    drop(SqliteInbox::open(&file.0).unwrap());
    let body = format!(
        r#"{{"id":"evt","type":"charge.succeeded","data":{{"object":{{"description":"{}"}}}}}}"#,
        "x".repeat(640)
    );
    let written = Instant::now();
    {
        let mut connection = rusqlite::Connection::open(&file.0).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
            .unwrap();
        let transaction = connection.transaction().unwrap();
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO nextgen_inbox (event_id, event_type, body, signed_at, received_at_ms, state, due_at_ms, attempts, first_failed_at_ms, last_errors, finished_at_ms, signature)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 't=1,v1=00')",
                )
                .unwrap();
            let ledger = r#"[{"handler":"book_refund","error":"the ledger is down"}]"#;
            let payload = r#"[{"handler":"(payload)","error":"data.object.amount: invalid type"}]"#;
            for n in 0..count {
                let received = base + (n / 2) * step;
                // Per thousand: 5 dead, 5 retrying, 4 pending, 1 running, 10 handled after a
                // retry, the rest handled at once.
                let (state, attempts, failed, errors, finished) = match n % 1000 {
                    0..5 => (
                        "dead",
                        60,
                        Some(received + 1000),
                        Some(if n % 2 == 0 { ledger } else { payload }),
                        Some((received + 72 * HOUR).min(now)),
                    ),
                    5..10 => ("pending", 3, Some(received + 1000), Some(ledger), None),
                    10..14 => ("pending", 0, None, None, None),
                    14 => ("running", 1, None, None, None),
                    15..25 => (
                        "handled",
                        2,
                        Some(received + 1000),
                        Some(ledger),
                        Some(received + 40_000),
                    ),
                    _ => ("handled", 1, None, None, Some(received + 300)),
                };
                let event_type = if n % 3 == 0 {
                    "refund.created"
                } else {
                    "charge.succeeded"
                };
                insert
                    .execute(rusqlite::params![
                        format!("evt_{n:024}"),
                        event_type,
                        body.as_bytes(),
                        received / 1000,
                        received,
                        state,
                        received,
                        attempts,
                        failed,
                        errors,
                        finished,
                    ])
                    .unwrap();
            }
        }
        transaction.commit().unwrap();
        connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let size = std::fs::metadata(&file.0).unwrap().len();
    println!(
        "{count} entries written in {:.1?}: {} MiB",
        written.elapsed(),
        size >> 20
    );

    let inbox = SqliteInbox::open_with_clock(&file.0, move || now).unwrap();
    use support::fastest_of_five;
    let (took, stats) = fastest_of_five(|| inbox.stats()).await;
    println!("stats: {took:.2?} {:?}", stats.unwrap());
    let history = inbox.history().unwrap();
    let (took, hours) = fastest_of_five(|| history.hourly(now - 24 * HOUR, 24)).await;
    let hours = hours.unwrap();
    let received: u64 = hours.iter().map(|hour| hour.received).sum();
    println!("history of 24 h: {took:.2?} ({received} received in them)");
    let dead_page = |after: Option<ListCursor>, state: Option<InboxState>| {
        inbox.list(ListFilter {
            state,
            after,
            limit: 50,
            ..ListFilter::default()
        })
    };
    let (took, first) = fastest_of_five(|| dead_page(None, Some(InboxState::Dead))).await;
    let first = first.unwrap();
    println!(
        "first page of dead letters: {took:.2?} ({} listed)",
        first.len()
    );
    // Deep in the list: after 80% of the dead letters, and after 80% of all entries.
    let deep = |fraction_ms: u64| ListCursor {
        received_at_ms: base + fraction_ms,
        event_id: "evt_".to_owned(),
    };
    let deep_cursor = deep((count / 2) * step / 5);
    let (took, page) =
        fastest_of_five(|| dead_page(Some(deep_cursor.clone()), Some(InboxState::Dead))).await;
    println!(
        "a page of dead letters after a cursor 80% down: {took:.2?} ({} listed)",
        page.unwrap().len()
    );
    let (took, page) = fastest_of_five(|| dead_page(Some(deep_cursor.clone()), None)).await;
    println!(
        "a page of everything after a cursor 80% down: {took:.2?} ({} listed)",
        page.unwrap().len()
    );
    let oldest = ListCursor {
        received_at_ms: base,
        event_id: "evt_".to_owned(),
    };
    let (took, page) =
        fastest_of_five(|| dead_page(Some(oldest.clone()), Some(InboxState::Dead))).await;
    println!(
        "the last (empty) page of dead letters: {took:.2?} ({} listed)",
        page.unwrap().len()
    );
    let (took, page) = fastest_of_five(|| dead_page(None, Some(InboxState::Pending))).await;
    println!(
        "first page of pending: {took:.2?} ({} listed)",
        page.unwrap().len()
    );
    let (took, page) = fastest_of_five(|| {
        inbox.list(ListFilter {
            handler: Some("(payload)".to_owned()),
            limit: 50,
            ..ListFilter::default()
        })
    })
    .await;
    println!(
        "first page failed by a handler: {took:.2?} ({} listed)",
        page.unwrap().len()
    );
    let (took, page) = fastest_of_five(|| {
        inbox.list(ListFilter {
            handler: Some("(payload)".to_owned()),
            state: Some(InboxState::Dead),
            after: Some(deep_cursor.clone()),
            limit: 50,
            ..ListFilter::default()
        })
    })
    .await;
    println!(
        "a page of dead letters failed by a handler, 80% down: {took:.2?} ({} listed)",
        page.unwrap().len()
    );

    // The statements before: stats over the whole table, a page of dead letters on the index
    // of receipt times alone.
    let path = file.0.clone();
    let before = tokio::task::spawn_blocking(move || {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let time = |sql: &str| {
            let mut best = Duration::MAX;
            for _ in 0..3 {
                let started = Instant::now();
                let mut statement = connection.prepare(sql).unwrap();
                let rows = statement.query_map([], |_| Ok(())).unwrap().count();
                assert!(rows > 0 || sql.contains("LIMIT"));
                best = best.min(started.elapsed());
            }
            best
        };
        let stats = time(
            "SELECT COUNT(*) FILTER (WHERE state = 'pending' AND attempts = 0),
                COUNT(*) FILTER (WHERE state = 'pending' AND attempts > 0),
                COUNT(*) FILTER (WHERE state = 'running'), COUNT(*) FILTER (WHERE state = 'handled'),
                COUNT(*) FILTER (WHERE state = 'dead') FROM nextgen_inbox",
        );
        let dead = time(&format!(
            "SELECT event_id FROM nextgen_inbox WHERE state = 'dead' AND received_at_ms < {}
             ORDER BY received_at_ms DESC, event_id DESC LIMIT 50",
            deep_cursor.received_at_ms
        ));
        (stats, dead)
    })
    .await
    .unwrap();
    println!(
        "before: stats over the table {:.2?}; a page of dead letters 80% down on the receipt times {:.2?}",
        before.0, before.1
    );

    // A file of an earlier version gains the indexes when it is opened.
    drop(inbox);
    {
        let connection = rusqlite::Connection::open(&file.0).unwrap();
        connection
            .execute_batch(
                "DROP INDEX nextgen_inbox_listed; DROP INDEX nextgen_inbox_unhandled;
                 DROP INDEX nextgen_inbox_handled; DROP INDEX nextgen_inbox_failed;
                 CREATE INDEX nextgen_inbox_received ON nextgen_inbox (received_at_ms);",
            )
            .unwrap();
    }
    let started = Instant::now();
    drop(SqliteInbox::open(&file.0).unwrap());
    println!(
        "opening it without the indexes (they are built): {:.1?}",
        started.elapsed()
    );
}

/// What the operator's indexes cost the deliveries: appends (64 at a time) and a drain (4
/// workers taking and finishing) of `NEXTGEN_MEASURE_ENTRIES` (20,000) deliveries, on a file
/// with the indexes and on one without them (as before they were added).
///
/// ```text
/// cargo test --release -p nextgen-tests --test inbox measure_delivery_writes -- --ignored --nocapture
/// ```
#[actix_rt::test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
async fn measure_delivery_writes_with_and_without_the_operator_indexes() {
    use nextgen_events::inbox::{Finish, InboxEntry, InboxOperator};
    use std::time::{Duration, Instant};

    let count: u64 = std::env::var("NEXTGEN_MEASURE_ENTRIES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(20_000);
    let body = "x".repeat(1000).into_bytes();
    for round in 0..3 {
        // Each first in turn, so that neither always has the warmer disk.
        for with_indexes in [round % 2 == 0, round % 2 == 1] {
            let file = TempFile::new("writes");
            let inbox = SqliteInbox::open(&file.0).unwrap();
            if !with_indexes {
                rusqlite::Connection::open(&file.0)
                    .unwrap()
                    .execute_batch(
                        "DROP INDEX nextgen_inbox_listed; DROP INDEX nextgen_inbox_unhandled;
                         DROP INDEX nextgen_inbox_handled; DROP INDEX nextgen_inbox_failed;
                         CREATE INDEX nextgen_inbox_received ON nextgen_inbox (received_at_ms);",
                    )
                    .unwrap();
            }
            let started = Instant::now();
            let ids: Vec<u64> = (0..count).collect();
            for chunk in ids.chunks(64) {
                let appends = chunk.iter().map(|n| {
                    inbox.append(InboxEntry {
                        event_id: format!("evt_{n:024}"),
                        event_type: "charge.succeeded".to_owned(),
                        body: body.clone(),
                        signed_at: 1_800_000_000,
                        // Due at once: received before now.
                        received_at_ms: support::now() * 1000 - count + n,
                        signature: Some("t=1,v1=00".to_owned()),
                    })
                });
                for appended in futures_util::future::join_all(appends).await {
                    appended.unwrap();
                }
            }
            let appended = started.elapsed();
            let started = Instant::now();
            let lease = Duration::from_secs(60);
            let drain = (0..4).map(|_| {
                let inbox = inbox.clone();
                async move {
                    while let Some(taken) = inbox.take(lease).await.unwrap() {
                        assert!(
                            inbox
                                .finish(&taken.entry.event_id, taken.token, Finish::Handled)
                                .await
                                .unwrap()
                        );
                    }
                }
            });
            futures_util::future::join_all(drain).await;
            let drained = started.elapsed();
            assert_eq!(inbox.stats().await.unwrap().handled, count);
            let per = |took: Duration| took.as_micros() / u128::from(count);
            println!(
                "round {round}, {}: appends {appended:.2?} ({} µs each), drain {drained:.2?} ({} µs each)",
                if with_indexes {
                    "with the indexes"
                } else {
                    "without"
                },
                per(appended),
                per(drained)
            );
        }
    }
}
