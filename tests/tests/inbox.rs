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
             ALTER TABLE nextgen_inbox DROP COLUMN queued_due_ms;",
        )
        .unwrap();
    drop(older);

    let inbox = SqliteInbox::open(&file.0).unwrap();
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
